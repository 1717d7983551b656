"""Outbox → Celery (Redis broker) → handler: sustained events/s, commit→handler latency, and no lost
events across a kill -9 of the worker and of the relay during the run.

    .venv/bin/python bench/outbox_throughput.py [--events 20000] [--per-commit 20]

Publishes `portfolio.changed` events (real contract, real handler: cache invalidation and a coalesced
recalculation) from this process; one Celery worker (prefork, 2 processes) consumes them from Redis;
a relay loop (the beat job, every second here) re-sends what a dead worker left behind. PostgreSQL
database `hashinsight_bench`; Redis databases 4–6 so nothing else on the server is touched.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _setup import ROOT, machine, percentile

BROKER = "redis://127.0.0.1:6379/4"
POOL = os.environ.get("BENCH_POOL", "threads")
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "4")


def env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hashinsight_bench"),
        "REDIS_URL": BROKER,
        "OUTBOX_DISPATCH_TIMEOUT_S": "5",
        "OUTBOX_RELAY_GRACE_S": "2",
        "LOG_LEVEL": "ERROR",
    }


class Workers:
    """The production topology: event hand-offs and follow-up recalculations on separate workers,
    so a burst of recalculations never queues ahead of events."""

    def __init__(self, log: Path):
        self.procs = [
            _worker(log, "default", POOL, CONCURRENCY),
            _worker(log, "intelligence", "prefork", "1"),
        ]

    def kill(self):
        for proc in self.procs:
            kill(proc)


def _worker(log: Path, queues: str, pool: str, concurrency: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hashinsight", "worker", "-Q", queues, "--pool", pool,
         "-c", concurrency, "-n", f"{queues}@%h", "--without-heartbeat", "--without-mingle", "--without-gossip",
         "-l", "ERROR"],
        cwd=ROOT, env=env(), start_new_session=True, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


RELAY_LOOP = (
    "import django, time; django.setup()\n"
    "from hashinsight.events.outbox import relay\n"
    "while True:\n    relay(); time.sleep(1)\n"
)


def start_relay(log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RELAY_LOOP], cwd=ROOT, env={**env(), "DJANGO_SETTINGS_MODULE": "hashinsight.settings"},
        start_new_session=True, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-commit", type=int, default=100)
    parser.add_argument("--rates", default="250,500,1000", help="offered events/s in the latency phases")
    parser.add_argument("--seconds", type=int, default=15, help="length of the latency phase")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 phases")
    args = parser.parse_args()
    os.environ.update(env())
    from _setup import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT, env=env())
    import django

    django.setup()
    from django.db import connection, transaction
    from django.db.models import Count

    from hashinsight.celery import app
    from hashinsight.events import outbox
    from hashinsight.events.models import CoalescedWork, EventFailure, HandlerReceipt, OutboxEvent
    from hashinsight.events.registry import handlers_for

    OutboxEvent.objects.all().delete()
    CoalescedWork.objects.all().delete()
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # broker database 4 only
    logs = Path(ROOT / "var" / "bench")
    logs.mkdir(parents=True, exist_ok=True)
    worker, relay_proc = Workers(logs / "worker.log"), start_relay(logs / "relay.log")
    time.sleep(4)  # let the worker come up
    print(f"machine: {machine()}")
    print(
        f"database: {connection.vendor}; broker: {BROKER}; handlers per event: {len(handlers_for('portfolio.changed'))}"
    )

    kills = []
    start = time.time()
    published = 0
    while published < args.events:
        with transaction.atomic():
            items = [("burst", {"user_id": (published + i) % 200 + 1}) for i in range(args.per_commit)]
            outbox.publish_many("portfolio.changed", items)
            published += len(items)
        if not args.no_kill and published == args.events // 3 // args.per_commit * args.per_commit:
            worker.kill()
            kills.append(("workers", time.time()))
            worker = Workers(logs / "worker.log")
        if not args.no_kill and published == 2 * args.events // 3 // args.per_commit * args.per_commit:
            kill(relay_proc)
            kills.append(("relay", time.time()))
            relay_proc = start_relay(logs / "relay.log")
    publish_s = time.time() - start

    deadline = time.time() + 600
    while OutboxEvent.objects.exclude(status="done").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(15)  # let follow-up recalculations and autovacuum after the burst settle
    latency = [latency_phase(int(rate), args.seconds, n) for n, rate in enumerate(args.rates.split(","))]
    worker.kill()
    kill(relay_proc)

    total = OutboxEvent.objects.filter(aggregate="burst").count()
    unfinished = OutboxEvent.objects.exclude(status="done").count()
    burst = OutboxEvent.objects.filter(aggregate="burst")
    handlers = len(handlers_for("portfolio.changed"))
    receipts = HandlerReceipt.objects.filter(event__aggregate="burst").values("event").annotate(n=Count("id"))
    wrong = sum(1 for r in receipts if r["n"] != handlers) + (total - len(receipts))
    rows = list(burst.values_list("created_at", "finished_at"))
    lat_ms = [(done - created).total_seconds() * 1000 for created, done in rows if done]
    first, last = min(r[0] for r in rows), max(r[1] for r in rows if r[1])
    per_second: dict[int, int] = {}
    for _, done in rows:
        if done:
            per_second[int(done.timestamp())] = per_second.get(int(done.timestamp()), 0) + 1
    busy = sorted(per_second.values())[len(per_second) // 10 :]  # drop the ramp-up/down tail
    kill_windows = [(t - 0.5, t + 30) for _, t in kills]
    calm = [
        (d - c).total_seconds() * 1000
        for c, d in rows
        if d and not any(lo <= c.timestamp() <= hi for lo, hi in kill_windows)
    ]
    print(f"published {published:,} events in {publish_s:.1f} s ({published / publish_s:,.0f}/s from one publisher)")
    print(f"processed {total - unfinished:,}/{total:,}; unfinished: {unfinished}; events without exactly "
          f"{handlers} receipt(s): {wrong}; failures parked: {EventFailure.objects.count()}")  # fmt: skip
    print(f"end-to-end: {(total - unfinished) / (last - first).total_seconds():,.0f} events/s "
          f"(first commit → last handler); per-second median {statistics.median(busy):,.0f}/s")  # fmt: skip
    print(
        f"commit → handler done, all events: p50 {statistics.median(lat_ms):.0f} ms, "
        f"p95 {percentile(lat_ms, 95):.0f} ms"
    )
    if calm:
        print(f"commit → handler done, outside kill windows: p50 {statistics.median(calm):.0f} ms, "
              f"p95 {percentile(calm, 95):.0f} ms (n={len(calm):,})")  # fmt: skip
    for name, _ in kills:
        print(f"killed -9 during the burst: {name}")
    print("\n".join(latency))


def latency_phase(rate: int, seconds: int, phase: int) -> str:
    """Offer ``rate`` events/s (a commit every 20 ms) and measure commit → handler done."""
    from django.db import transaction

    from hashinsight.events import outbox
    from hashinsight.events.models import OutboxEvent

    per_commit = max(1, rate // 50)
    start = time.time()
    ticks = 0
    while time.time() - start < seconds:
        with transaction.atomic():
            outbox.publish_many(
                "portfolio.changed", [(f"steady{phase}", {"user_id": i % 200 + 1}) for i in range(per_commit)]
            )
        ticks += 1
        time.sleep(max(0.0, start + ticks * 0.02 - time.time()))
    offered = OutboxEvent.objects.filter(aggregate=f"steady{phase}").count() / (time.time() - start)
    deadline = time.time() + 120
    while (
        OutboxEvent.objects.filter(aggregate=f"steady{phase}").exclude(status="done").exists()
        and time.time() < deadline
    ):
        time.sleep(0.2)
    rows = OutboxEvent.objects.filter(aggregate=f"steady{phase}", status="done")
    rows = rows.values_list("created_at", "finished_at")
    ms = [(done - created).total_seconds() * 1000 for created, done in rows]
    return (
        f"steady load {offered:,.0f} events/s for {seconds} s: commit → handler done "
        f"p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, max {max(ms):.0f} ms (n={len(ms):,})"
    )


if __name__ == "__main__":
    main()
