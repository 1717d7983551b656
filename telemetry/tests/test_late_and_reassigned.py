"""Two paths across ingest, rollups and reads: a collector replaying its spool after an outage still
reaches the 5-minute history, and a miner handed to another client keeps its earlier samples with the
client they belonged to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry import rollups
from telemetry.ingest import validate_samples
from telemetry.ingest_store import miner_map, miner_map_invalidate, store_batch
from telemetry.models import History5m, RawSample, RollupCursor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


def push(device, samples):
    validated = validate_samples(samples, miner_map(device.site_id), timezone.now())
    assert validated.rejected == []
    return store_batch(site_id=device.site_id, device_id=device.pk, validated=validated)


def sample(miner, ts, hashrate=100.0):
    return {"miner": miner.serial, "ts": ts.isoformat().replace("+00:00", "Z"), "hashrate_ths": hashrate,
            "status": "hashing"}  # fmt: skip


def test_a_replayed_spool_reaches_the_5_minute_history(farm):
    from telemetry.tests.test_ingest import make_device

    device, _ = make_device(farm.site_a)
    miner = farm.miners[("site-a", "own")] if hasattr(farm, "miners") else farm.site_a.miners.first()
    now = timezone.now()
    rollups.rollup_pending_5m(now=now)  # the job is up to date: its cursor is near now
    cursor = RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until
    late = rollups.floor_window(now - timedelta(minutes=40))
    assert late < cursor - 2 * rollups.WINDOW  # older than anything the job still re-rolls

    push(device, [sample(miner, late + timedelta(seconds=30 * n)) for n in range(4)])

    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == late
    for _ in range(3):  # catch-up runs (a bounded number of windows each)
        rollups.rollup_pending_5m(now=now)
    assert History5m.objects.get(miner_id=miner.pk, bucket=late).sample_count == 4


def test_a_miner_handed_to_another_client_keeps_its_past_with_the_old_client(api, farm):
    from telemetry.tests.test_ingest import make_device

    device, _ = make_device(farm.site_a)
    miner = farm.site_a.miners.filter(customer=farm.client_x).first()
    start = rollups.floor_window(timezone.now() - timedelta(minutes=30))
    push(device, [sample(miner, start + timedelta(minutes=n)) for n in range(3)])
    miner.customer = farm.client_y
    miner.save(update_fields=["customer"])
    miner_map_invalidate()
    push(device, [sample(miner, start + timedelta(minutes=10 + n)) for n in range(3)])
    rollups.rollup_5m(start, start + 3 * rollups.WINDOW)

    assert set(RawSample.objects.filter(miner=miner).values_list("customer_id", flat=True)) == {
        farm.client_x.pk, farm.client_y.pk,
    }  # fmt: skip
    assert dict(History5m.objects.filter(miner=miner).values_list("bucket", "customer_id")) == {
        start: farm.client_x.pk, start + 2 * rollups.WINDOW: farm.client_y.pk,
    }  # fmt: skip
    api.force_authenticate(farm.users["client_y"])
    for resolution in ("raw", "5m"):
        body = api.get(f"/api/v1/telemetry/miners/{miner.pk}/history", {
            "from": (start - timedelta(minutes=1)).isoformat(), "to": (start + timedelta(minutes=20)).isoformat(),
            "resolution": resolution,
        }).json()  # fmt: skip
        times = [p["t"] for p in body["points"]]
        assert times and all(t >= (start + timedelta(minutes=10)).isoformat()[:16] for t in times), resolution
    api.force_authenticate(farm.users["client_x"])  # the miner is no longer theirs at all
    assert api.get(f"/api/v1/telemetry/miners/{miner.pk}/history").status_code == 404


def test_a_miner_moved_to_another_site_leaves_no_alert_open_at_the_old_one(
    api, farm, django_capture_on_commit_callbacks
):
    from telemetry.services import alert_raise

    miner = farm.site_a.miners.first()
    left = alert_raise(site=farm.site_a, miner=miner, alert_type="chip_temp_above", severity="critical", message="hot")
    elsewhere = alert_raise(site=farm.site_a, alert_type="zone_temperature", severity="warning", message="zone")
    api.force_authenticate(farm.users["owner"])
    zone_b = farm.site_b.zones.first()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/v1/miners/{miner.pk}", {"site": farm.site_b.pk, "zone": zone_b.pk}, format="json")
    assert response.status_code == 200
    left.refresh_from_db()
    elsewhere.refresh_from_db()
    assert left.status == "resolved" and "moved" in left.resolution_note
    assert elsewhere.status == "open"
