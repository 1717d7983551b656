"""The curtailment events, response profiles and programmes pages, server side: every page for every role as
written (the rows proposed for hashinsight/tests/test_permission_matrix.py), the event form's preview then start
(refused when the inputs changed since the preview), End now with the minimum-duration refusal said clearly, the
profile and programme forms through their services (a refusal on the form), and a programme's secret shown once."""

from __future__ import annotations

import pytest

from intelligence import curtailment_events as events
from intelligence import response_profiles as rp
from intelligence.models import CurtailmentEvent, DemandResponseProgram, ResponseProfile
from intelligence.tests.test_events_support import site  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
LOGIN = "login"
USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest", "anonymous"]
PAGES = {
    #                                              owner admin so_a so_b_ro client_x customer guest anonymous
    "/curtailment/events/":                        (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/events/?format=csv":             (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/events/new/":                    (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/events/{event_a}/":              (200, 200, 200, 404, 403, 403, 403, LOGIN),
    "/curtailment/profiles/":                      (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/profiles/?format=csv":           (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/profiles/new/":                  (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/profiles/{profile_a}/edit/":     (200, 200, 200, 404, 403, 403, 403, LOGIN),
    "/curtailment/profiles/{profile_b}/edit/":     (200, 200, 404, 403, 403, 403, 403, LOGIN),
    "/curtailment/programmes/":                    (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/programmes/?format=csv":         (200, 200, 200, 200, 403, 403, 403, LOGIN),
    "/curtailment/programmes/new/":                (200, 200, 200, 200, 403, 403, 403, LOGIN),
}  # fmt: skip


@pytest.fixture
def world(site):  # noqa: F811
    owner = site.users["owner"]
    site.profile_a = rp.profile_create(
        actor=owner, data={"site": site.site_a.pk, "name": "Stop all", "is_default": True}
    )
    site.profile_b = rp.profile_create(actor=owner, data={"site": site.site_b.pk, "name": "B"})
    # One miner only: a miner in a running event is not offered to another, and the tests preview the rest.
    one = {"kind": "miners", "ids": [site.s19s[0].serial]}
    site.event_a = events.event_start(actor=owner, site_id=site.site_a.pk, mode="full_stop", scope=one)
    return site


@pytest.mark.parametrize("username", USERS)
def test_pages_answer_each_role_as_written(client, world, username):
    if username != "anonymous":
        client.force_login(world.users[username])
    for template, answers in PAGES.items():
        url = template.format(event_a=world.event_a.pk, profile_a=world.profile_a.pk, profile_b=world.profile_b.pk)
        response = client.get(url)
        expected = answers[USERS.index(username)]
        if expected == LOGIN:
            assert response.status_code == 302 and "/login/" in response["Location"], url
        else:
            assert response.status_code == expected, (username, url)


def test_lists_show_units_and_the_event_detail_its_parts(client, world):
    client.force_login(world.users["siteowner_a"])
    text = client.get("/curtailment/events/").content.decode()
    assert "kWh" in text and "Revenue forgone" in text and "$0.00" in text and f"#{world.event_a.pk}" in text
    text = client.get(f"/curtailment/events/{world.event_a.pk}/").content.decode()
    for part in ("event-timeline", "event-batches", "event-commands", "event-miners", "end-event", "data-live-event"):
        assert part in text, part
    command = world.event_a.commands.first()
    assert f"/commands/{command.pk}/" in text
    assert f"#{world.event_a.pk}" in client.get("/curtailment/events/?status=scheduled&source=manual").content.decode()
    assert "No events match." in client.get("/curtailment/events/?status=ended").content.decode()
    assert "No events match." in client.get("/curtailment/events/?priority=emergency").content.decode()
    csv = b"".join(client.get("/curtailment/events/?format=csv").streaming_content).decode("utf-8-sig")
    assert "Energy avoided (kWh)" in csv.splitlines()[0] and len(csv.strip().splitlines()) == 2


def _form(site_id, **extra):
    return {"site": site_id, "profile": "", "mode": "full_stop", "priority": "normal", "scope_kind": "site", **extra}


def test_preview_then_start(client, world):
    client.force_login(world.users["siteowner_a"])
    before = CurtailmentEvent.objects.count()
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="preview"))
    assert r.status_code == 200
    text = r.content.decode()
    assert 'data-testid="event-preview"' in text and "kW" in text and "/h" in text, r.context["form"].errors
    fingerprint = r.context["form"].data["preview_of"]
    # The fetch() refresh answers the preview part alone.
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="preview"), HTTP_X_REQUESTED_WITH="fetch")
    assert r.content.decode().lstrip().startswith("<div data-preview-region")
    # Start with other inputs than the preview's: refused, previewed again.
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="start", preview_of=fingerprint,
                                                      restore_batch_size=1))  # fmt: skip
    assert r.status_code == 200 and CurtailmentEvent.objects.count() == before
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="start", preview_of=fingerprint))
    assert r.status_code == 302 and CurtailmentEvent.objects.count() == before + 1
    assert r["Location"].startswith("/curtailment/events/")


