"""Ingest's write: raw in one bulk write, live upserted forward only with a 5-minute moving average,
one outbox event, idempotent on (miner, ts). Runs on SQLite and, with DATABASE_URL, on PostgreSQL
(COPY into a temporary table, then INSERT … ON CONFLICT)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from hashinsight.events.models import OutboxEvent
from telemetry.ingest import validate_samples
from telemetry.ingest_store import miner_map, miner_map_invalidate, store_batch
from telemetry.models import LiveStatus, RawSample

pytestmark = pytest.mark.django_db
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # the newest sample of most tests


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


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


def s(miner, ts: datetime, hashrate=100.0, **fields) -> dict:
    return {"miner": miner.serial, "ts": iso(ts), "hashrate_ths": hashrate, "status": "hashing", **fields}


def store(device, samples: list):
    validated = validate_samples(samples, miner_map(device.site_id), timezone.now())
    assert validated.rejected == []
    return store_batch(site_id=device.site_id, device_id=device.pk, validated=validated)


def events() -> list[dict]:
    return list(OutboxEvent.objects.filter(event_type="telemetry.ingested").order_by("created_at").values_list(
        "payload", flat=True))  # fmt: skip


def live_row(miner) -> dict:
    return LiveStatus.objects.filter(miner=miner).values().get()


def test_a_batch_lands_in_raw_and_live_with_one_event(setup):
    farm, device = setup
    a1, a2 = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    samples = [
        s(a1, T - timedelta(minutes=1), 100, temp_chip_max_c=70, fan_rpm=[6000, 6010], errors=["E7"]),
        s(a1, T, 110, temp_chip_max_c=71.5, power_w=3200, fan_rpm=[6100, 6110], accepted_shares=9,
          rejected_shares=1, errors=["E8"]),
        s(a2, T, 90, status="idle"),
    ]  # fmt: skip
    result = store(device, samples)
    assert (result.inserted, result.duplicates, result.live_changed) == (3, 0, sorted([a1.pk, a2.pk]))
    raw = RawSample.objects.get(miner=a1, ts=T)
    assert (raw.site_id, raw.device_id, raw.hashrate_ths, raw.fan_rpm, raw.errors, raw.power_w) == (
        farm.site_a.pk,
        device.pk,
        110.0,
        [6100, 6110],
        ["E8"],
        3200.0,
    )
    live = live_row(a1)
    assert live["last_seen"] == T
    assert live["hashrate_ths_instant"] == 110.0
    assert live["hashrate_ghs"] == pytest.approx(105_000.0)  # (100 + 110) / 2 TH/s
    assert (live["temp_chip_max_c"], live["power_w"], live["fan_rpm"], live["errors"]) == (
        71.5,
        3200.0,
        [6100, 6110],
        ["E8"],
    )
    assert (live["accepted_shares"], live["rejected_shares"], live["status"]) == (9, 1, "hashing")
    assert (live["site_id"], live["customer_id"]) == (farm.site_a.pk, farm.client_x.pk)
    assert live_row(a2)["status"] == "idle" and live_row(a2)["customer_id"] is None
    [event] = events()
    assert event == {
        "site_id": farm.site_a.pk,
        "device_id": device.pk,
        "accepted": 3,
        "miner_ids": sorted([a1.pk, a2.pk]),
        "newest_ts": T.isoformat().replace("+00:00", "Z"),
    }


def test_the_same_batch_twice_changes_nothing_the_second_time(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    samples = [s(miner, T - timedelta(minutes=m), 100 + m) for m in range(5)]
    assert store(device, samples).inserted == 5
    before = live_row(miner)
    again = store(device, samples)
    assert (again.inserted, again.duplicates, again.live_changed) == (0, 5, [])
    assert RawSample.objects.count() == 5
    assert live_row(miner) == before  # updated_at included
    assert len(events()) == 1  # nothing changed, nothing published


def test_a_resent_sample_with_other_values_keeps_the_first(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T, 100)])
    result = store(device, [s(miner, T, 5)])
    assert (result.inserted, result.duplicates) == (0, 1)
    assert RawSample.objects.get().hashrate_ths == 100.0
    assert live_row(miner)["hashrate_ghs"] == pytest.approx(100_000.0)


def test_a_batch_mixing_stored_and_new_samples_writes_only_the_new(setup):
    # On PostgreSQL the straight COPY fails on the stored one and is undone; the staged path follows.
    farm, device = setup
    a, b = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]
    store(device, [s(a, T - timedelta(minutes=1), 100)])
    result = store(device, [s(a, T - timedelta(minutes=1), 999), s(a, T, 120), s(b, T, 90)])
    assert (result.inserted, result.duplicates) == (2, 1)
    assert sorted(RawSample.objects.values_list("miner_id", "hashrate_ths")) == sorted(
        [(a.pk, 100.0), (a.pk, 120.0), (b.pk, 90.0)]
    )
    assert live_row(a)["hashrate_ghs"] == pytest.approx(110_000.0)
    assert [e["accepted"] for e in events()] == [1, 2]


def test_moving_average_is_the_last_five_minutes_of_the_newest_sample(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    # First batch: -6 min (outside any window that ends at T), -4, -3 min.
    store(device, [s(miner, T - timedelta(minutes=6), 50), s(miner, T - timedelta(minutes=4), 110),
                   s(miner, T - timedelta(minutes=3), 120)])  # fmt: skip
    first = live_row(miner)
    # The window ends at T - 3 min: -6 min is 180 s before it, inside.
    assert first["hashrate_ghs"] == pytest.approx((50 + 110 + 120) / 3 * 1000)
    # Second batch: -1 min and T. The window (T - 300 s, T] holds -4, -3, -1 and 0 min; -6 min drops out.
    store(device, [s(miner, T - timedelta(minutes=1), 130), s(miner, T, 140)])
    live = live_row(miner)
    assert live["hashrate_ghs"] == pytest.approx((110 + 120 + 130 + 140) / 4 * 1000)
    epoch = int(T.timestamp())
    assert live["hashrate_window_ts"] == [epoch - 240, epoch - 180, epoch - 60, epoch]
    assert live["hashrate_window_ths"] == [110.0, 120.0, 130.0, 140.0]
    # A sample exactly 5 minutes after -4 min pushes it out (the window excludes its start).
    store(device, [s(miner, T + timedelta(minutes=1), 150)])
    assert live_row(miner)["hashrate_ghs"] == pytest.approx((120 + 130 + 140 + 150) / 4 * 1000)


def test_samples_without_hashrate_stay_out_of_the_average(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=1), 100), s(miner, T, None, status="offline")])
    live = live_row(miner)
    assert (live["hashrate_ghs"], live["hashrate_ths_instant"], live["status"]) == (100_000.0, None, "offline")
    other = farm.miners[("site-a", "client-y")]
    store(device, [s(other, T, None, status="offline")])
    assert live_row(other)["hashrate_ghs"] is None


def test_out_of_order_samples_never_move_live_backwards(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T, 140, temp_chip_max_c=80)])
    before = live_row(miner)
    late = store(device, [s(miner, T - timedelta(minutes=2), 10, temp_chip_max_c=40)])
    assert (late.inserted, late.live_changed) == (1, [])
    assert live_row(miner) == before
    assert RawSample.objects.count() == 2  # the late sample is history all the same
    assert events()[-1]["miner_ids"] == [] and events()[-1]["accepted"] == 1


def test_a_batch_mixing_new_and_old_samples_moves_only_the_miners_that_advanced(setup):
    farm, device = setup
    ahead, behind = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]
    store(device, [s(ahead, T - timedelta(minutes=1)), s(behind, T)])
    result = store(device, [s(ahead, T, 120), s(behind, T - timedelta(minutes=2), 1)])
    assert result.live_changed == [ahead.pk]
    assert live_row(ahead)["last_seen"] == T
    assert live_row(behind)["hashrate_ghs"] == pytest.approx(100_000.0)


def test_a_late_sample_beside_a_new_one_stays_out_of_the_average(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=1), 100)])
    result = store(device, [s(miner, T - timedelta(minutes=2), 10), s(miner, T, 120)])
    assert (result.inserted, result.live_changed) == (2, [miner.pk])
    live = live_row(miner)
    assert live["hashrate_ghs"] == pytest.approx(110_000.0)  # 100 and 120; the late 10 is raw only
    assert live["hashrate_window_ths"] == [100.0, 120.0]


def test_many_samples_cross_the_sqlite_variable_limit(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    samples = [s(miner, T - timedelta(seconds=10 * i), float(i)) for i in range(300)]  # > 999 / 14 rows per chunk
    assert store(device, samples).inserted == 300
    assert RawSample.objects.count() == 300
    # The window (T - 300 s, T] holds i = 0..29.
    assert live_row(miner)["hashrate_ghs"] == pytest.approx(sum(range(30)) / 30 * 1000)
    assert store(device, samples).duplicates == 300


def test_sub_second_timestamps_round_trip(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    ts = T + timedelta(microseconds=250_000)
    store(device, [s(miner, ts)])
    assert RawSample.objects.get().ts == ts
    assert store(device, [s(miner, ts)]).duplicates == 1
    assert (live_row(miner)["hashrate_window_ts"], live_row(miner)["hashrate_window_ths"]) == (
        [ts.timestamp()],
        [100.0],
    )


def test_an_empty_batch_writes_nothing(setup):
    _, device = setup
    assert tuple(store(device, [])) == (0, 0, [])
    assert not events()


def test_the_miner_map_is_the_sites_own(setup):
    farm, _ = setup
    miners = miner_map(farm.site_a.pk)
    assert set(miners) == {m.serial for (site, _), m in farm.miners.items() if site == "site-a"}
    a1 = farm.miners[("site-a", "client-x")]
    assert miners[a1.serial] == (a1.pk, farm.client_x.pk)
    assert miner_map(farm.site_a.pk) is miners  # cached
    miner_map_invalidate([farm.site_a.pk])
    assert miner_map(farm.site_a.pk) is not miners


@pytest.mark.django_db(transaction=True)
def test_postgres_staging_tables_are_made_once_per_connection_and_empty_after_commit(on_postgres, farm):
    from django.db import connection

    from telemetry.tests.test_ingest import make_device

    device, _ = make_device(farm.site_a)
    miner = farm.miners[("site-a", "own")]
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert store(device, [s(miner, T - timedelta(minutes=1), 100)]).inserted == 1
        assert sum("CREATE TEMP TABLE" in sql for sql in statements) == 2
        statements.clear()
        result = store(device, [s(miner, T, 120)])
        assert not any("CREATE" in sql or "DELETE" in sql for sql in statements)
    assert (result.inserted, result.live_changed) == (1, [miner.pk])
    assert live_row(miner)["hashrate_ghs"] == pytest.approx(110_000.0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM _ingest_raw) + (SELECT count(*) FROM _ingest_live)")
        assert cursor.fetchone()[0] == 0


def test_postgres_a_rolled_back_batch_leaves_no_staging_table_behind(on_postgres, setup):
    from django.db import connection, transaction

    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    with pytest.raises(RuntimeError), transaction.atomic():
        store(device, [s(miner, T - timedelta(minutes=2))])
        raise RuntimeError("the caller's transaction fails")
    # The next batch on this connection recreates the tables (they went with the rollback).
    assert store(device, [s(miner, T)]).inserted == 1
    assert RawSample.objects.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM _ingest_raw")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_postgres_concurrent_batches_of_a_miner_merge_their_windows(on_postgres, farm):
    # The window is merged inside the upsert, on the row it has locked: the second batch waits for the
    # first and merges onto what it wrote, whichever commits first.
    import threading

    from django.db import connection, transaction

    from telemetry.tests.test_ingest import make_device

    device, _ = make_device(farm.site_a)
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=3), 100)])
    first_in = threading.Event()
    errors: list = []

    def first():
        try:
            with transaction.atomic():
                store(device, [s(miner, T - timedelta(minutes=1), 120)])
                first_in.set()
                time.sleep(0.5)  # holds the live row's lock while the other batch arrives
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            first_in.set()
            connection.close()

    def second():
        try:
            first_in.wait(5)
            store(device, [s(miner, T, 140)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    live = live_row(miner)
    epoch = int(T.timestamp())
    assert live["hashrate_window_ts"] == [epoch - 180, epoch - 60, epoch]
    assert live["hashrate_ghs"] == pytest.approx(120_000.0)
    assert live["last_seen"] == T


@pytest.mark.django_db(transaction=True)
def test_migration_0009_carries_the_json_windows_over(farm):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    miner = farm.miners[("site-a", "own")]
    executor = MigrationExecutor(connection)
    executor.migrate([("telemetry", "0008_control_plane_effects")])
    try:
        LiveBefore = executor.loader.project_state([("telemetry", "0008_control_plane_effects")]).apps.get_model(
            "telemetry", "LiveStatus"
        )
        LiveBefore.objects.create(
            miner_id=miner.pk, site_id=miner.site_id, last_seen=T, status="hashing", updated_at=T,
            hashrate_window=[[1764129600, 110.5], [1764129660.25, 111.0]],
        )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    live = live_row(miner)
    assert live["hashrate_window_ts"] == [1764129600.0, 1764129660.25]
    assert live["hashrate_window_ths"] == [110.5, 111.0]
