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
    parser.add_argument("--keep", action="store_true")
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


def run(args) -> None:
    t = time.perf_counter()
    django_setup(args.miners)
    from django.db import connection

    from intelligence import anomaly_scan as scan
    from telemetry import partitions
    from telemetry.models import Alert, RollupCursor
    from telemetry.rollups import CURSOR_5M

    assert connection.vendor == "postgresql", "the figures are for PostgreSQL"
    print(f"# anomaly scan — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start; code at {commit.strip()}")
    print(f"setup (migrate + seed_demo {args.miners:,} miners): {time.perf_counter() - t:.0f} s")
    end = scan._floor(datetime.now(UTC))
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
        cursor.execute("SELECT count(*) FROM telemetry_history_5m")
        rows = cursor.fetchone()[0]
        cursor.execute("ANALYZE telemetry_history_5m")
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"database: PostgreSQL {version}; history_5m: {rows:,} rows (24 h) in {time.perf_counter() - t:.0f} s")
    RollupCursor.objects.update_or_create(layer=CURSOR_5M, defaults={"done_until": end})

    walls, cpus = [], []
    for i in range(args.runs):
        cpu0, t0 = backend_cpu_s(), time.perf_counter()
        result = scan.anomaly_scan(force=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(backend_cpu_s() - cpu0)
        print(
            f"run {i + 1}: {walls[-1]:.1f} s wall, PostgreSQL backend CPU {cpus[-1]:.1f} s, {result.miners:,} miners, "
            f"{result.raised} alerts raised or counted, load {os.getloadavg()[0]:.1f}"
        )
    print(
        f"scan of {args.miners:,} miners' last hour: median {statistics.median(walls):.1f} s "
        f"(backend CPU median {statistics.median(cpus):.1f} s)  [target < 60 s]"
    )
    opened = Alert.objects.filter(alert_type__in=scan.ALERT_TYPES).exclude(status="resolved")
    print(f"open anomaly alerts: {opened.count()} (the seeded faults: {args.miners // 1000})")

    t0 = time.perf_counter()
    skipped = scan.anomaly_scan()
    print(f"a run with no new window: {1000 * (time.perf_counter() - t0):.1f} ms (skipped={skipped.skipped})")

    # Where a chunk's time goes.
    import numpy as np

    from miners.models import Miner

    chunk = list(Miner.objects.order_by("pk").values_list("pk", "site_id", "model_id")[: scan.CHUNK])
    ids = [c[0] for c in chunk]
    groups = np.array([(site << 32) | model for _pk, site, model in chunk], dtype=np.int64)
    grid_start, n = scan.grid_for(end)
    t0 = time.perf_counter()
    mats, uptime = scan.load_matrices(ids, grid_start, n)
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    for metric in scan.METRICS:
        values = scan.prepare(metric, mats[metric.key], uptime)
        scan.score_latest(values, direction=metric.direction, groups=groups)
    score = time.perf_counter() - t0
    chunks = -(-args.miners // scan.CHUNK)
    print(
        f"per chunk of {len(ids):,} miners × {n} windows: read (binary COPY → numpy) {read:.2f} s, "
        f"scoring 3 metrics (with peers) {score:.2f} s → × {chunks} chunks ≈ {(read + score) * chunks:.0f} s"
    )


if __name__ == "__main__":
    main()