def test_preview_refusals_show_on_the_form(client, world):
    client.force_login(world.users["siteowner_a"])
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="preview", mode="kw_reduction"))
    assert r.status_code == 200 and "target_kw" in r.context["form"].errors
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="preview", scope_kind="zone",
                                                      scope_zones=[world.zone_b.pk]))  # fmt: skip
    assert r.status_code == 200 and r.context["form"].errors
    r = client.post("/curtailment/events/new/", _form(world.site_a.pk, action="preview", profile=world.profile_b.pk))
    assert "profile" in r.context["form"].errors


def test_profile_prefills_the_form_and_the_event(client, world):
    client.force_login(world.users["siteowner_a"])
    r = client.get("/curtailment/events/new/")
    assert r.context["form"].initial["profile"] == world.profile_a.pk
    body = {"site": world.site_a.pk, "profile": world.profile_a.pk, "mode": "", "priority": "", "scope_kind": "",
            "action": "preview"}  # fmt: skip
    r = client.post("/curtailment/events/new/", body)
    assert r.context["preview"]["profile"] == world.profile_a.pk


def test_end_now_before_the_minimum_duration_is_refused_clearly(client, world, monkeypatch):
    from intelligence.models import CurtailmentEventMiner

    event = world.event_a
    event.miners.update(state=CurtailmentEventMiner.State.CURTAILED)
    client.force_login(world.users["siteowner_a"])
    r = client.post(f"/curtailment/events/{event.pk}/end/", {"reason": "test"}, follow=True)
    text = r.content.decode()
    assert "minimum duration" in text and "Not ended" in text
    event.refresh_from_db()
    assert event.end_requested_at is None
    assert 'data-testid="min-duration-note"' in text


def test_end_now_before_any_miner_is_curtailed_cancels(client, world):
    client.force_login(world.users["siteowner_a"])
    r = client.post(f"/curtailment/events/{world.event_a.pk}/end/", {}, follow=True)
    world.event_a.refresh_from_db()
    assert world.event_a.status == CurtailmentEvent.Status.CANCELLED and "cancelled" in r.content.decode()


def test_read_only_grant_cannot_end_or_change(client, world):
    owner = world.users["owner"]
    event_b = events.event_start(actor=owner, site_id=world.site_b.pk, mode="full_stop")  # site B has no event yet
    client.force_login(world.users["siteowner_b_ro"])
    text = client.get(f"/curtailment/events/{event_b.pk}/").content.decode()
    assert "end-event" not in text
    assert client.post(f"/curtailment/events/{event_b.pk}/end/").status_code == 403
    assert client.post(f"/curtailment/profiles/{world.profile_b.pk}/delete/").status_code == 403
    assert client.post(f"/curtailment/events/{world.event_a.pk}/end/").status_code == 404


