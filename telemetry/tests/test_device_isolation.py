"""Device isolation, across the edge API and the user API. A collector enrolled at site A writes only
site A's miners (site B's are rejected per sample, in the same batch as A's accepted ones, and never
written), reads only site A's inventory whatever it asks for, and changes only its own row; a user's
session or API token is not a device on the edge API, and a device token is not a user on /api/v1/.

Single cases of some of these live next to their features (test_ingest, test_safety_events,
test_edge_devices); here they are checked together, in both directions, with mixed batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hashinsight.accounts.services import api_token_create
from telemetry import devices
from telemetry.ingest_store import miner_map_invalidate
from telemetry.models import Alert, EdgeDevice, EnrollmentCode, LiveStatus, RawSample, SafetyEvent

pytestmark = pytest.mark.django_db

EDGE = "/api/edge/v1"
A_KEYS = [("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")]
B_KEYS = [("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")]


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


@pytest.fixture
def collectors(farm):
    """A registered collector per site: {"A": (device, token), "B": (device, token)}."""
    out = {}
    for key, site in (("A", farm.site_a), ("B", farm.site_b)):
        _row, code = devices.enrollment_code_create(site=site)
        device, token, _secret = devices.device_register(code=code, name=f"collector-{key}", version="1.0.0")
        out[key] = (device, token)
    return out


def recent(seconds: int = 60) -> str:
    return (datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def sample(serial: str, ts: str) -> dict:
    return {"miner": serial, "ts": ts, "hashrate_ths": 100.0, "temp_chip_max_c": 70.0, "status": "hashing"}


def as_device(api, token):
    api.force_authenticate(user=None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def post_json(api, url, body):
    return api.post(url, data=json.dumps(body), content_type="application/json")


def test_a_mixed_batch_writes_only_the_devices_own_sites_miners(api, farm, collectors):
    """B's miners are rejected one by one (as unknown, like a serial that exists nowhere), A's accepted."""
    keys = [A_KEYS[0], B_KEYS[0], A_KEYS[1], B_KEYS[1], B_KEYS[2], A_KEYS[2]]
    ts = recent()
    batch = {"samples": [sample(farm.miners[k].serial, ts) for k in keys]}
    device_a, token_a = collectors["A"]
    response = post_json(as_device(api, token_a), f"{EDGE}/telemetry/ingest", batch)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    assert body["rejected"] == [
        {"index": i, "miner": farm.miners[k].serial, "reason": "unknown_miner"}
        for i, k in enumerate(keys)
        if k in B_KEYS
    ]
    a_ids = {farm.miners[k].pk for k in A_KEYS}
    assert set(RawSample.objects.values_list("miner_id", flat=True)) == a_ids
    assert set(RawSample.objects.values_list("site_id", "device_id").distinct()) == {(farm.site_a.pk, device_a.pk)}
    assert set(LiveStatus.objects.values_list("miner_id", flat=True)) == a_ids
    # The same batch from B's collector: the other half, and A's rows untouched.
    response = post_json(as_device(api, collectors["B"][1]), f"{EDGE}/telemetry/ingest", batch)
    assert response.json()["accepted"] == 3
    assert [r["index"] for r in response.json()["rejected"]] == [0, 2, 5]
    assert RawSample.objects.filter(device_id=device_a.pk).count() == 3
    assert RawSample.objects.filter(site_id=farm.site_b.pk, device_id=collectors["B"][0].pk).count() == 3


def test_safety_events_for_another_sites_miners_are_rejected_per_event(api, farm, collectors):
    a_miner, b_miner = farm.miners[A_KEYS[0]], farm.miners[B_KEYS[0]]
    events = [
        {"event_id": "e-1", "miner": b_miner.serial, "kind": "overheat_shutdown", "ts": recent()},
        {"event_id": "e-2", "miner": a_miner.serial, "kind": "fan_failure", "ts": recent()},
    ]
    response = post_json(as_device(api, collectors["A"][1]), f"{EDGE}/events/safety/batch", {"events": events})
    assert response.status_code == 200, response.content
    assert [(r["index"], r["reason"]) for r in response.json()["rejected"]] == [(0, "unknown_miner")]
    assert list(SafetyEvent.objects.values_list("site_id", "miner_id")) == [(farm.site_a.pk, a_miner.pk)]
    assert not Alert.objects.filter(site=farm.site_b).exists()


@pytest.mark.parametrize("query", [{}, {"site": "B"}, {"site_id": "B"}, {"zone": "B"}, {"after": 0, "limit": 5000}])
def test_inventory_is_the_devices_own_site_whatever_is_asked(api, farm, collectors, query):
    params = {
        k: (farm.site_b.pk if k in ("site", "site_id") else farm.zone_b.pk if k == "zone" else v)
        for k, v in query.items()
    }
    response = as_device(api, collectors["A"][1]).get(f"{EDGE}/inventory", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["site_id"] == farm.site_a.pk
    assert {m["serial"] for m in body["miners"]} == {farm.miners[k].serial for k in A_KEYS}


def test_health_changes_only_the_reporting_device(api, farm, collectors):
    device_a, token_a = collectors["A"]
    device_b, _token_b = collectors["B"]
    body = {"version": "9.9.9", "spool_depth": 3, "device_id": device_b.pk, "site_id": farm.site_b.pk}
    assert post_json(as_device(api, token_a), f"{EDGE}/health", body).status_code == 200
    a, b = EdgeDevice.objects.get(pk=device_a.pk), EdgeDevice.objects.get(pk=device_b.pk)
    assert (a.version, a.health["spool_depth"]) == ("9.9.9", 3)
    assert (b.version, b.health, b.last_seen_at) == ("1.0.0", {}, None)


# The edge endpoints a user must not reach, with a body each would accept from a device.
def edge_calls(farm):
    serial = farm.miners[A_KEYS[0]].serial
    return [
        ("post", f"{EDGE}/telemetry/ingest", {"samples": [sample(serial, recent())]}),
        ("post", f"{EDGE}/events/safety/batch", {"events": [{"event_id": "u-1", "miner": serial,
                                                            "kind": "power_loss", "ts": recent()}]}),
        ("post", f"{EDGE}/health", {"spool_depth": 1}),
        ("get", f"{EDGE}/inventory", None),
    ]  # fmt: skip


def call(api, method, url, body):
    return post_json(api, url, body) if method == "post" else api.get(url)


@pytest.mark.parametrize("username", ["owner", "siteowner_a"])
def test_a_users_session_or_api_token_is_not_a_device(api, client, farm, collectors, username):
    user = farm.users[username]
    _token_row, user_token = api_token_create(user=user, name="ci")
    client.force_login(user)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    for method, url, body in edge_calls(farm):
        by_token = call(api, method, url, body)
        assert by_token.status_code == 401, (url, by_token.content)
        assert by_token.json()["error_code"] == "authentication_failed", url
        by_session = client.post(url, json.dumps(body), content_type="application/json") if body else client.get(url)
        assert by_session.status_code == 401, (url, by_session.content)
        assert by_session.json()["error_code"] == "not_authenticated", url
    assert not RawSample.objects.exists() and not LiveStatus.objects.exists() and not SafetyEvent.objects.exists()
    assert all(d.health == {} for d in EdgeDevice.objects.all())


# User endpoints a device token must not reach: reads and writes, of its own site too.
def user_calls(farm, device):
    site, miner = farm.site_a.pk, farm.miners[A_KEYS[0]].pk
    return [
        ("get", "/api/v1/me", None),
        ("get", "/api/v1/sites", None),
        ("get", f"/api/v1/sites/{site}", None),
        ("get", "/api/v1/miners", None),
        ("get", f"/api/v1/telemetry/sites/{site}/live", None),
        ("get", f"/api/v1/telemetry/sites/{site}/summary", None),
        ("get", f"/api/v1/telemetry/miners/{miner}/history", None),
        ("get", "/api/v1/telemetry/daily", None),
        ("get", f"/api/v1/sites/{site}/alert-rules", None),
        ("get", "/api/v1/edge-devices", None),
        ("post", f"/api/v1/edge-devices/{device.pk}/rotate", {}),
        ("post", f"/api/v1/edge-devices/{device.pk}/revoke", {}),
        ("post", "/api/v1/edge-enrollments", {"site": site}),
        ("post", "/api/v1/tokens", {"name": "from-a-device"}),
    ]


def test_a_device_token_is_not_a_user(api, farm, collectors):
    device, token = collectors["A"]
    before = EdgeDevice.objects.get(pk=device.pk)
    as_device(api, token)
    for method, url, body in user_calls(farm, device):
        response = call(api, method, url, body)
        assert response.status_code == 401, (url, response.status_code)
        assert response.json()["error_code"] == "authentication_failed", url
    after = EdgeDevice.objects.get(pk=device.pk)
    assert (after.token_hash, after.revoked_at) == (before.token_hash, None)
    assert EnrollmentCode.objects.filter(used_at__isnull=True).count() == 0
    # Nor on the portal: a device token is no login.
    assert api.get(f"/sites/{farm.site_a.slug}/telemetry/").status_code == 302
