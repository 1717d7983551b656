"""Alert fan-out end to end: alert.raised events → outbox → Celery (Redis) → the batched alert handler
→ channel layer (Redis) → uvicorn → WebSocket clients; alerts/s drained, delivered, and latency.

    .venv/bin/python bench/alert_fanout.py [--events 20000] [--per-commit 100] [--sockets 2]

The publisher writes `alert.raised` outbox rows (real contract, 100 per transaction) from this
process, spread over the demo farm's sites and hosting clients; it does not go through
`alert_raise`, so what is measured is the drain and the fan-out, not the alert table. One events
worker (threads, the Procfile's queues) runs the handler; one uvicorn process serves the sockets;
a separate listener process holds ``--sockets`` connections for each of the owner (sees every
alert), the demo site owner (one site) and the demo hosting client (one client), and records every
frame. PostgreSQL database `hashinsight_bench` (or DATABASE_URL); Redis from REDIS_URL (default
database 4, and 5-6 for cache and channel layer), whose broker and channel-layer databases are flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _setup import ROOT, ensure_database, machine, percentile

REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
POOL = os.environ.get("BENCH_POOL", "threads")
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "8")  # the Procfile's events worker


def env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hashinsight_bench"),
        "REDIS_URL": REDIS,
        "LOG_LEVEL": "ERROR",
        "DJANGO_SETTINGS_MODULE": "hashinsight.settings",
    }


def redis_db(offset: int) -> str:
    parsed = urlsplit(REDIS)
    return urlunsplit(parsed._replace(path=f"/{int(parsed.path.strip('/') or 0) + offset}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# --- the listener (a process of its own, so decoding frames does not slow the publisher) ----------


async def listen(url: str, tokens: list[str], sockets: int, idle_s: float, out: Path) -> None:
    import websockets

    conns = []
    for index, token in enumerate(tokens):
        for _ in range(sockets):
            ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None)
            assert '"hello"' in await asyncio.wait_for(ws.recv(), 10)
            conns.append((index, ws))
    print("ready", flush=True)
    frames: list[list] = []  # [token index, socket number, event id, received at]

    async def drain(number, index, ws):
        while True:
            try:
                # Until the first alert the publisher may still be filling a backlog: wait long.
                message = await asyncio.wait_for(ws.recv(), idle_s if frames else 600)
            except (TimeoutError, websockets.ConnectionClosed):
                return
            frame = json.loads(message)
            if frame["type"] == "alert":
                frames.append([index, number, frame["id"], time.time()])

    await asyncio.gather(*(drain(n, index, ws) for n, (index, ws) in enumerate(conns)))
    await asyncio.wait([asyncio.ensure_future(ws.close()) for _, ws in conns], timeout=10)
    out.write_text(json.dumps(frames))


# --- the run -------------------------------------------------------------------------------------


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env(), start_new_session=True, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-commit", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=2, help="connections per user (owner, site owner, client)")
    parser.add_argument("--backlog", action="store_true", help="publish everything first, then start the worker")
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.listen:
        asyncio.run(listen(args.listen, args.tokens.split(","), args.sockets, 20.0, Path(args.out)))
        return

    os.environ.update(env())
    ensure_database(os.environ["DATABASE_URL"])
    sys.path.insert(0, str(ROOT))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT, env=env())
    subprocess.run([*manage, "seed_demo", "--miners", "0"], check=True, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL)
    import django

    django.setup()
    import redis
    from django.db import transaction

    from hashinsight.accounts.models import User
    from hashinsight.accounts.services import api_token_create
    from hashinsight.events import outbox
    from hashinsight.events.models import EventFailure, HandlerReceipt, OutboxEvent
    from sites.models import Customer, Site
    from sites.selectors import scope_of

    OutboxEvent.objects.all().delete()
    for offset in (0, 2):  # broker and channel layer: queued tasks and group members of earlier runs
        redis.Redis.from_url(redis_db(offset)).flushdb()
    users = [User.objects.get(username=name) for name in ("owner", "siteowner", "client")]
    tokens = [api_token_create(user=user, name="alert-fanout-bench")[1] for user in users]
    scopes = [scope_of(user) for user in users]
    sites = list(Site.objects.order_by("pk").values_list("pk", flat=True))
    customers = [*Customer.objects.order_by("pk").values_list("pk", flat=True), None]

    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start([sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--port", str(port),
                    "--log-level", "warning", "--lifespan", "off"], logs / "uvicorn.log")  # fmt: skip
    worker_cmd = [sys.executable, "-m", "celery", "-A", "hashinsight", "worker", "-Q", "default,telemetry",
                  "--pool", POOL, "-c", CONCURRENCY, "-n", "events@%h", "--without-heartbeat",
                  "--without-mingle", "--without-gossip", "-l", "ERROR"]  # fmt: skip
    worker = None if args.backlog else start(worker_cmd, logs / "worker.log")
    listener = None
    frames_file = logs / "alert_fanout_frames.json"
    frames_file.unlink(missing_ok=True)
    try:
        wait_for_port(port)
        listener = subprocess.Popen(
            [sys.executable, __file__, "--listen", f"ws://127.0.0.1:{port}/ws/alerts/", "--tokens", ",".join(tokens),
             "--sockets", str(args.sockets), "--out", str(frames_file)],
            cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listener.stdout.readline().strip() == "ready"
        time.sleep(3)  # the worker is up

        expected = [0, 0, 0]
        start_t = time.time()
        published = 0
        while published < args.events:
            items = []
            for i in range(published, min(args.events, published + args.per_commit)):
                site, customer = sites[i % len(sites)], customers[(i // len(sites)) % len(customers)]
                items.append((f"alert:{i + 1}", {
                    "alert_id": i + 1, "site_id": site, "customer_id": customer, "miner_id": None,
                    "alert_type": "bench", "severity": "warning", "status": "open", "count": 1, "message": f"bench {i}",
                }))  # fmt: skip
                for n, scope in enumerate(scopes):
                    expected[n] += scope.allows(site_id=site, customer_id=customer)
            with transaction.atomic():
                outbox.publish_many("alert.raised", items)
            published += len(items)
        publish_s = time.time() - start_t
        if worker is None:
            worker = start(worker_cmd, logs / "worker.log")

        deadline = time.time() + 900
        while OutboxEvent.objects.exclude(status="done").exists() and time.time() < deadline:
            time.sleep(0.5)
        listener.wait(timeout=120)  # it stops 20 s after the last frame it got
    finally:
        if listener is not None and listener.poll() is None:
            listener.kill()
        if worker is not None:
            stop(worker)
        stop(server)

    rows = {
        str(pk): (created, done)
        for pk, created, done in OutboxEvent.objects.values_list("pk", "created_at", "finished_at")
    }
    unfinished = sum(1 for _, done in rows.values() if done is None)
    first = min(created for created, _ in rows.values())
    first_done = min(done for _, done in rows.values() if done)
    last = max(done for _, done in rows.values() if done)
    per_second = Counter(int(done.timestamp()) for _, done in rows.values() if done)
    busy = sorted(per_second.values())[len(per_second) // 10 :]  # drop the ramp-up/down tail
    frames = json.loads(frames_file.read_text()) if frames_file.exists() else []
    got = Counter((index, number) for index, number, _, _ in frames)
    distinct = Counter((index, number, event_id) for index, number, event_id, _ in frames)
    duplicates = sum(n - 1 for n in distinct.values())
    latency = [(t - rows[event_id][0].timestamp()) * 1000 for _, _, event_id, t in frames if event_id in rows]
    last_frame = max((t for *_, t in frames), default=first.timestamp())
    receipts = HandlerReceipt.objects.count()

    print(f"machine: {machine()}")
    print(f"worker: --pool {POOL} -c {CONCURRENCY}; one uvicorn process; {args.sockets} socket(s) per user")
    print(f"published {published:,} alert.raised events in {publish_s:.1f} s ({published / publish_s:,.0f}/s)")
    print(f"handled {len(rows) - unfinished:,}/{len(rows):,}; unfinished {unfinished}; receipts {receipts:,}; "
          f"failures parked {EventFailure.objects.count()}")  # fmt: skip
    # With --backlog the clock starts at the first handler done (the worker's start-up is not drain).
    t0 = first_done if args.backlog else first
    print(f"drained: {(len(rows) - unfinished) / (last - t0).total_seconds():,.0f} alerts/s "
          f"({'first handler done' if args.backlog else 'first commit'} → last handler done); "
          f"per-second median {statistics.median(busy):,.0f}/s")  # fmt: skip
    print(f"delivered to sockets: → last frame {last_frame - t0.timestamp():.1f} s "
          f"({published / (last_frame - t0.timestamp()):,.0f} alerts/s)")  # fmt: skip
    for n, name in enumerate(("owner (all)", "site owner (1 site)", "client (1 client)")):
        counts = [got[(n, s)] for s in range(n * args.sockets, (n + 1) * args.sockets)]
        print(f"  {name}: expected {expected[n]:,} per socket, received {counts}")
    print(f"duplicate frames: {duplicates}")
    if latency:
        print(f"commit → frame received: p50 {statistics.median(latency):,.0f} ms, "
              f"p95 {percentile(latency, 95):,.0f} ms, max {max(latency):,.0f} ms (n={len(latency):,})")  # fmt: skip


if __name__ == "__main__":
    main()