def test_profile_pages_create_edit_default_delete(client, world):
    client.force_login(world.users["siteowner_a"])
    body = {"site": world.site_a.pk, "name": "Shed 5", "mode": "kw_reduction", "target_kw": "5", "priority": "normal",
            "scope_kind": "zone", "scope_zones": [world.zone_a.pk], "min_duration_minutes": 10,
            "max_duration_minutes": 60, "restore_batch_size": 2, "restore_interval_seconds": 30,
            "drift_action": "flag"}  # fmt: skip
    r = client.post("/curtailment/profiles/new/", {**body, "min_duration_minutes": 100})
    assert r.status_code == 200 and "min_duration_minutes" in r.context["form"].errors
    r = client.post("/curtailment/profiles/new/", body)
    assert r.status_code == 302
    p = ResponseProfile.objects.get(name="Shed 5")
    assert p.scope == {"kind": "zone", "ids": [world.zone_a.pk]} and p.drift_action == "flag"
    r = client.post(f"/curtailment/profiles/{p.pk}/edit/", {**body, "name": "Shed 6", "site": world.site_b.pk})
    p.refresh_from_db()
    assert r.status_code == 302 and p.name == "Shed 6" and p.site_id == world.site_a.pk
    client.post(f"/curtailment/profiles/{p.pk}/default/")
    p.refresh_from_db()
    assert p.is_default
    text = client.get("/curtailment/profiles/").content.decode()
    assert "5.0 kW" in text and "10–60" in text
    client.post(f"/curtailment/profiles/{p.pk}/delete/")
    assert not ResponseProfile.objects.filter(pk=p.pk).exists()


def test_programme_pages_secret_shown_once(client, world):
    client.force_login(world.users["siteowner_a"])
    r = client.post("/curtailment/programmes/new/", {"site": world.site_a.pk, "name": "ERCOT ERS",
                                                     "profile": world.profile_a.pk})  # fmt: skip
    assert r.status_code == 302
    program = DemandResponseProgram.objects.get()
    r = client.get(r["Location"])
    secret = rp.program_secret(program).decode()
    text = r.content.decode()
    assert secret in text and "X-HashInsight-Signature" in text and "/api/v1/curtailment/dr/ercot-ers" in text
    assert "no-store" in r["Cache-Control"] or "max-age=0" in r["Cache-Control"]
    again = client.get(f"/curtailment/programmes/{program.pk}/secret/").content.decode()
    assert secret not in again and "program-secret-gone" in again
    listing = client.get("/curtailment/programmes/").content.decode()
    assert secret not in listing and "/api/v1/curtailment/dr/<wbr>ercot-ers" in listing
    r = client.post(f"/curtailment/programmes/{program.pk}/rotate/", follow=True)
    new = rp.program_secret(DemandResponseProgram.objects.get()).decode()
    assert new != secret and new in r.content.decode()
    client.post(f"/curtailment/programmes/{program.pk}/active/", {"active": "0"})
    assert not DemandResponseProgram.objects.get().is_active
    client.post(f"/curtailment/programmes/{program.pk}/active/", {"active": "1"})
    assert DemandResponseProgram.objects.get().is_active
    client.post(f"/curtailment/programmes/{program.pk}/delete/")
    assert not DemandResponseProgram.objects.exists()


def test_pages_in_chinese(client, world):
    client.force_login(world.users["siteowner_a"])
    for url in ("/curtailment/events/", "/curtailment/events/new/", f"/curtailment/events/{world.event_a.pk}/",
                "/curtailment/profiles/", "/curtailment/programmes/"):  # fmt: skip
        r = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert r.status_code == 200 and 'lang="zh-hans"' in r.content.decode().lower()[:400], url


def test_the_secret_shown_signs_a_webhook_the_receiver_accepts(client, world):
    """The recipe on the secret page, followed by a utility: the shown secret, as ASCII, signs the message."""
    import hashlib
    import hmac
    import json
    import time

    client.force_login(world.users["siteowner_a"])
    r = client.post(
        "/curtailment/programmes/new/", {"site": world.site_a.pk, "name": "Grid", "profile": world.profile_a.pk}
    )
    shown = client.get(r["Location"]).context["shown"]["secret"]
    client.logout()
    body = json.dumps({"event_id": "GRID-1", "action": "start", "reason": "EEA 2"}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(shown.encode("ascii"), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    r = client.post("/api/v1/curtailment/dr/grid", body, content_type="application/json",
                    HTTP_X_HASHINSIGHT_TIMESTAMP=ts, HTTP_X_HASHINSIGHT_SIGNATURE=f"sha256={sig}")  # fmt: skip
    assert r.status_code == 201, r.content[:300]
    assert CurtailmentEvent.objects.filter(external_id="GRID-1", program__slug="grid").exists()
    bad = client.post("/api/v1/curtailment/dr/grid", body, content_type="application/json",
                      HTTP_X_HASHINSIGHT_TIMESTAMP=ts, HTTP_X_HASHINSIGHT_SIGNATURE="sha256=" + "0" * 64)  # fmt: skip
    assert bad.status_code == 401
