"""Ingest on PostgreSQL outside any caller's transaction, as the view runs it: a fresh batch is one
transaction without a savepoint (no round trips it does not need); a batch that meets a sample already
stored is undone as a whole and run again through the staging table, writing only the new samples."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from telemetry.models import RawSample
from telemetry.tests.test_ingest import make_device
from telemetry.tests.test_ingest_store import T, events, live_row, s, store


@pytest.fixture
def statements():
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


@pytest.mark.django_db(transaction=True)
def test_postgres_a_fresh_batch_has_no_savepoint_and_a_resent_one_runs_again_staged(on_postgres, farm, statements):
    device, _ = make_device(farm.site_a)
    a, b = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]
    assert store(device, [s(a, T - timedelta(minutes=1), 100)]).inserted == 1
    assert not any("SAVEPOINT" in sql for sql in statements)
    assert not connection.in_atomic_block

    statements.clear()
    result = store(device, [s(a, T - timedelta(minutes=1), 999), s(a, T, 120), s(b, T, 90)])
    assert (result.inserted, result.duplicates, result.live_changed) == (2, 1, sorted([a.pk, b.pk]))
    # The second run went through the staging table (the first one's COPY into raw was undone).
    assert sum("INSERT INTO telemetry_raw" in sql for sql in statements) == 1
    assert sorted(RawSample.objects.values_list("miner_id", "hashrate_ths")) == sorted(
        [(a.pk, 100.0), (a.pk, 120.0), (b.pk, 90.0)]
    )
    assert live_row(a)["hashrate_ghs"] == pytest.approx(110_000.0)
    assert live_row(a)["fan_rpm"] == [] and live_row(b)["errors"] == []
    assert [e["accepted"] for e in events()] == [1, 2]  # the undone run published nothing


@pytest.mark.django_db(transaction=True)
def test_postgres_the_same_batch_twice_changes_nothing(on_postgres, farm):
    device, _ = make_device(farm.site_a)
    miner = farm.miners[("site-a", "own")]
    samples = [s(miner, T - timedelta(minutes=m), 100 + m, fan_rpm=[6000, 6010 + m], errors=["E7"]) for m in range(3)]
    assert store(device, samples).inserted == 3
    before = live_row(miner)
    assert (before["fan_rpm"], before["errors"]) == ([6000, 6010], ["E7"])
    assert (before["hashrate_window_ths"], before["hashrate_ghs"]) == ([102.0, 101.0, 100.0], pytest.approx(101_000.0))
    again = store(device, samples)
    assert (again.inserted, again.duplicates, again.live_changed) == (0, 3, [])
    assert live_row(miner) == before
    assert len(events()) == 1
