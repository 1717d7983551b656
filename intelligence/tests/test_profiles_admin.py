"""Admin for profiles and programmes: lists render, a profile added through the service's checks (a refusal shows
on the form), a programme's secret in the message once and only sealed in the row."""

from __future__ import annotations

import pytest

from intelligence import response_profiles as rp
from intelligence.models import DemandResponseProgram, ResponseProfile

pytestmark = pytest.mark.django_db
BASE = "/admin/intelligence/"


def _profile_form(site, **extra):
    return {"site": site.pk, "name": "Admin made", "mode": "full_stop", "target_kw": "", "priority": "normal",
            "scope": "{}", "min_duration_minutes": 15, "max_duration_minutes": 240, "restore_batch_size": 50,
            "restore_interval_seconds": 60, "drift_action": "recurtail", **extra}  # fmt: skip


def test_admin_lists_and_add(client, farm):

    owner = farm.users["owner"]
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    for url in ("responseprofile/", "demandresponseprogram/", "responseprofile/add/", "demandresponseprogram/add/"):
        assert client.get(BASE + url).status_code == 200, url
    r = client.post(BASE + "responseprofile/add/", _profile_form(farm.site_a, min_duration_minutes=300))
    assert r.status_code == 200 and not ResponseProfile.objects.exists()  # refused on the form
    r = client.post(BASE + "responseprofile/add/", _profile_form(farm.site_a, is_default="on"))
    assert r.status_code == 302, r.content[:500]
    p = ResponseProfile.objects.get()
    assert p.is_default and p.created_by == owner
    r = client.post(BASE + "demandresponseprogram/add/",
                    {"site": farm.site_a.pk, "name": "Grid", "slug": "grid", "profile": p.pk, "is_active": "on"},
                    follow=True)  # fmt: skip
    prog = DemandResponseProgram.objects.get()
    shown = [str(m) for m in r.context["messages"]]
    secret = rp.program_secret(prog).decode()
    assert any(secret in m for m in shown)
    assert secret.encode() not in client.get(BASE + f"demandresponseprogram/{prog.pk}/change/").content
