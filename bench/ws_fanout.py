"""WebSocket fan-out: one alert to 1,000 connected clients; delivery latency (p50/p95) and loss.

    .venv/bin/python bench/ws_fanout.py [--clients 1000] [--alerts 5]

uvicorn serves hashinsight.asgi in a subprocess (one process) with the Redis channel layer; the
clients are asyncio WebSockets in this process, all signed in as the owner with an API token. Each
alert is raised through the real service (outbox → handler → channel layer group send); latency is
from just before the service call to each client's receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

from _setup import ROOT, ensure_database, machine, percentile

REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_clients(url: str, token: str, clients: int, alerts: int, raise_alert):
    import websockets

    origin = url.replace("ws://", "http://").rsplit("/ws", 1)[0]
    headers = {"Authorization": f"Bearer {token}", "Origin": origin}
    sockets = []
    for i in range(0, clients, 100):  # connect in waves so the accept queue never overflows
        wave = min(100, clients - i)
        sockets += await asyncio.gather(
            *(websockets.connect(url, additional_headers=headers, max_queue=None) for _ in range(wave))
        )
    for ws in sockets:
        assert '"hello"' in await asyncio.wait_for(ws.recv(), 10)
    latencies: list[float] = []
    delivered = 0
    for n in range(alerts):
        marker = f"bench-{time.time_ns()}-{n}"
        t0 = time.perf_counter()

        async def receive(ws, marker=marker, t0=t0):
            while True:
                message = await ws.recv()
                if marker in message:
                    return (time.perf_counter() - t0) * 1000

        waiters = [asyncio.ensure_future(receive(ws)) for ws in sockets]
        await asyncio.get_running_loop().run_in_executor(None, raise_alert, marker)
        done, pending = await asyncio.wait(waiters, timeout=10)
        for task in pending:
            task.cancel()
        latencies += [t.result() for t in done]
        delivered += len(done)
    # Close all at once: one by one, each waits for the server's close frame.
    await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in sockets], timeout=10)
    return latencies, delivered, clients * alerts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=5)
    args = parser.parse_args()
    db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hashinsight_bench")
    ensure_database(db)
    env = {**os.environ, "DATABASE_URL": db, "REDIS_URL": REDIS, "LOG_LEVEL": "ERROR", "DB_CONN_MAX_AGE": "0"}
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    sys.path.insert(0, str(ROOT))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT, env=env)
    subprocess.run([*manage, "seed_demo", "--miners", "0"], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--port", str(port),
         "--log-level", "warning", "--lifespan", "off"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        import django

        django.setup()
        from hashinsight.accounts.models import User
        from hashinsight.accounts.services import api_token_create
        from hashinsight.celery import app
        from sites.models import Site
        from telemetry import services

        app.conf.task_always_eager = True  # the handler runs here; the channel layer carries it to uvicorn
        token = api_token_create(user=User.objects.get(username="owner"), name="ws-bench")[1]
        site = Site.objects.order_by("pk").first()

        def raise_alert(marker: str):
            services.alert_raise(site=site, alert_type=marker, severity="warning", message=marker)

        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        latencies, delivered, expected = asyncio.run(
            run_clients(f"ws://127.0.0.1:{port}/ws/alerts/", token, args.clients, args.alerts, raise_alert)
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)  # uvicorn waits for open WebSockets before it exits
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"machine: {machine()}")
    print(f"{args.clients:,} clients × {args.alerts} alerts: delivered {delivered:,}/{expected:,} "
          f"(lost {expected - delivered})")  # fmt: skip
    print(f"delivery latency: p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
          f"max {max(latencies):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
