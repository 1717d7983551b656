"""The live list's sort keys (telemetry.live_order): written at once for a miner's first sample and for
rows written through the ORM, otherwise copied by the refresh job, so that ingest's rewrite of the live
row changes no indexed column. The list is sorted by the keys as of the last refresh and shows the
current values. Runs on SQLite and, with DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from telemetry import telemetry_selectors as sel
from telemetry.ingest_store import miner_map_invalidate
from telemetry.live_order import refresh_order
from telemetry.models import LiveOrder, LiveStatus
from telemetry.tests.test_ingest_store import T, s, store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


@pytest.fixture
def setup(farm):
    from telemetry.tests.test_ingest import make_device

    device, _ = make_device(farm.site_a)
    return farm, device


def keys(miner) -> tuple:
    return LiveOrder.objects.filter(pk=miner.pk).values_list("site_id", "temp_chip_max_c", "hashrate_ghs",
                                                              "last_seen").get()  # fmt: skip


def test_a_first_sample_writes_its_keys_a_later_one_waits_for_the_refresh(setup):
    farm, device = setup
    a1, a2 = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    store(device, [s(a1, T - timedelta(minutes=1), 100, temp_chip_max_c=70.0), s(a2, T, 90, temp_chip_max_c=60.0)])
    assert keys(a1) == (farm.site_a.pk, 70.0, 100_000.0, T - timedelta(minutes=1))
    store(device, [s(a1, T, 120, temp_chip_max_c=80.0)])
    live = LiveStatus.objects.get(pk=a1.pk)
    assert (live.temp_chip_max_c, live.hashrate_ghs, live.last_seen) == (80.0, 110_000.0, T)  # live is current
    assert keys(a1)[1:] == (70.0, 100_000.0, T - timedelta(minutes=1))  # its sort keys wait
    assert refresh_order() == {"updated": 1, "deleted": 0}
    assert keys(a1) == (farm.site_a.pk, 80.0, 110_000.0, T)
    assert refresh_order() == {"updated": 0, "deleted": 0}  # nothing moved: nothing rewritten


def test_the_list_is_sorted_as_of_the_refresh_and_shows_current_values(setup):
    farm, device = setup
    a1, a2 = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    store(device, [s(a1, T - timedelta(minutes=1), temp_chip_max_c=70.0), s(a2, T - timedelta(minutes=1),
                                                                             temp_chip_max_c=60.0)])  # fmt: skip
    store(device, [s(a2, T, temp_chip_max_c=90.0)])  # a2 heats up

    def hottest_first():
        qs = sel.live_rows(user=farm.users["owner"], site_id=farm.site_a.pk, now=T)
        return [(r["miner"], r["temp_chip_max_c"]) for r in sel.live_page(qs, sort="-temperature").rows]

    assert hottest_first() == [(a1.pk, 70.0), (a2.pk, 90.0)]
    refresh_order()
    assert hottest_first() == [(a2.pk, 90.0), (a1.pk, 70.0)]


def test_orm_writes_get_their_keys_at_once_and_deleted_rows_lose_them(farm):
    miner, other = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]
    LiveStatus.objects.bulk_create(
        [LiveStatus(miner=m, site_id=m.site_id, last_seen=T, status="hashing", updated_at=T, temp_chip_max_c=t)
         for m, t in ((miner, 50.0), (other, 55.0))]
    )  # fmt: skip
    assert keys(miner) == (miner.site_id, 50.0, None, T)
    live = LiveStatus.objects.get(pk=miner.pk)
    live.temp_chip_max_c = 65.0
    live.save()
    assert keys(miner)[1] == 65.0
    LiveStatus.objects.filter(pk=other.pk).delete()
    assert not LiveOrder.objects.filter(pk=other.pk).exists()  # cascaded
    LiveOrder.objects.create(live_id=other.pk, site_id=other.site_id, last_seen=T)  # left by a raw delete
    assert refresh_order()["deleted"] == 1


def test_a_moved_miner_follows_at_the_refresh(farm):
    miner = farm.miners[("site-a", "own")]
    LiveStatus.objects.create(miner=miner, site_id=miner.site_id, last_seen=T, status="hashing", updated_at=T)
    LiveStatus.objects.filter(pk=miner.pk).update(site_id=farm.site_b.pk)  # what a miner move does
    assert keys(miner)[0] == farm.site_a.pk
    refresh_order()
    assert keys(miner)[0] == farm.site_b.pk


def test_the_refresh_task_runs(farm):
    from telemetry.tasks import live_order_refresh

    miner = farm.miners[("site-a", "own")]
    LiveStatus.objects.create(miner=miner, site_id=miner.site_id, last_seen=T, status="hashing", updated_at=T)
    LiveStatus.objects.filter(pk=miner.pk).update(temp_chip_max_c=77.0)
    assert live_order_refresh.apply().get() == {"updated": 1, "deleted": 0}
    assert keys(miner)[1] == 77.0


def test_postgres_the_live_table_indexes_no_column_a_sample_changes(on_postgres):
    # The design's point: an ingest update that keeps the status is HOT (no index entry written).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'telemetry_live'::regclass"
        )
        assert {row[0] for row in cursor.fetchall()} == {"miner_id", "site_id", "status"}
