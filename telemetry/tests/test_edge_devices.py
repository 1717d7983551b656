"""Edge device identity: enrollment codes, registration, rotation, revocation, health and inventory;
who may do what on the user API, the portal and the admin; the edge_enroll command."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from hashinsight.accounts.models import hash_secret
from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import MinerFactory, ZoneFactory
from telemetry import devices
from telemetry.models import EdgeDevice, EnrollmentCode

pytestmark = pytest.mark.django_db

REGISTER = "/api/edge/v1/register"
HEALTH = "/api/edge/v1/health"
INVENTORY = "/api/edge/v1/inventory"
USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "guest"]


def enroll(site, zone=None):
    return devices.enrollment_code_create(site=site, zone=zone)


def register(api, code, name="collector-1", version="1.0.0", **extra):
    return api.post(REGISTER, {"enrollment_code": code, "name": name, "version": version}, format="json", **extra)


def new_device(site, zone=None, name="collector-1"):
    _row, code = enroll(site, zone)
    return devices.device_register(code=code, name=name, version="1.0.0")


def as_device(api, token):
    api.force_authenticate(user=None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def device_events(action=None):
    qs = OutboxEvent.objects.filter(event_type="edge_device.changed")
    return [e.payload for e in qs.order_by("created_at") if action is None or e.payload["action"] == action]


# --- Enrollment and registration --------------------------------------------------------------------


def test_code_is_stored_only_as_a_hash_and_valid_for_24_hours(farm):
    before = timezone.now()
    row, code = enroll(farm.site_a, farm.zone_a)
    assert len(code) == 23 and code.count("-") == 3  # XXXXX-XXXXX-XXXXX-XXXXX
    assert row.code_hash == hash_secret(code.replace("-", "")) and code not in row.code_hash
    assert timedelta(hours=24) <= row.expires_at - before <= timedelta(hours=24, seconds=5)
    assert row.zone == farm.zone_a and row.used_at is None


def test_zone_must_belong_to_the_site(farm):
    with pytest.raises(DomainError) as exc:
        enroll(farm.site_a, farm.zone_b)
    assert exc.value.code == "zone_not_in_site"
    assert not EnrollmentCode.objects.exists()


def test_register_returns_credentials_once_and_stores_only_hash_and_sealed_secret(api, farm):
    _row, code = enroll(farm.site_a, farm.zone_a)
    response = register(api, code.lower())  # case and dashes do not matter
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    device = EdgeDevice.objects.get(pk=body["device_id"])
    assert (body["site_id"], body["zone_id"]) == (farm.site_a.pk, farm.zone_a.pk)
    assert body["site"] == {"slug": farm.site_a.slug, "name": farm.site_a.name}
    prefix, secret = body["token"].split("_", 2)[1:]
    assert body["token"].startswith("hie_") and device.token_prefix == prefix
    assert device.token_hash == hash_secret(secret)
    key = base64.urlsafe_b64decode(body["hmac_secret"] + "=" * (-len(body["hmac_secret"]) % 4))
    assert len(key) == 32 and devices.device_hmac_secret(device) == key
    stored = " ".join(str(v) for v in EdgeDevice.objects.filter(pk=device.pk).values().first().values())
    assert secret not in stored and body["hmac_secret"] not in stored
    assert device.secret_sealed.startswith("hie1.")
    # Shown once: nothing in the user API carries them again.
    api.credentials()
    api.force_authenticate(farm.users["owner"])
    detail = api.get(f"/api/v1/edge-devices/{device.pk}").json()
    assert "token" not in detail and "hmac_secret" not in detail and detail["status"] == "never_seen"
    assert device_events() == [{"device_id": device.pk, "site_id": farm.site_a.pk, "action": "registered"}]


def test_the_address_is_recorded_by_the_first_authenticated_request_not_by_registration(api, farm):
    _row, code = enroll(farm.site_a, farm.zone_a)
    body = register(api, code).json()
    device = EdgeDevice.objects.get(pk=body["device_id"])
    assert (device.last_seen_at, device.last_seen_ip) == (None, None)  # never seen: status never_seen
    response = api.get("/api/edge/v1/inventory", HTTP_AUTHORIZATION=f"Bearer {body['token']}", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.last_seen_at is not None and device.last_seen_ip == "10.1.2.3"


def test_sealed_secret_is_bound_to_its_device(farm):
    from hashinsight.security.crypto import DecryptionError

    first, _t, _s = new_device(farm.site_a, name="first")
    second, _t, _s = new_device(farm.site_a, name="second")
    second.secret_sealed = first.secret_sealed  # copied onto another row, it does not open
    with pytest.raises(DecryptionError):
        devices.device_hmac_secret(second)


def test_code_is_single_use(api, farm):
    _row, code = enroll(farm.site_a)
    assert register(api, code).status_code == 201
    second = register(api, code, name="collector-2")
    assert second.status_code == 410 and second.json()["error_code"] == "enrollment_code_used"
    assert EdgeDevice.objects.count() == 1


def test_expired_and_unknown_codes_are_refused(api, farm):
    row, code = enroll(farm.site_a)
    EnrollmentCode.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = register(api, code)
    assert expired.status_code == 410 and expired.json()["error_code"] == "enrollment_code_expired"
    for bad in ["AAAAA-AAAAA-AAAAA-AAAAA", "not a code", "x" * 64]:
        unknown = register(api, bad)
        assert unknown.status_code == 400 and unknown.json()["error_code"] == "enrollment_code_invalid"
    assert not EdgeDevice.objects.exists() and EnrollmentCode.objects.get(pk=row.pk).used_at is None


@pytest.mark.parametrize(
    "body",
    [{}, {"enrollment_code": "A", "name": ""}, {"enrollment_code": ["x"], "name": "n"},
     {"enrollment_code": "ABCDE", "name": "n" * 101}],
)  # fmt: skip
def test_malformed_register_bodies_answer_400_in_the_standard_shape(api, farm, body):
    response = api.post(REGISTER, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"error_code", "message", "request_id", "details"}


def test_name_with_control_characters_is_refused_and_the_code_stays_usable(farm):
    row, code = enroll(farm.site_a)
    with pytest.raises(DomainError) as exc:
        devices.device_register(code=code, name="bad\x07name", version="1")
    assert exc.value.code == "invalid_name"
    assert EnrollmentCode.objects.get(pk=row.pk).used_at is None


def test_register_is_throttled_per_address(api, farm, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"edge_register": "2/hour"})
    codes = [register(api, "AAAAA-AAAAA-AAAAA-AAAA2").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


@pytest.mark.django_db(transaction=True)
def test_two_registrations_racing_on_one_code_make_one_device(farm):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite serialises writers anyway)")
    _row, code = enroll(farm.site_a)
    results: list = []
    barrier = threading.Barrier(2)

    def attempt(n):
        barrier.wait()
        try:
            devices.device_register(code=code, name=f"c{n}", version="1")
            results.append("ok")
        except DomainError as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["enrollment_code_used", "ok"]
    assert EdgeDevice.objects.count() == 1


# --- Rotation and revocation ------------------------------------------------------------------------


def test_rotated_away_token_answers_401_at_once_and_new_one_works(api, farm):
    device, old_token, old_secret = new_device(farm.site_a)
    assert as_device(api, old_token).get(INVENTORY).status_code == 200
    device, new_token, new_secret = devices.device_rotate(device=device, actor=farm.users["siteowner_a"])
    assert new_token != old_token and new_secret != old_secret and device.rotated_at is not None
    assert as_device(api, old_token).get(INVENTORY).status_code == 401
    assert as_device(api, new_token).get(INVENTORY).status_code == 200
    key = base64.urlsafe_b64decode(new_secret + "=" * (-len(new_secret) % 4))
    assert devices.device_hmac_secret(EdgeDevice.objects.get(pk=device.pk)) == key
    assert [e["action"] for e in device_events()] == ["registered", "rotated"]


def test_revoked_token_answers_401_at_once_and_revoked_device_cannot_rotate(api, farm):
    device, token, _secret = new_device(farm.site_a)
    assert as_device(api, token).post(HEALTH, {"spool_depth": 1}, format="json").status_code == 200
    devices.device_revoke(device=device, actor=farm.users["owner"])
    response = as_device(api, token).post(HEALTH, {"spool_depth": 1}, format="json")
    assert response.status_code == 401 and response.json()["error_code"] == "authentication_failed"
    assert as_device(api, token).get(INVENTORY).status_code == 401
    devices.device_revoke(device=device, actor=farm.users["owner"])  # a repeat changes nothing
    assert [e["action"] for e in device_events()] == ["registered", "revoked"]
    with pytest.raises(DomainError) as exc:
        devices.device_rotate(device=device, actor=farm.users["owner"])
    assert exc.value.code == "device_revoked" and exc.value.status == 409


def test_read_only_site_owner_cannot_enroll_rotate_or_revoke_through_the_services(farm):
    device, _token, _secret = new_device(farm.site_b)
    ro = farm.users["siteowner_b_ro"]
    for call in (
        lambda: devices.enrollment_code_create(site=farm.site_b, actor=ro),
        lambda: devices.device_rotate(device=device, actor=ro),
        lambda: devices.device_revoke(device=device, actor=ro),
    ):
        with pytest.raises(DomainError) as exc:
            call()
        assert exc.value.status == 403
    assert EdgeDevice.objects.get(pk=device.pk).revoked_at is None


# --- Health and inventory ---------------------------------------------------------------------------


def test_health_is_validated_and_stored_with_the_version(api, farm):
    device, token, _secret = new_device(farm.site_a)
    body = {
        "version": "1.2.0", "spool_depth": 12, "poll_errors": 3, "miners_polled": 497, "miners_total": 500,
        "last_push_at": "2026-11-26T00:00:00+00:00", "last_error": "timeout 10.0.0.7", "future_field": {"x": 1},
    }  # fmt: skip
    response = as_device(api, token).post(HEALTH, body, format="json")
    assert response.status_code == 200, response.json()
    device.refresh_from_db()
    assert device.version == "1.2.0"
    assert device.health["spool_depth"] == 12 and device.health["miners_polled"] == 497
    assert "future_field" not in device.health and "reported_at" in device.health
    for bad in [{"spool_depth": -1}, {"spool_depth": "12"}, {"poll_errors": True}, {"last_push_at": "yesterday"},
                {"last_push_at": "2026-11-26T00:00:00"}, {"last_error": "x" * 201}]:  # fmt: skip
        refused = as_device(api, token).post(HEALTH, bad, format="json")
        assert refused.status_code == 400 and refused.json()["error_code"] == "invalid_health", bad
    too_big = as_device(api, token).post(HEALTH, {"junk": "x" * 5000}, format="json")
    assert too_big.status_code == 413
    assert as_device(api, token).post(HEALTH, [1, 2], format="json").status_code == 400
    device.refresh_from_db()
    assert device.health["spool_depth"] == 12  # refused reports changed nothing


def test_health_and_inventory_need_a_device_token(api, farm):
    assert api.post(HEALTH, {}, format="json").status_code == 401
    assert api.get(INVENTORY).status_code == 401
    api.force_authenticate(farm.users["owner"])  # a user is not a device
    assert api.get(INVENTORY).status_code in (401, 403)
    api.force_authenticate(user=None)
    api.credentials(HTTP_AUTHORIZATION="Bearer hie_nope_nope")
    assert api.get(INVENTORY).status_code == 401


def test_inventory_lists_only_the_devices_site_and_zone_with_ips(api, farm):
    a_miners = {m.serial for (site, _c), m in farm.miners.items() if site == "site-a"}
    ip_miner = farm.miners[("site-a", "own")]
    ip_miner.set_identity(ip="10.1.2.3", password="secret-pw")
    ip_miner.save()
    _device, token, _secret = new_device(farm.site_a)
    body = as_device(api, token).get(INVENTORY).json()
    assert body["site_id"] == farm.site_a.pk and body["next_after"] is None
    assert {m["serial"] for m in body["miners"]} == a_miners  # never site B's
    row = next(m for m in body["miners"] if m["serial"] == ip_miner.serial)
    assert row["ip"] == "10.1.2.3" and row["model"] == ip_miner.model.code
    assert row["hashrate_ths"] == float(ip_miner.model.hashrate_ths) and "password" not in row
    # A device enrolled for a zone sees only that zone's miners.
    other_zone = ZoneFactory(site=farm.site_a, name="A2")
    in_zone = MinerFactory(site=farm.site_a, zone=other_zone)
    _zdev, ztoken, _s = new_device(farm.site_a, other_zone, name="zone-collector")
    assert [m["serial"] for m in as_device(api, ztoken).get(INVENTORY).json()["miners"]] == [in_zone.serial]


def test_inventory_pages_by_id(api, farm):
    _device, token, _secret = new_device(farm.site_a)
    seen, after, pages = [], 0, 0
    while after is not None:
        body = as_device(api, token).get(INVENTORY, {"after": after, "limit": 2}).json()
        seen += [m["id"] for m in body["miners"]]
        after, pages = body["next_after"], pages + 1
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 3 and pages == 2
    first = as_device(api, token).get(INVENTORY, {"limit": 2}).json()
    following = as_device(api, token).get(first["next"]).json()  # the path form of the cursor
    assert [m["id"] for m in following["miners"]] == seen[2:] and following["next"] is None
    for bad in ({"limit": 0}, {"limit": 5001}, {"after": "x"}, {"after": -1}):
        response = as_device(api, token).get(INVENTORY, bad)
        assert response.status_code == 400 and response.json()["error_code"] == "invalid_parameter"


# --- User API: who may do what ----------------------------------------------------------------------

# Written out by hand. Devices: one on A, one on B. Reads: which devices each user lists.
LISTS = {
    "owner": {"A", "B"}, "admin": {"A", "B"}, "siteowner_a": {"A"}, "siteowner_b_ro": {"B"},
    "client_x": set(), "client_y": set(), "customer": 403, "guest": 403,
}  # fmt: skip
# Rotate/revoke answers per device; enrollment answers per site.
WRITES = {
    "owner": {"A": 200, "B": 200}, "admin": {"A": 200, "B": 200}, "siteowner_a": {"A": 200, "B": 404},
    "siteowner_b_ro": {"A": 404, "B": 403}, "client_x": {"A": 404, "B": 404}, "client_y": {"A": 404, "B": 404},
    "customer": {"A": 403, "B": 403}, "guest": {"A": 403, "B": 403},
}  # fmt: skip
ENROLL = {
    "owner": {"A": 201, "B": 201}, "admin": {"A": 201, "B": 201}, "siteowner_a": {"A": 201, "B": 400},
    "siteowner_b_ro": {"A": 400, "B": 403}, "client_x": {"A": 403, "B": 403}, "client_y": {"A": 403, "B": 403},
    "customer": {"A": 403, "B": 403}, "guest": {"A": 403, "B": 403},
}  # fmt: skip


@pytest.mark.parametrize("user", USERS)
def test_user_api_permissions(api, farm, user):
    dev = {"A": new_device(farm.site_a)[0], "B": new_device(farm.site_b)[0]}
    sites = {"A": farm.site_a, "B": farm.site_b}
    api.force_authenticate(farm.users[user])
    listed = api.get("/api/v1/edge-devices")
    if LISTS[user] == 403:
        assert listed.status_code == 403
    else:
        assert {r["site"] for r in listed.json()["results"]} == {sites[k].pk for k in LISTS[user]}
        for key, device in dev.items():
            assert api.get(f"/api/v1/edge-devices/{device.pk}").status_code == (200 if key in LISTS[user] else 404)
    for key, device in dev.items():
        expected = WRITES[user][key]
        rotated = api.post(f"/api/v1/edge-devices/{device.pk}/rotate")
        assert rotated.status_code == expected, (user, key, rotated.json())
        if expected == 200:
            assert rotated.json()["token"].startswith("hie_") and rotated["Cache-Control"] == "no-store"
        revoked = api.post(f"/api/v1/edge-devices/{device.pk}/revoke")
        assert revoked.status_code == expected
        still_active = EdgeDevice.objects.get(pk=device.pk).revoked_at is None
        assert still_active == (expected != 200)
        if expected == 200:
            assert revoked.json()["status"] == "revoked" and "token" not in revoked.json()
        enrolled = api.post("/api/v1/edge-enrollments", {"site": sites[key].pk}, format="json")
        assert enrolled.status_code == ENROLL[user][key], (user, key, enrolled.json())
        if enrolled.status_code == 201:
            assert len(enrolled.json()["code"]) == 23 and enrolled["Cache-Control"] == "no-store"
    made = EnrollmentCode.objects.filter(created_by=farm.users[user]).count()
    assert made == sum(1 for v in ENROLL[user].values() if v == 201)


def test_enrollment_with_a_zone_of_another_site_is_refused(api, farm):
    api.force_authenticate(farm.users["owner"])
    response = api.post("/api/v1/edge-enrollments", {"site": farm.site_a.pk, "zone": farm.zone_b.pk}, format="json")
    assert response.status_code == 400 and "zone" in response.json()["details"]
    ok = api.post("/api/v1/edge-enrollments", {"site": farm.site_a.pk, "zone": farm.zone_a.pk}, format="json")
    assert ok.status_code == 201 and ok.json()["zone"] == farm.zone_a.pk


def test_list_filters_by_site_and_revoked(api, farm):
    a, _t, _s = new_device(farm.site_a)
    b, _t, _s = new_device(farm.site_b)
    devices.device_revoke(device=b)
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.get("/api/v1/edge-devices", {"site": farm.site_b.pk}).status_code == 400  # hidden = missing
    api.force_authenticate(farm.users["owner"])
    assert [r["id"] for r in api.get("/api/v1/edge-devices", {"site": farm.site_a.pk}).json()["results"]] == [a.pk]
    assert [r["id"] for r in api.get("/api/v1/edge-devices", {"revoked": "true"}).json()["results"]] == [b.pk]
    assert [r["id"] for r in api.get("/api/v1/edge-devices", {"revoked": "false"}).json()["results"]] == [a.pk]


# --- Management command -----------------------------------------------------------------------------


def test_edge_enroll_prints_a_code_that_registers(api, farm):
    out = StringIO()
    call_command("edge_enroll", "--site", farm.site_a.slug, "--zone", farm.zone_a.name, stdout=out)
    text = out.getvalue()
    code = next(word for word in text.split() if word.count("-") == 3 and len(word) == 23)
    assert "expires" in text.lower()
    body = register(api, code).json()
    assert body["zone_id"] == farm.zone_a.pk
    out = StringIO()
    call_command("edge_enroll", "--site", farm.site_a.slug, "--zone", str(farm.zone_a.pk), stdout=out)
    assert EnrollmentCode.objects.filter(zone=farm.zone_a).count() == 2


def test_edge_enroll_refuses_unknown_site_and_foreign_zone(farm):
    with pytest.raises(CommandError):
        call_command("edge_enroll", "--site", "nowhere")
    with pytest.raises(CommandError):
        call_command("edge_enroll", "--site", farm.site_a.slug, "--zone", farm.zone_b.name)
    with pytest.raises(CommandError):
        call_command("edge_enroll", "--site", farm.site_a.slug, "--zone", str(farm.zone_b.pk))
    assert not EnrollmentCode.objects.exists()


# --- Portal -----------------------------------------------------------------------------------------

# The site page's section: None = not shown; otherwise whether the manage buttons are there.
SECTION = {
    "owner": {"A": True, "B": True}, "admin": {"A": True, "B": True}, "siteowner_a": {"A": True, "B": 404},
    "siteowner_b_ro": {"A": 404, "B": False}, "client_x": {"A": None, "B": None},
    "customer": {"A": 403, "B": 403}, "guest": {"A": 403, "B": 403},
}  # fmt: skip
# Enroll, rotate and revoke in the portal: 302 done, otherwise the refusal.
PORTAL_WRITES = {
    "owner": {"A": 302, "B": 302}, "admin": {"A": 302, "B": 302}, "siteowner_a": {"A": 302, "B": 404},
    "siteowner_b_ro": {"A": 404, "B": 403}, "client_x": {"A": 403, "B": 403},
    "customer": {"A": 403, "B": 403}, "guest": {"A": 403, "B": 403},
}  # fmt: skip


@pytest.mark.parametrize("user", list(SECTION))
def test_portal_section_and_writes_per_role(client, farm, user):
    dev = {"A": new_device(farm.site_a, name="alpha-collector")[0], "B": new_device(farm.site_b, name="bravo")[0]}
    sites = {"A": farm.site_a, "B": farm.site_b}
    client.force_login(farm.users[user])
    for key, site in sites.items():
        page = client.get(f"/sites/{site.slug}/")
        rule = SECTION[user][key]
        if isinstance(rule, int) and not isinstance(rule, bool):
            assert page.status_code == rule
            continue
        html = page.content.decode()
        assert page.status_code == 200
        assert ('data-testid="edge-devices"' in html) == (rule is not None)
        assert (dev[key].name in html) == (rule is not None)
        assert ('data-testid="edge-rotate"' in html) == bool(rule) and ('data-testid="edge-enroll"' in html) == bool(
            rule
        )
    for key, site in sites.items():
        expected = PORTAL_WRITES[user][key]
        enrolled = client.post(f"/sites/{site.slug}/edge-devices/enroll/", {"zone": ""})
        assert enrolled.status_code == expected, (user, key)
        if expected == 302:
            assert enrolled["Location"] == f"/sites/{site.slug}/edge-devices/credentials/"
            shown = client.get(enrolled["Location"])
            assert shown["Cache-Control"].startswith("max-age=0") and "no-store" in shown["Cache-Control"]
            code = shown.context["shown"]["code"]
            assert code in shown.content.decode()
            assert code not in client.get(enrolled["Location"]).content.decode()  # shown once
        rotated = client.post(f"/sites/{site.slug}/edge-devices/{dev[key].pk}/rotate/")
        assert rotated.status_code == expected, (user, key)
        if expected == 302:
            token = client.get(rotated["Location"]).context["shown"]["token"]
            assert EdgeDevice.objects.get(pk=dev[key].pk).token_prefix == token.split("_")[1]
        revoked = client.post(f"/sites/{site.slug}/edge-devices/{dev[key].pk}/revoke/")
        assert revoked.status_code == expected
        assert (EdgeDevice.objects.get(pk=dev[key].pk).revoked_at is not None) == (expected == 302)
    assert EnrollmentCode.objects.filter(created_by=farm.users[user]).count() == sum(
        1 for v in PORTAL_WRITES[user].values() if v == 302
    )


def test_portal_device_of_another_site_is_not_found_through_this_sites_url(client, farm):
    device_b = new_device(farm.site_b)[0]
    client.force_login(farm.users["owner"])
    assert client.post(f"/sites/{farm.site_a.slug}/edge-devices/{device_b.pk}/revoke/").status_code == 404
    assert EdgeDevice.objects.get(pk=device_b.pk).revoked_at is None


def test_portal_enroll_with_a_zone_and_a_foreign_zone(client, farm):
    client.force_login(farm.users["siteowner_a"])
    ok = client.post(f"/sites/{farm.site_a.slug}/edge-devices/enroll/", {"zone": farm.zone_a.pk})
    assert ok.status_code == 302 and EnrollmentCode.objects.get().zone == farm.zone_a
    shown = client.get(ok["Location"]).content.decode()
    assert farm.zone_a.name in shown and 'data-testid="edge-code-expiry"' in shown
    for bad in (farm.zone_b.pk, "x", "99999999"):
        refused = client.post(f"/sites/{farm.site_a.slug}/edge-devices/enroll/", {"zone": bad})
        assert refused.status_code == 302 and refused["Location"].endswith("#edge-devices")
    assert EnrollmentCode.objects.count() == 1


def test_portal_shows_status_last_seen_address_and_health(api, client, farm):
    never, _t, _s = new_device(farm.site_a, name="never-collector")
    seen, token, _s = new_device(farm.site_a, name="seen-collector")
    gone, _t, _s = new_device(farm.site_a, name="gone-collector")
    devices.device_revoke(device=gone)
    report = {"spool_depth": 1234, "miners_polled": 480, "miners_total": 500, "poll_errors": 2, "version": "2.0.1"}
    as_device(api, token).post(HEALTH, report, format="json", REMOTE_ADDR="192.0.2.7")
    client.force_login(farm.users["siteowner_a"])
    html = client.get(f"/sites/{farm.site_a.slug}/").content.decode()
    rows = {d: html.split(f'data-device-id="{d.pk}"')[1].split("</tr>")[0] for d in (never, seen, gone)}
    assert "Never seen" in rows[never] and "Revoked" in rows[gone] and "edge-rotate" not in rows[gone]
    assert "Active" in rows[seen] and "192.0.2.7" in rows[seen] and "2.0.1" in rows[seen]
    assert "480 of 500 miners polled" in rows[seen] and "1,234 samples waiting" in rows[seen]
    assert "2 poll errors" in rows[seen] and "<time datetime=" in rows[seen]


# --- Admin ------------------------------------------------------------------------------------------


def test_admin_rotate_shows_new_credentials_once_and_skips_read_only_sites(api, client, farm):
    ro = farm.users["siteowner_a"]
    from sites.services import site_grant

    site_grant(user=ro, site=farm.site_b, manage=False)  # sees B, may not change it
    mine, old_token, _s = new_device(farm.site_a)
    viewed, viewed_token, _s = new_device(farm.site_b)
    client.force_login(ro)
    listing = client.get("/admin/telemetry/edgedevice/")
    assert listing.status_code == 200 and mine.name in listing.content.decode()
    change = client.get(f"/admin/telemetry/edgedevice/{mine.pk}/change/")
    assert change.status_code == 200 and mine.token_hash not in change.content.decode()
    assert mine.secret_sealed not in change.content.decode()
    response = client.post(
        "/admin/telemetry/edgedevice/", {"action": "rotate_credentials", "_selected_action": [mine.pk, viewed.pk]}
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    (item,) = response.context["items"]
    assert item["token"] in response.content.decode()
    assert as_device(api, old_token).get(INVENTORY).status_code == 401
    assert as_device(api, item["token"]).get(INVENTORY).status_code == 200
    assert as_device(api, viewed_token).get(INVENTORY).status_code == 200  # read-only site: untouched
    client.post("/admin/telemetry/edgedevice/", {"action": "revoke_devices", "_selected_action": [mine.pk, viewed.pk]})
    assert EdgeDevice.objects.get(pk=mine.pk).revoked_at is not None
    assert EdgeDevice.objects.get(pk=viewed.pk).revoked_at is None
    assert client.get("/admin/telemetry/edgedevice/add/").status_code == 403


def test_admin_lists_are_scoped_and_add_code_shows_it_once(api, client, farm):
    new_device(farm.site_b, name="bravo-only")
    client.force_login(farm.users["siteowner_a"])
    assert "bravo-only" not in client.get("/admin/telemetry/edgedevice/").content.decode()
    response = client.post("/admin/telemetry/enrollmentcode/add/", {"site": farm.site_a.pk, "zone": farm.zone_a.pk})
    assert response.status_code == 200, response.content[:500]
    (item,) = response.context["items"]
    assert item["code"] in response.content.decode()
    assert register(api, item["code"]).json()["zone_id"] == farm.zone_a.pk
    # A site the user may not change is not offered.
    refused = client.post("/admin/telemetry/enrollmentcode/add/", {"site": farm.site_b.pk})
    assert refused.status_code == 200 and "items" not in refused.context
    assert EnrollmentCode.objects.count() == 2  # bravo-only's and the one above
    mine = EnrollmentCode.objects.get(site=farm.site_a)
    detail = client.get(f"/admin/telemetry/enrollmentcode/{mine.pk}/change/")
    assert detail.status_code == 200 and mine.code_hash not in detail.content.decode()
    codes = client.get("/admin/telemetry/enrollmentcode/").content.decode()
    assert codes.count("/change/") >= 1 and farm.site_b.name not in codes
