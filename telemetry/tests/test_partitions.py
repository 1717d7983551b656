"""PostgreSQL partitioning of ``raw`` and ``history_5m`` (skipped on SQLite, failed under REQUIRE_SERVICES=1
without PostgreSQL). Run with DATABASE_URL=postgres://…; every DDL here is rolled back with the test."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection, connections, transaction

from hashinsight.tests.factories import MinerFactory
from telemetry import partitions
from telemetry.models import History5m, RawSample
from telemetry.partitions import HISTORY_5M, RAW, Layer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_postgres")]


def today():
    return datetime.now(UTC).date()


def midnight(day):
    return datetime.combine(day, time.min, tzinfo=UTC)


def query(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def in_partition(table, miner_id):
    return query(f'SELECT count(*) FROM "{table}" WHERE miner_id = %s', [miner_id])[0][0]  # noqa: S608


def raw(miner, ts):
    return RawSample(miner_id=miner.pk, ts=ts, site_id=miner.site_id, status="hashing", fan_rpm=[], errors=[])


def test_raw_and_5m_are_range_partitioned_by_time_with_their_keys_and_indexes():
    rows = query(
        "SELECT c.relname, p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] ORDER BY c.relname"
    )
    assert ("telemetry_history_5m", "r", "bucket") in rows and ("telemetry_raw", "r", "ts") in rows
    for layer in (RAW, HISTORY_5M):
        names = partitions.partitions_of(layer.table)
        assert layer.default_partition in names
        expected = {layer.partition_name(today() + timedelta(days=n)) for n in range(-1, 4)}
        assert expected <= set(names)  # yesterday, today and three days ahead
    assert query("SELECT indexname FROM pg_indexes WHERE tablename = 'telemetry_raw' ORDER BY 1") == [
        ("raw_site_ts",), ("raw_ts_brin",), ("telemetry_raw_pkey",),
    ]  # fmt: skip
    assert query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'telemetry_history_5m'::regclass "
        "AND contype = 'p'"
    ) == [("PRIMARY KEY (miner_id, bucket)",)]
    checks = query(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'telemetry_history_5m'::regclass AND contype = 'c'"
    )
    assert ("telemetry_history_5m_sample_count_check",) in checks


def test_partitions_are_created_ahead_idempotently():
    created = partitions.ensure_partitions(ahead=6)
    assert sorted(created) == sorted(
        layer.partition_name(today() + timedelta(days=n)) for layer in (RAW, HISTORY_5M) for n in (4, 5, 6)
    )
    assert partitions.ensure_partitions(ahead=6) == []


def test_a_row_far_outside_lands_in_default_and_moves_to_its_partition_when_one_is_made():
    miner = MinerFactory()
    far = datetime(2031, 1, 1, 12, tzinfo=UTC)
    RawSample.objects.bulk_create([raw(miner, far)])
    assert in_partition("telemetry_raw_default", miner.pk) == 1
    created = partitions.ensure_partitions(ahead=1, now=far + timedelta(hours=1))
    assert "telemetry_raw_p20310101" in created
    assert in_partition("telemetry_raw_default", miner.pk) == 0
    assert in_partition("telemetry_raw_p20310101", miner.pk) == 1
    assert RawSample.objects.get(miner_id=miner.pk).ts == far


def test_on_conflict_do_nothing_works_on_the_partitioned_raw():
    miner = MinerFactory()
    ts = midnight(today()) + timedelta(hours=1)
    sql = (
        "INSERT INTO telemetry_raw (miner_id, ts, site_id, status, fan_rpm, errors) VALUES (%s, %s, %s, 'hashing', "
        "'[]', '[]') ON CONFLICT (miner_id, ts) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [miner.pk, ts, miner.site_id])
        assert cursor.rowcount == 1
        cursor.execute(sql, [miner.pk, ts, miner.site_id])
        assert cursor.rowcount == 0
    RawSample.objects.bulk_create([raw(miner, ts)], ignore_conflicts=True)
    assert RawSample.objects.filter(miner_id=miner.pk).count() == 1
    assert in_partition(RAW.partition_name(today()), miner.pk) == 1


def test_expired_partitions_are_dropped_whole_and_recent_ones_kept(settings):
    settings.TELEMETRY_RAW_RETENTION_HOURS = 24
    settings.TELEMETRY_HISTORY_RETENTION_DAYS = 90
    miner = MinerFactory()
    day = today()
    for age in (100, 90):  # old partitions exist: 101–99 and 91–89 days ago
        partitions.ensure_partitions(ahead=1, now=midnight(day - timedelta(days=age)))
    History5m.objects.bulk_create(
        [History5m(miner_id=miner.pk, bucket=midnight(day - timedelta(days=100)), site_id=miner.site_id,
                   sample_count=1, hashing_count=1, uptime_fraction=1)]
    )  # fmt: skip
    RawSample.objects.bulk_create([raw(miner, midnight(day - timedelta(days=1)) + timedelta(hours=23))])
    now = midnight(day) + timedelta(hours=12)
    dropped = partitions.drop_expired_partitions(now=now)
    # raw: yesterday's partition still holds rows younger than 24 h; the day before goes
    assert RAW.partition_name(day - timedelta(days=2)) not in partitions.partitions_of(RAW.table)
    assert RAW.partition_name(day - timedelta(days=1)) in partitions.partitions_of(RAW.table)
    assert RAW.partition_name(day - timedelta(days=100)) in dropped
    assert RawSample.objects.filter(miner_id=miner.pk).count() == 1
    # history: the partition 100 days old goes with its row, the one 90 days old stays (it ends 89 days ago)
    assert HISTORY_5M.partition_name(day - timedelta(days=100)) in dropped
    assert HISTORY_5M.partition_name(day - timedelta(days=90)) in partitions.partitions_of(HISTORY_5M.table)
    assert HISTORY_5M.partition_name(day - timedelta(days=91)) not in partitions.partitions_of(HISTORY_5M.table)
    assert not History5m.objects.filter(miner_id=miner.pk).exists()
    assert partitions.drop_expired_partitions(now=now) == []


def test_conversion_keeps_rows_keys_and_index_names():
    query("CREATE TABLE scratch_raw (miner_id bigint NOT NULL, ts timestamptz NOT NULL, v integer, "
          "CONSTRAINT scratch_raw_pkey PRIMARY KEY (miner_id, ts))")  # fmt: skip
    query("CREATE INDEX scratch_v ON scratch_raw (v, ts)")
    old_row = midnight(today() - timedelta(days=200))
    query("INSERT INTO scratch_raw VALUES (1, %s, 1), (2, %s, 2)", [old_row, midnight(today()) + timedelta(hours=3)])
    layer = Layer("raw", "scratch_raw", "ts")
    partitions.convert_to_partitioned(layer, connection=connection)
    partitions.convert_to_partitioned(layer, connection=connection)  # already done: nothing happens
    assert partitions.is_partitioned("scratch_raw")
    assert query("SELECT miner_id, v FROM scratch_raw ORDER BY 1") == [(1, 1), (2, 2)]
    assert query("SELECT miner_id FROM scratch_raw_default") == [(1,)]  # older than retention
    assert query(f"SELECT miner_id FROM {layer.partition_name(today())}") == [(2,)]  # noqa: S608
    assert query("SELECT indexname FROM pg_indexes WHERE tablename = 'scratch_raw' ORDER BY 1") == [
        ("scratch_raw_pkey",), ("scratch_raw_ts_brin",), ("scratch_v",),
    ]  # fmt: skip
    assert query("SELECT to_regclass('scratch_raw_unpartitioned')") == [(None,)]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_create_each_partition_once():
    far = datetime(2032, 3, 1, tzinfo=UTC)
    results, errors = [], []

    def run():
        try:
            results.append(partitions.ensure_partitions(ahead=3, now=far))
        except Exception as exc:  # pragma: no cover - the failure is the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        created = [name for result in results for name in result]
        assert len(created) == len(set(created)) == 10  # 2 layers × (yesterday .. 3 days ahead)
    finally:
        for layer in (RAW, HISTORY_5M):
            for name in partitions.partitions_of(layer.table):
                if name.endswith(("_p20320229", "_p20320301", "_p20320302", "_p20320303", "_p20320304")):
                    query(f'DROP TABLE "{name}"')


def test_summarizing_brin_ranges_gives_way_to_a_vacuum_holding_the_table():
    import psycopg

    other = psycopg.connect(**connection.get_connection_params())
    try:
        other.execute(f'LOCK TABLE "{RAW.partition_name(today())}" IN SHARE UPDATE EXCLUSIVE MODE')  # as VACUUM does
        with transaction.atomic():
            before = query("SELECT current_setting('lock_timeout')")
            partitions.summarize_new_ranges(RAW)  # times out after 200 ms and carries on
            assert query("SELECT current_setting('lock_timeout')") == before
    finally:
        other.close()
    partitions.summarize_new_ranges(RAW)
