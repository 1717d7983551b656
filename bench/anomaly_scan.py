"""The anomaly scan over 100,000 miners on PostgreSQL: the newest hour of every miner scored against its last day
of 5-minute history (hashrate, chip temperature, power), alerts raised through the telemetry alert service.

A database of its own (dropped afterwards unless --keep): migrate, ``seed_demo --miners N``, then 24 h of
``history_5m`` per miner generated server-side in one INSERT … SELECT over generate_series (the bulk load; faster
than a COPY fed from Python) with 0.1 % of the miners losing 40 % of their hashrate over the last 30 minutes.
Timed: ``anomaly_scan(force=True)`` end to end (the first run raises the alerts, the next ones count onto them),
the skipped run (no new window: one query), and per chunk of 5,000 miners the binary-COPY read, the scoring and
the alerting, with the database backend's CPU beside wall time (the two cores are shared).

    .venv/bin/python bench/anomaly_scan.py [--miners 100000] [--runs 3] [--keep]

Target: < 60 s for the scan of 100,000 miners' last hour."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _setup import django_setup, machine  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h_anomalyscan_bench"


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def backend_cpu_s() -> float:
    """CPU seconds used so far by the PostgreSQL backend serving this process (same host)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database (and its history) afterwards")
    parser.add_argument("--reuse", action="store_true", help="a database kept by --keep: no migrate, seed or load")
    parser.add_argument(
        "--warm-only", action="store_true", help="no scan without cached baselines: the refresh, then the runs"
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(os.environ["DATABASE_URL"])
            print(f"dropped {urlparse(os.environ['DATABASE_URL']).path.lstrip('/')}")


def load_history(connection, end, miners: int) -> None:
    """24 h of history_5m per miner ending at ``end``, 0.1 % of the miners 40 % down over the last 30 minutes."""
    from telemetry import partitions
    from telemetry.models import RollupCursor
    from telemetry.rollups import CURSOR_5M

    start = end - timedelta(days=1)
    partitions.ensure_partitions(now=end)
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            """
            INSERT INTO telemetry_history_5m (miner_id, bucket, site_id, sample_count, hashing_count,
                uptime_fraction, avg_hashrate_ths, avg_temp_chip_max_c, avg_power_w, accepted_shares,
                rejected_shares, restarts)
            SELECT m.id, b, m.site_id, 5, 5, 1.0,
                   (195 + random() * 10) * CASE WHEN m.id %% 1000 = 0 AND b >= %s THEN 0.6 ELSE 1 END,
                   70 + random() * 2, 3500 + random() * 50, 100, 0, 0
            FROM miners_miner m
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') b
            """,
            [end - timedelta(minutes=30), start, end],
        )
        cursor.execute("ANALYZE telemetry_history_5m")
    RollupCursor.objects.update_or_create(layer=CURSOR_5M, defaults={"done_until": end})
    print(f"history_5m loaded (24 h) in {time.perf_counter() - t:.0f} s")


def cached_baselines(scan, cutoff, *, forget: bool = False) -> int:
    """Bytes of the chunks' cached baselines for the hour ``cutoff`` (pickled, as stored); with ``forget`` they
    are deleted (as if Redis had lost them)."""
    import pickle

    from django.core.cache import cache

    size = 0
    for chunk in scan.miner_chunks():
        key = scan._identity(chunk, cutoff)[2]
        entry = cache.get(key)
        if entry is not None:
            size += len(pickle.dumps(entry, pickle.HIGHEST_PROTOCOL))
            if forget:
                cache.delete(key)
    return size


