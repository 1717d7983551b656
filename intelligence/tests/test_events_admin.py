"""The events admin: read-only list and page with the miners inline, and "End now" through the service (the minimum
duration refusal shown as a message, nothing changed)."""

from __future__ import annotations

import pytest

from intelligence import curtailment_events as events
from intelligence.tests import test_events_support as support

pytestmark = pytest.mark.django_db
site, clock = support.site, support.clock  # fixtures
URL = "/admin/intelligence/curtailmentevent/"


def test_list_page_and_end_now(client, site, clock):
    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="full_stop", reason="peak")
    owner = site.users["owner"]
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    assert client.get(URL).status_code == 200
    page = client.get(f"{URL}{event.pk}/change/")
    assert page.status_code == 200 and site.s19s[0].serial in page.content.decode()
    r = client.post(URL, {"action": "end_now", "_selected_action": [event.pk]}, follow=True)
    assert r.status_code == 200
    event.refresh_from_db()
    # Its command was still waiting for approval: cancelled, nothing was curtailed, so the event is cancelled.
    assert event.status == "cancelled" and set(event.commands.values_list("status", flat=True)) == {"CANCELLED"}
    assert client.post(f"{URL}{event.pk}/delete/").status_code == 403
