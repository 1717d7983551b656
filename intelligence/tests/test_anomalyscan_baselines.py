"""The scan's hourly baselines in the cache: learned once per chunk and hour, served to the next hour's scans,
learned again when missing or stale (a miner added, another hour, another format), the same alerts whether they
come from the cache or the database (Redis down included); and two scans never run at once."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection

from hashinsight.events.models import JobRun
from hashinsight.tests.factories import MinerFactory, SiteFactory, ZoneFactory
from intelligence import anomaly_scan as scan
from telemetry.models import Alert

from .test_anomalyscan_scan import END, W, drop_on, open_anomalies, rolled_up_to, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(monkeypatch):
    monkeypatch.setattr(scan, "CHUNK", 12)  # two chunks: 12 + 12 miners, each with its own baselines
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    miners = [MinerFactory(zone=zone, site=site) for _ in range(24)]
    seed(miners, start=END - timedelta(hours=26), end=END, hashrate=drop_on(15, 0.6, END - 6 * W))
    rolled_up_to(END)
    return miners


def alerts():
    return sorted(
        (a.miner_id, a.alert_type, a.severity, a.message, a.evidence["score"]) for a in open_anomalies()
    )  # fmt: skip


def baseline_keys(cutoff):
    return [scan._identity(chunk, cutoff)[2] for chunk in scan.miner_chunks()]


class BrokenCache:
    """Redis down: every call fails."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("redis down")

        return fail


def test_the_first_scan_learns_and_stores_each_chunks_baseline_the_next_scores_against_them(fleet):
    first = scan.anomaly_scan()
    assert (first.baselines_learned, first.baselines_cached, first.raised) == (2, 0, 1)
    assert first.baseline_hour == scan.baseline_cutoff(END).isoformat() == (END - timedelta(hours=1)).isoformat()
    assert all(cache.get(key) is not None for key in baseline_keys(scan.baseline_cutoff(END)))
    again = scan.anomaly_scan(force=True)
    assert (again.baselines_learned, again.baselines_cached, again.raised) == (0, 2, 1)
    assert not again.cache_down


def test_alerts_are_identical_with_the_cache_without_it_and_with_redis_down(fleet, monkeypatch):
    learned = scan.anomaly_scan()
    expected = alerts()
    assert [a[:2] for a in expected] == [(fleet[15].pk, "anomaly_hashrate")]
    Alert.objects.all().delete()
    cached = scan.anomaly_scan(force=True)
    assert cached.baselines_cached == 2 and alerts() == expected
    Alert.objects.all().delete()
    monkeypatch.setattr(scan, "cache", BrokenCache())
    down = scan.anomaly_scan(force=True)
    assert down.cache_down and (down.baselines_learned, down.baselines_cached) == (2, 0)
    assert alerts() == expected
    assert (learned.raised, cached.raised, down.raised) == (1, 1, 1)


def test_a_stale_or_missing_baseline_is_learned_again_and_only_that_chunk(fleet, monkeypatch):
    scan.anomaly_scan()
    cutoff = scan.baseline_cutoff(END)
    keys = baseline_keys(cutoff)
    cache.delete(keys[0])  # evicted
    result = scan.anomaly_scan(force=True)
    assert (result.baselines_learned, result.baselines_cached) == (1, 1)
    entry = cache.get(keys[1])
    cache.set(keys[1], {**entry, "format": scan.BASELINE_FORMAT - 1})  # written by an older release
    assert scan.anomaly_scan(force=True).baselines_learned == 1
    # a miner added: with chunks of 13 the first chunk (same first miner, same key) has a row more and the
    # second starts elsewhere; neither entry fits
    new = MinerFactory(zone=fleet[0].zone, site=fleet[0].site)
    seed([new], start=END - timedelta(hours=26), end=END, seed=5)
    monkeypatch.setattr(scan, "CHUNK", 13)
    result = scan.anomaly_scan(force=True)
    assert (result.miners, result.baselines_learned, result.baselines_cached) == (25, 2, 0)
    assert [a[:2] for a in alerts()] == [(fleet[15].pk, "anomaly_hashrate")]


def test_the_baselines_serve_one_hour_of_scans_then_the_next_hours_are_used(fleet):
    scan.anomaly_scan()
    # the scan that saw the history pass END queued the refresh of END's baselines (eager in tests): once
    runs = JobRun.objects.filter(job_type="intelligence_anomaly_baselines")
    assert [(r.status, r.result["baseline_hour"], r.result["chunks_learned"]) for r in runs] == [
        ("success", END.isoformat(), 2)
    ]
    for k in range(1, 13):  # the next hour, window by window: the drop goes on
        seed([fleet[15]], start=END + (k - 1) * W, end=END + k * W, hashrate=lambda i, t: np.full(len(t), 120.0))
        seed(fleet[:15] + fleet[16:], start=END + (k - 1) * W, end=END + k * W, seed=10 + k)
        rolled_up_to(END + k * W)
        result = scan.anomaly_scan()
        assert result.raised == 1
        hour = END - timedelta(hours=1) if k < 12 else END
        assert result.baseline_hour == hour.isoformat()
        assert (result.baselines_learned, result.baselines_cached) == (0, 2), k
    assert runs.all().count() == 2  # queued once per hour boundary: END's, then END + 1 h's
    assert Alert.objects.get().count == 13


def test_refresh_without_a_cache_learns_nothing(fleet, monkeypatch):
    monkeypatch.setattr(scan, "cache", BrokenCache())
    out = scan.refresh_baselines()
    assert out["skipped"] and out["reason"] == "cache unavailable" and out["chunks_learned"] == 0


@contextmanager
def another_scan_running():
    """The scan's lock held by someone else: on PostgreSQL from a second session, elsewhere the cache lock."""
    if connection.vendor == "postgresql":
        import psycopg

        params = connection.get_connection_params()
        params = {k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")}
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", [scan.SCAN_LOCK_KEY])
            yield
            other.execute("SELECT pg_advisory_unlock(%s)", [scan.SCAN_LOCK_KEY])
    else:
        cache.add(scan.SCAN_LOCK_CACHE_KEY, 1, 60)
        yield
        cache.delete(scan.SCAN_LOCK_CACHE_KEY)


def test_a_scan_while_another_runs_is_skipped_and_counts_nothing(fleet):
    from intelligence.anomaly_tasks import anomaly_scan_task

    with another_scan_running():
        busy = scan.anomaly_scan()
        anomaly_scan_task.delay()
    assert busy.skipped and busy.busy and busy.miners == 0
    assert not Alert.objects.exists()
    run = JobRun.objects.get(job_type="intelligence_anomaly_scan")
    assert run.status == "success" and run.result["busy"] is True
    # the lock is free again: the next run scans, and a forced run after it counts once more, not twice
    assert scan.anomaly_scan().raised == 1
    assert scan.anomaly_scan(force=True).raised == 1
    assert Alert.objects.get().count == 2
