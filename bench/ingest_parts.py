"""Where an ingest batch's database time goes: PostgreSQL's own CPU and WAL per part of the store
(raw COPY, live upsert, outbox row, commit), and what the live table's four sort indexes cost the
upsert. In-process, one connection, on the database ``bench/ingest_bench.py`` seeds (run that first).

    .venv/bin/python bench/ingest_parts.py [--batches 20] [--batch-size 1000]

CPU is the backend's own (``/proc/<pid>/stat``, 10 ms ticks: summed over the batches, so a figure is
good to ~10 ms / batches), so it is the work done rather than the wall time a shared machine stretches.
The index part runs the same upsert of the same kind of rows inside a transaction that first drops the
sort indexes, and rolls back (nothing changes)."""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import ROOT, machine

DATABASE = "postgres://postgres@127.0.0.1:5432/hashinsight_bench_ingest"
SORT_INDEXES = ("live_q_status", "live_q_temp", "live_q_hashrate", "live_q_last_seen")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wal_lsn(cursor) -> str:
    cursor.execute("SELECT pg_current_wal_insert_lsn()")
    return cursor.fetchone()[0]


def wal_since(cursor, lsn: str) -> float:
    cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [lsn])
    return float(cursor.fetchone()[0])


def store_parts(batches: int, batch_size: int) -> None:
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone
    from ingest_bench import enroll_senders, make_samples

    from hashinsight.events import outbox
    from telemetry import ingest_store as store
    from telemetry.ingest import validate_samples
    from telemetry.models import RawSample

    sender = enroll_senders(1)[0]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # recent, as in ingest_bench.py
    newest = RawSample.objects.aggregate(newest=Max("ts"))["newest"]
    if newest is not None and newest >= start:
        start = newest + timedelta(seconds=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    cpu: dict[str, float] = {}
    wal: dict[str, float] = {}
    gc.disable()
    for g in range(batches + 1):  # the first one warms up (staging tables, maps)
        first = g * batch_size % len(sender.serials)
        chosen = [sender.serials[(first + k) % len(sender.serials)] for k in range(batch_size)]
        samples = make_samples(chosen, start + timedelta(seconds=g), g)
        validated = validate_samples(samples, store.miner_map(sender.site_id), timezone.now())
        rows = validated.rows
        marks: list[tuple[str, float, float]] = []
        with connection.cursor() as cursor:
            lsn = wal_lsn(cursor)
            with transaction.atomic():
                store._staging_tables()
                marks.append(("", backend_cpu(pid), 0.0))
                fans = [store._jsonb(r[6]) for r in rows]
                store._insert_raw(rows, sender.site_id, sender.device_id, validated.customer_of, fans, fresh=True)
                marks.append(("raw COPY", backend_cpu(pid), wal_since(cursor, lsn)))
                changed = store._upsert_live(rows, sender.site_id, validated.customer_of, fans)
                marks.append(("live upsert", backend_cpu(pid), wal_since(cursor, lsn)))
                outbox.publish(
                    "telemetry.ingested", aggregate=f"edge_device:{sender.device_id}",
                    payload={"site_id": sender.site_id, "device_id": sender.device_id, "accepted": len(rows),
                             "miner_ids": changed, "newest_ts": max(r[1] for r in rows)},
                )  # fmt: skip
                marks.append(("outbox row", backend_cpu(pid), wal_since(cursor, lsn)))
            marks.append(("commit", backend_cpu(pid), wal_since(cursor, lsn)))
        if g:
            for (_, cpu_a, wal_a), (name, cpu_b, wal_b) in itertools.pairwise(marks):
                cpu[name] = cpu.get(name, 0.0) + cpu_b - cpu_a
                wal[name] = wal.get(name, 0.0) + wal_b - wal_a
    gc.enable()
    print(f"store of a {batch_size:,}-sample batch, PostgreSQL's side (mean of {batches} batches):")
    for name in cpu:
        print(f"  {name:12} CPU {cpu[name] / batches * 1000:5.1f} ms   WAL {wal[name] / batches / 1000:7.0f} kB")
    total_cpu, total_wal = sum(cpu.values()) / batches * 1000, sum(wal.values()) / batches / 1000
    print(f"  {'total':12} CPU {total_cpu:5.1f} ms   WAL {total_wal:7.0f} kB")


def index_cost(repeats: int, batch_size: int) -> None:
    import psycopg
    from django.db import connection

    from telemetry.ingest_store import _LIVE_PG_UPSERT, LIVE_COLUMNS_ALL

    columns = ", ".join(LIVE_COLUMNS_ALL)
    # The live rows as a newer sample would rewrite them (every sort key moves, as it does each minute).
    moved = {
        "last_seen": "last_seen + interval '90 s'", "hashrate_window_ts": "ARRAY[extract(epoch FROM last_seen) + 90]",
        "hashrate_window_ths": "ARRAY[111.5::float8]", "pool_url": "chr(1)", "power_mode": "chr(1)", "fan_pct": "-1",
        "temp_chip_max_c": "temp_chip_max_c + 0.5", "hashrate_ghs": "hashrate_ghs + 1",
    }  # fmt: skip
    select = ", ".join(moved.get(c, c) for c in LIVE_COLUMNS_ALL)
    url = connection.settings_dict
    dsn = f"postgresql://{url['USER']}@{url['HOST']}:{url['PORT']}/{url['NAME']}"
    variants = {"all five indexes": (), "primary key only": SORT_INDEXES, "without live_q_last_seen": SORT_INDEXES[3:]}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wal: dict[str, list[float]] = {name: [] for name in variants}
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _ingest_live (LIKE telemetry_live INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        conn.commit()
        pid = cursor.execute("SELECT pg_backend_pid()").fetchone()[0]
        ids = [row[0] for row in cursor.execute("SELECT miner_id FROM telemetry_live ORDER BY miner_id")]
        if len(ids) < 2 * batch_size:
            raise SystemExit("too few live rows: run bench/ingest_bench.py first")
        step = 0
        for _ in range(repeats):
            for name, dropped in variants.items():
                first = step * batch_size * 7 % (len(ids) - batch_size)
                step += 1
                for index in dropped:
                    cursor.execute(f"DROP INDEX {index}")
                cursor.execute(
                    f"INSERT INTO _ingest_live ({columns}) SELECT {select} FROM telemetry_live "  # noqa: S608 - constants
                    "WHERE miner_id = ANY(%s)",
                    [ids[first : first + batch_size]],
                )
                lsn = wal_lsn(cursor)
                started = backend_cpu(pid)
                cursor.execute(_LIVE_PG_UPSERT)
                cursor.fetchall()
                cpu[name].append(backend_cpu(pid) - started)
                wal[name].append(wal_since(cursor, lsn))
                conn.rollback()  # the indexes come back, the rows stay as they were
    print(f"live upsert of {batch_size:,} rows by its indexes (mean of {repeats}, rolled back):")
    for name in variants:
        print(f"  {name:26} CPU {statistics.fmean(cpu[name]) * 1000:5.1f} ms   "
              f"WAL {statistics.median(wal[name]) / 1000:6.0f} kB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--index-repeats", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DATABASE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(machine())
    with open("/proc/loadavg") as load:
        print(f"load average at start: {load.read().split()[0]}")
    store_parts(args.batches, args.batch_size)
    index_cost(args.index_repeats, args.batch_size)


if __name__ == "__main__":
    main()
