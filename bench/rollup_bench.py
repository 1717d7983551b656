"""Rollups of 100,000 miners on PostgreSQL, bytes per row of each layer, and the disk a 10,000-miner site
needs for 30 days at one sample per minute.

    .venv/bin/python bench/rollup_bench.py [--miners 100000] [--runs 5] [--keep]

Uses its own database (h3_bench unless DATABASE_URL says otherwise), seeded with ``seed_demo``, and drops
it at the end (``--keep`` keeps it). Raw samples (one a minute per miner: five in the 5-minute window and
the ten before it, which the share counters' lookback reads) are loaded with COPY, as ingest writes them;
the 288 five-minute rows per miner of one day for the daily rollup are generated server-side
(INSERT … SELECT from generate_series: 28.8 M rows). Figures: median of several runs of ``rollup_5m``
and ``rollup_daily``, each run on an empty target (the rows it wrote are deleted between runs), plus the
re-run of a window already rolled up (what the job does each minute for the window in its grace period).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from _setup import django_setup, machine

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h3_bench"


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def backend_cpu_s() -> float:
    """CPU seconds the database backend serving this process has used so far (PostgreSQL on this host):
    unlike wall time, not inflated by other work competing for the two cores."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, runs: int, before=None) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(runs):
        if before:
            before()
        cpu_start, start = backend_cpu_s(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(backend_cpu_s() - cpu_start)
    return wall, cpu


def fmt(values: tuple[list[float], list[float]]) -> str:
    wall, cpu = values
    return (
        f"median {statistics.median(wall):.2f} s, min {min(wall):.2f} s, max {max(wall):.2f} s (n={len(wall)}); "
        f"database CPU median {statistics.median(cpu):.2f} s"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--daily-runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--skip-daily", action="store_true", help="the 5-minute rollup only")
    parser.add_argument("--raw-minutes-before", type=int, default=60, help="raw samples before the window")
    args = parser.parse_args()
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(url)
            print(f"dropped {urlparse(url).path.lstrip('/')}")


def run(args):
    t = time.perf_counter()
    django_setup(args.miners)
    from django.db import connection

    from telemetry import partitions, rollups

    print(f"machine: {machine()}")
    print(f"setup (migrate + seed_demo {args.miners:,} miners): {time.perf_counter() - t:.0f} s")
    assert connection.vendor == "postgresql", "the figures are for PostgreSQL"
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, site_id FROM miners_miner ORDER BY id")
        miners = cursor.fetchall()
        cursor.execute("SHOW server_version")
        print(f"database: PostgreSQL {cursor.fetchone()[0]}, miners: {len(miners):,}")

    # --- 5-minute rollup ---------------------------------------------------------------------------
    now = datetime.now(UTC)
    window = rollups.floor_window(now) - timedelta(hours=1)
    partitions.ensure_partitions(now=window)
    rng = random.Random(7)
    t = time.perf_counter()
    pg = connection.connection
    with pg.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        with cur.copy(
            "COPY telemetry_raw (miner_id, ts, site_id, device_id, hashrate_ths, temp_chip_max_c, temp_inlet_c, "
            "temp_outlet_c, fan_rpm, power_w, status, accepted_shares, rejected_shares, errors) FROM STDIN"
        ) as copy:
            # Minute by minute, as ingest writes them (the BRIN index relies on that order): the hour before
            # the window too, so the partition is not just the rows read and the share counters' lookback
            # (10 minutes) finds what it finds in production.
            accs = [rng.randrange(10_000, 1_000_000) for _ in miners]
            offsets = [rng.randrange(60) for _ in miners]
            for minute in range(-args.raw_minutes_before, 5):
                for i, (miner_id, site_id) in enumerate(miners):
                    accs[i] += rng.randrange(0, 40)
                    status = "hashing" if rng.random() > 0.02 else "offline"
                    fans = f"[{rng.randrange(5500, 6500)}, {rng.randrange(5500, 6500)}, 6000, 6100]"
                    copy.write_row((
                        miner_id, window + timedelta(minutes=minute, seconds=offsets[i]), site_id, None,
                        rng.uniform(180, 210), rng.uniform(60, 80), 25.0, 45.0, fans, rng.uniform(3400, 3600),
                        status, accs[i], accs[i] // 500, "[]",
                    ))  # fmt: skip
        cur.execute("ANALYZE telemetry_raw")
    pg.commit()
    raw_rows = len(miners) * (args.raw_minutes_before + 5)
    print(f"raw: {raw_rows:,} rows loaded with COPY in {time.perf_counter() - t:.1f} s")
    # The job summarizes the BRIN ranges of the minute written since its previous run; here, the whole hour.
    t = time.perf_counter()
    partitions.summarize_new_ranges(partitions.RAW)
    print(f"BRIN ranges of the seeded samples summarized in {time.perf_counter() - t:.1f} s (once; each job run "
          f"summarizes the minute written since the previous one)")  # fmt: skip

    end = window + rollups.WINDOW

    def clear_window():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM telemetry_history_5m WHERE bucket >= %s AND bucket < %s", [window, end])
            cursor.execute("DELETE FROM telemetry_site_history_5m WHERE bucket >= %s AND bucket < %s", [window, end])

    first = timed(lambda: rollups.rollup_5m(window, end), args.runs, before=clear_window)
    rerun = timed(lambda: rollups.rollup_5m(window, end), args.runs)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_history_5m WHERE bucket = %s", [window])
        written = cursor.fetchone()[0]
    print(f"rollup_5m, {len(miners):,} miners × 5 samples, {written:,} rows written: {fmt(first)}  [figure < 10 s]")
    print(f"  ({load()})")
    print(f"rollup_5m again over the same window (no change, nothing written): {fmt(rerun)}")
    if args.skip_daily:
        return

    # --- daily rollup ------------------------------------------------------------------------------
    day = (now - timedelta(days=2)).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    partitions.ensure_partitions(ahead=0, now=start + timedelta(hours=1))
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            """
            INSERT INTO telemetry_history_5m (miner_id, bucket, site_id, sample_count, hashing_count,
                uptime_fraction, avg_hashrate_ths, min_hashrate_ths, max_hashrate_ths, avg_temp_chip_max_c,
                min_temp_chip_max_c, max_temp_chip_max_c, avg_temp_inlet_c, max_temp_inlet_c, avg_temp_outlet_c,
                max_temp_outlet_c, avg_power_w, min_power_w, max_power_w, avg_fan_rpm, min_fan_rpm,
                accepted_shares, rejected_shares, restarts)
            SELECT m.id, b, m.site_id, 5, h, h / 5.0, 195 + r * 10, 185 + r * 10, 205 + r * 10, 70 + r * 5,
                   65 + r * 5, 75 + r * 5, 25, 27, 45, 48, 3500 + r * 50, 3450, 3550, 6000 + r * 100, 5600,
                   (90 + r * 20)::int, (r * 2)::int, 0
            FROM miners_miner m
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') b
            CROSS JOIN LATERAL (SELECT random() AS r, CASE WHEN random() > 0.02 THEN 5 ELSE 3 END AS h) x
            """,
            [start, start + timedelta(days=1)],
        )
        cursor.execute("ANALYZE telemetry_history_5m")
    print(f"history_5m: {len(miners) * 288:,} rows of {day} generated in {time.perf_counter() - t:.0f} s")

    def clear_day():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM telemetry_daily WHERE day = %s", [day])
            cursor.execute("DELETE FROM telemetry_site_daily WHERE day = %s", [day])

    daily = timed(lambda: rollups.rollup_daily(day), args.daily_runs, before=clear_day)
    daily_rerun = timed(lambda: rollups.rollup_daily(day), 1)
    print(f"rollup_daily, {len(miners):,} miners × 288 windows: {fmt(daily)}  [figure < 60 s]")
    print(f"  ({load()})")
    print(f"rollup_daily again over the same day (no change): {fmt(daily_rerun)}")

    # --- bytes per row and disk ---------------------------------------------------------------------
    with connection.cursor() as cursor:
        # The runs above deleted and rewrote the daily rows: give that space back before measuring (the
        # 5-minute partition's rewritten window is 0.3 % of it; raw was only ever appended to).
        cursor.execute("VACUUM FULL telemetry_daily, telemetry_site_daily, telemetry_site_history_5m")
        cursor.execute("VACUUM ANALYZE")
        sizes = {}
        for table in ("telemetry_raw", "telemetry_history_5m", "telemetry_daily", "telemetry_site_history_5m",
                      "telemetry_site_daily"):  # fmt: skip
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                "WHERE inhparent = %s::regclass",
                [table],
            )
            size = float(cursor.fetchone()[0] or 0)
            if not size:
                cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
                size = float(cursor.fetchone()[0])
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - the names above
            rows = cursor.fetchone()[0]
            if rows < 10_000:  # a few rows in 8 kB pages say nothing per row: the 5-minute row's size stands in
                print(f"{table}: {rows:,} rows, too few to measure; counted at the 5-minute row's size")
                continue
            sizes[table] = size / rows
            per_sample = {"telemetry_raw": 1, "telemetry_history_5m": 5, "telemetry_daily": 1440}[table]
            print(
                f"{table}: {rows:,} rows, {size / 1e6:,.1f} MB with indexes, {sizes[table]:.0f} bytes/row, "
                f"{sizes[table] / per_sample:.2f} bytes per sample (at one sample a minute)"
            )
    sizes["telemetry_site_history_5m"] = sizes["telemetry_site_daily"] = sizes["telemetry_history_5m"]

    miners_site, per_day = 10_000, 1440
    raw_day = miners_site * per_day * sizes["telemetry_raw"]
    h5m = miners_site * 288 * 30 * sizes["telemetry_history_5m"]
    daily_b = miners_site * 30 * sizes["telemetry_daily"]
    site = 288 * 30 * sizes["telemetry_site_history_5m"] + 30 * sizes["telemetry_site_daily"]
    gb = 1e9
    print(
        f"30 days, 10,000 miners, 1 sample/min: raw {raw_day / gb:.1f}–{2 * raw_day / gb:.1f} GB "
        f"(24 h kept, whole daily partitions: 1–2 days on disk), history_5m {h5m / gb:.1f} GB, "
        f"daily {daily_b / gb:.3f} GB, site layers {site / gb:.3f} GB; "
        f"total {(2 * raw_day + h5m + daily_b + site) / gb:.1f} GB at most "
        f"(90 days of history_5m: {3 * h5m / gb:.1f} GB)"
    )


if __name__ == "__main__":
    main()