def run(args) -> None:
    t = time.perf_counter()
    if args.reuse:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
    else:
        django_setup(args.miners)
    from django.conf import settings
    from django.db import connection

    from intelligence import anomaly_scan as scan
    from miners.models import Miner
    from telemetry.models import Alert, RollupCursor
    from telemetry.rollups import CURSOR_5M

    assert connection.vendor == "postgresql", "the figures are for PostgreSQL"
    print(f"# anomaly scan — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start; code at {commit.strip()}")
    print(f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    if args.reuse:
        end = RollupCursor.objects.get(layer=CURSOR_5M).done_until
    else:
        print(f"setup (migrate + seed_demo {args.miners:,} miners): {time.perf_counter() - t:.0f} s")
        end = scan._floor(datetime.now(UTC))
        load_history(connection, end, args.miners)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_history_5m")
        rows = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    miners = Miner.objects.count()
    print(f"database: PostgreSQL {version}; {miners:,} miners; history_5m: {rows:,} rows")
    cutoff = scan.baseline_cutoff(end)
    print(f"newest hour ends {end:%H:%M}; its baselines: the history before {cutoff:%H:%M}")

    def timed(label, fn):
        """(result, wall s, PostgreSQL backend CPU s); also prints this process's CPU (load-independent)."""
        cpu0, own0, t0 = backend_cpu_s(), time.process_time(), time.perf_counter()
        out = fn()
        wall, cpu, own = time.perf_counter() - t0, backend_cpu_s() - cpu0, time.process_time() - own0
        print(
            f"{label}: {wall:.1f} s wall, PostgreSQL backend CPU {cpu:.1f} s, scan process CPU {own:.1f} s, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        return out, wall, cpu

    cold_wall = refresh_wall = float("nan")
    if args.warm_only:  # the hour's baselines learned (or found) by the hourly refresh, as the job does
        refreshed, refresh_wall, _ = timed(
            f"hourly refresh of the {cutoff:%H:%M} baselines", lambda: scan.refresh_baselines(cutoff=cutoff)
        )
        print(f"  {refreshed['chunks_learned']} chunks learned, {refreshed['chunks_cached']} already cached")
    else:
        # 1. No baselines in the cache (first run, Redis flushed or down): every chunk learns from the long history.
        cached_baselines(scan, cutoff, forget=True)
        cold, cold_wall, _ = timed(
            "scan without cached baselines (learns and stores them)", lambda: scan.anomaly_scan(force=True)
        )
        print(
            f"  {cold.miners:,} miners, {cold.baselines_learned} chunks learned, {cold.raised} alerts raised or counted"
        )
        size = cached_baselines(scan, cutoff)
        print(f"  one hour's baselines in the cache: {size / 1e6:.1f} MB ({size / max(miners, 1):.0f} bytes per miner)")
        # 2. The hourly refresh of the next hour's baselines (queued by the first scan past the hour boundary).
        nxt = scan._floor_hour(end)
        cached_baselines(scan, nxt, forget=True)
        refreshed, refresh_wall, _ = timed(
            f"hourly refresh of the {nxt:%H:%M} baselines", lambda: scan.refresh_baselines(cutoff=nxt)
        )
        print(f"  {refreshed['chunks_learned']} chunks learned")
    # 3. The 5-minute scan with its hour's baselines cached: the figure.
    walls, cpus = [], []
    for i in range(args.runs):
        result, wall, cpu = timed(f"run {i + 1} (baselines cached)", lambda: scan.anomaly_scan(force=True))
        walls.append(wall)
        cpus.append(cpu)
        assert result.baselines_learned == 0, result
        print(f"  {result.miners:,} miners, {result.raised} alerts raised or counted")
    print(
        f"scan of {miners:,} miners' last hour: median {statistics.median(walls):.1f} s "
        f"(backend CPU median {statistics.median(cpus):.1f} s)  [target < 60 s]; "
        f"without cached baselines {cold_wall:.1f} s; hourly refresh {refresh_wall:.1f} s"
    )
    opened = Alert.objects.filter(alert_type__in=scan.ALERT_TYPES).exclude(status="resolved")
    print(f"open anomaly alerts: {opened.count()} (the seeded faults: {miners // 1000})")

    t0 = time.perf_counter()
    skipped = scan.anomaly_scan()
    print(f"a run with no new window: {1000 * (time.perf_counter() - t0):.1f} ms (skipped={skipped.skipped})")

    # Where a chunk's time goes.
    chunk = next(scan.miner_chunks())
    ids = [c[0] for c in chunk]
    store = scan._BaselineCache()
    t0 = time.perf_counter()
    baseline, hit = scan.chunk_baseline(chunk, cutoff=cutoff, store=store)
    get_s = time.perf_counter() - t0
    hour_start = end - scan.HOUR_WINDOWS * scan.WINDOW
    t0 = time.perf_counter()
    mats, uptime = scan.load_matrices(ids, hour_start, scan.HOUR_WINDOWS)
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    for metric in scan.METRICS:
        values = scan.prepare(metric, mats[metric.key], uptime)
        scan.score_hour(
            scan.MetricBaseline(**baseline["metrics"][metric.key]), values, first_slot=scan._slot(hour_start),
            direction=metric.direction, groups=baseline["groups"],
        )  # fmt: skip
    score = time.perf_counter() - t0
    t0 = time.perf_counter()
    learned = scan.learn_chunk_baseline(*scan._identity(chunk, cutoff)[:2], cutoff)
    learn = time.perf_counter() - t0
    assert learned["metrics"].keys() == baseline["metrics"].keys()
    print(
        f"per chunk of {len(ids):,} miners: baseline from the cache {get_s:.2f} s (hit={hit}), newest hour read "
        f"(binary COPY → numpy, {scan.HOUR_WINDOWS} windows) {read:.2f} s, scoring 3 metrics with peers "
        f"{score:.2f} s; learning its baselines from the database {learn:.2f} s"
    )


if __name__ == "__main__":
    main()
