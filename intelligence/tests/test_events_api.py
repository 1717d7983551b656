"""The curtailment events API and the demand-response webhook: list (filters, sort, CSV), detail, preview, start,
end; roles and hidden sites; the webhook's signature good, bad, stale, missing; a replayed event id answers the same
event; end is idempotent; malformed bodies and unknown programmes change nothing."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from commands.models import Command
from hashinsight.events.models import AuditEvent
from intelligence import dr_webhook
from intelligence import response_profiles as rp
from intelligence.models import CurtailmentEvent, DemandResponseProgram, ResponseProfile
from intelligence.tests import test_events_support as support
from intelligence.tests.test_events_support import ack

pytestmark = pytest.mark.django_db
site, clock = support.site, support.clock  # fixtures
EVENTS = "/api/v1/curtailment/events"


def call(api, user, method, url, body=None):
    api.force_authenticate(user)
    if method == "get":
        return api.get(url)
    return getattr(api, method)(url, json.dumps(body or {}), content_type="application/json")


def test_preview_start_read_and_end(api, site, clock):
    so = site.actor
    r = call(api, so, "post", f"{EVENTS}/preview", {"site": site.site_a.pk, "mode": "kw_reduction", "target_kw": 5})
    assert r.status_code == 200, r.json()
    assert r.json()["shed_kw"] == "6.500" and r.json()["revenue_forgone_usd_per_hour"] == "0.40"
    assert not CurtailmentEvent.objects.exists()
    r = call(
        api,
        so,
        "post",
        EVENTS,
        {
            "site": site.site_a.pk,
            "mode": "kw_reduction",
            "target_kw": 5,
            "max_duration_minutes": 30,
            "min_duration_minutes": 10,
            "reason": "peak",
        },
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "scheduled" and body["miners_summary"]["total"] == 2 and len(body["commands"]) == 1
    pk = body["id"]
    r = call(api, so, "get", f"{EVENTS}/{pk}")
    assert r.status_code == 200 and r.json()["reason"] == "peak" and r.json()["can_end"] is True
    ack(Command.objects.get(pk=body["commands"][0]["id"]), clock.now)
    from intelligence import curtailment_events as events

    events.event_tick(clock.now + timedelta(seconds=1))
    r = call(api, so, "post", f"{EVENTS}/{pk}/end", {"reason": "over"})
    assert r.status_code == 409 and r.json()["error_code"] == "min_duration"
    clock.advance(minutes=11)
    r = call(api, so, "post", f"{EVENTS}/{pk}/end", {"reason": "over"})
    assert r.status_code == 200 and r.json()["status"] == "restoring"


def test_list_filters_sort_and_csv(api, site, clock):
    from intelligence import curtailment_events as events

    a = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", target_kw=3)
    b = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", target_kw=3,
                           priority="emergency")  # fmt: skip
    owner = site.users["owner"]
    r = call(api, owner, "get", f"{EVENTS}?sort=id")
    assert [e["id"] for e in r.json()["results"]] == [a.pk, b.pk]
    r = call(api, owner, "get", f"{EVENTS}?priority=emergency")
    assert [e["id"] for e in r.json()["results"]] == [b.pk]
    r = call(api, owner, "get", f"{EVENTS}?site={site.site_b.pk}")
    assert r.json()["count"] == 0
    r = call(api, owner, "get", f"{EVENTS}?status=bogus")
    assert r.status_code == 400
    r = call(api, owner, "get", f"{EVENTS}?format=csv&sort=id")
    text = b"".join(r.streaming_content).decode()
    assert r.status_code == 200 and text.count("\n") == 3 and "Revenue forgone (USD)" in text


@pytest.mark.parametrize("who", ["client_x", "customer", "guest"])
def test_roles_without_curtailment_are_refused(api, site, who):
    r = call(api, site.users[who], "get", EVENTS)
    assert r.status_code == 403
    r = call(api, site.users[who], "post", EVENTS, {"site": site.site_a.pk, "mode": "full_stop"})
    assert r.status_code == 403 and not CurtailmentEvent.objects.exists()


def test_hidden_event_is_404_and_read_only_site_403(api, site, clock):
    from intelligence import curtailment_events as events

    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="full_stop")
    ro = site.users["siteowner_b_ro"]
    assert call(api, ro, "get", f"{EVENTS}/{event.pk}").status_code == 404
    assert call(api, ro, "post", f"{EVENTS}/{event.pk}/end").status_code == 404
    r = call(api, ro, "post", f"{EVENTS}/preview", {"site": site.site_b.pk, "mode": "full_stop"})
    assert r.status_code == 403 and r.json()["error_code"] == "site_read_only"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "kw_reduction", "target_kw": 500}, "cannot_shed"),
        ({"mode": "full_stop", "scope": {"kind": "rack", "ids": ["nope"]}}, "invalid_scope"),
        ({"mode": "full_stop", "colour": "red"}, "invalid_body"),
        ({"mode": "full_stop", "soft": "yes"}, "invalid"),
        ({"mode": "full_stop", "max_duration_minutes": "long"}, "invalid"),
    ],
)
def test_bad_input_is_a_400_with_its_code_and_changes_nothing(api, site, body, code):
    r = call(api, site.actor, "post", EVENTS, {"site": site.site_a.pk, **body})
    assert r.status_code == 400 and r.json()["error_code"] == code
    assert not CurtailmentEvent.objects.exists() and not Command.objects.exists()


# ---------------------------------------------------------------------------------------------------------
# The webhook


@pytest.fixture
def program(site):
    profile = ResponseProfile.objects.create(
        site=site.site_a, name="ERS", mode="kw_reduction", target_kw=5, min_duration_minutes=30,
        max_duration_minutes=120,
    )  # fmt: skip
    program, secret = rp.program_create(
        actor=site.actor, data={"site": site.site_a.pk, "name": "ERCOT ERS", "slug": "ercot-ers", "profile": profile.pk}
    )
    program.test_secret = secret
    return program


def post(api, program, body, *, secret=None, ts=None, slug=None, raw=None):
    api.force_authenticate(None)
    data = raw if raw is not None else json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    headers = {
        "HTTP_X_HASHINSIGHT_TIMESTAMP": str(ts),
        "HTTP_X_HASHINSIGHT_SIGNATURE": dr_webhook.sign(secret or program.test_secret, ts, data),
    }
    return api.post(f"/api/v1/curtailment/dr/{slug or program.slug}", data, content_type="application/json",
                    **headers)  # fmt: skip


def test_webhook_starts_once_per_event_id_and_ends_idempotently(api, site, program):
    r = post(api, program, {"event_id": "ERS-1", "action": "start", "reason": "EEA2"})
    assert r.status_code == 201, r.json()
    event = CurtailmentEvent.objects.get()
    assert r.json()["id"] == event.pk and r.json()["created"] is True
    assert event.source == "webhook" and event.external_id == "ERS-1" and event.program == program
    assert event.target_kw == 5 and event.profile == program.profile and event.created_by == site.actor
    assert set(event.commands.values_list("proposer_kind", flat=True)) == {"system"}
    program.refresh_from_db()
    assert program.last_received_at is not None

    r = post(api, program, {"event_id": "ERS-1", "action": "start"})
    assert r.status_code == 200 and r.json()["id"] == event.pk and r.json()["created"] is False
    assert CurtailmentEvent.objects.count() == 1

    ack(event.commands.get(), event.starts_at)
    from intelligence import curtailment_events as events

    events.event_tick()
    r = post(api, program, {"event_id": "ERS-1", "action": "end"})  # before the minimum: the grid's word holds
    assert r.status_code == 200 and r.json()["status"] == "restoring"
    again = post(api, program, {"event_id": "ERS-1", "action": "end"})
    assert again.status_code == 200 and again.json()["end_requested_at"] == r.json()["end_requested_at"]
    audits = AuditEvent.objects.filter(event_type="dr_program.message").count()
    assert audits == 4


def test_webhook_end_window_and_kw_from_the_message(api, site, program):
    r = post(
        api,
        program,
        {
            "event_id": "ERS-2",
            "action": "start",
            "target_kw": 3,
            "end": (timezone.now() + timedelta(minutes=45)).isoformat(),
        },
    )
    assert r.status_code == 201, r.json()
    event = CurtailmentEvent.objects.get()
    assert event.target_kw == 3 and 44 <= (event.max_end_at - event.starts_at).total_seconds() / 60 <= 45


def test_the_header_aliases_are_accepted(api, site, program):
    api.force_authenticate(None)
    data = json.dumps({"event_id": "ERS-3", "action": "start"}).encode()
    ts = int(time.time())
    r = api.post(
        f"/api/v1/curtailment/dr/{program.slug}",
        data,
        content_type="application/json",
        HTTP_X_DR_TIMESTAMP=str(ts),
        HTTP_X_DR_SIGNATURE=dr_webhook.sign(program.test_secret, ts, data),
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("kw", "status", "code"),
    [
        ({"secret": "not-the-secret"}, 401, "bad_signature"),
        ({"skew": -301}, 401, "stale_timestamp"),
        ({"skew": 400}, 401, "stale_timestamp"),
        ({"slug": "nobody"}, 404, "not_found"),
        ({"raw": b"{not json"}, 400, "invalid_body"),
        ({"body": {"event_id": "X", "action": "pause"}}, 400, "invalid_choice"),
        ({"body": {"action": "start"}}, 400, "invalid"),
        ({"body": {"event_id": "X", "action": "end"}}, 404, "unknown_event"),
        ({"body": {"event_id": "X", "action": "start", "target_kw": 900}}, 400, "cannot_shed"),
    ],
)
def test_webhook_refusals_change_nothing(api, site, program, kw, status, code):
    body = kw.pop("body", {"event_id": "ERS-9", "action": "start"})
    if "skew" in kw:
        kw["ts"] = int(time.time()) + kw.pop("skew")
    r = post(api, program, body, **kw)
    assert r.status_code == status and r.json()["error_code"] == code
    program.refresh_from_db()
    assert not CurtailmentEvent.objects.exists() and not Command.objects.exists()
    assert program.last_received_at is None
    assert not AuditEvent.objects.filter(event_type="dr_program.message").exists()


def test_webhook_without_headers_or_inactive_programme(api, site, program):
    api.force_authenticate(None)
    r = api.post(f"/api/v1/curtailment/dr/{program.slug}", b"{}", content_type="application/json")
    assert r.status_code == 401 and r.json()["error_code"] == "bad_signature"
    DemandResponseProgram.objects.filter(pk=program.pk).update(is_active=False)
    r = post(api, program, {"event_id": "ERS-1", "action": "start"})
    assert r.status_code == 404 and not CurtailmentEvent.objects.exists()


def test_webhook_refused_when_its_owner_lost_the_site(api, site, program):
    from sites.services import site_grant

    site_grant(user=site.actor, site=site.site_a, manage=False)  # read-only now
    r = post(api, program, {"event_id": "ERS-1", "action": "start"})
    assert r.status_code == 403 and r.json()["error_code"] == "program_not_authorised"
    assert not CurtailmentEvent.objects.exists()


def test_webhook_is_throttled_per_programme_and_address(api, site, program, monkeypatch):
    from intelligence.api.events_views import DRWebhookThrottle

    monkeypatch.setattr(DRWebhookThrottle, "rate", "2/min", raising=False)
    answers = [post(api, program, {"event_id": f"T-{i}", "action": "end"}).status_code for i in range(3)]
    assert answers == [404, 404, 429]
