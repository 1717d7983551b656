"""PostgreSQL connections held by the ASGI web tier, and request latency, per connection strategy.

    .venv/bin/python bench/db_connections.py [--requests 1500] [--concurrency 8] [--modes persistent,per-request,pool]

For each mode, starts `uvicorn --workers 2` (production's web command) against database `h7_bench`,
sends N requests from C client threads (keep-alive; half `GET /api/v1/sites/` with an API token,
half `GET /api/health`), samples `pg_stat_activity` for that database every 50 ms, and prints the
peak connection count during the run, the count still open 3 s after it, and p50/p95 latency.

Modes: persistent = DB_CONN_MAX_AGE=60 (the old default); per-request = DB_CONN_MAX_AGE=0 (a
connection per request, closed when it ends); pool = psycopg's pool, DB_POOL_MAX_SIZE per process.
A safety valve stops a run whose connections pass 70 (the server is shared; max_connections=100).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

from _setup import ROOT, django_setup, machine, percentile

URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h7_bench")
LIMIT = 70
MODES = {
    "persistent": {"DB_CONN_MAX_AGE": "60"},
    "per-request": {"DB_CONN_MAX_AGE": "0"},
    "pool": {"DB_POOL_MAX_SIZE": os.environ.get("BENCH_POOL_SIZE", "4")},
}


def make_token() -> str:
    from hashinsight.accounts.models import User
    from hashinsight.accounts.services import api_token_create

    user = User.objects.filter(role="OWNER").first()
    return api_token_create(user=user, name="bench db connections")[1]


def count_connections(conn, name: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
    ).fetchone()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_mode(mode: str, token: str, requests: int, concurrency: int) -> dict:
    import psycopg

    name = urlparse(URL).path.lstrip("/")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_CONN_MAX_AGE", "DB_POOL"))}
    env |= {"DATABASE_URL": URL, "LOG_LEVEL": "ERROR", **MODES[mode]}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "2", "--lifespan", "off", "--log-level", "error"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    monitor = psycopg.connect(URL.replace(f"/{name}", "/postgres"), autocommit=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.1)
        time.sleep(1)  # both workers up
        baseline = count_connections(monitor, name)
        peak, stop, aborted = [baseline], threading.Event(), threading.Event()

        def sample():
            while not stop.is_set():
                n = count_connections(monitor, name)
                peak.append(n)
                if n > LIMIT:
                    aborted.set()
                    server.terminate()
                    return
                time.sleep(0.05)

        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        per_client = requests // concurrency

        def client(i: int):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine = []
            for j in range(per_client):
                if aborted.is_set():
                    break
                path, headers = (
                    ("/api/v1/sites/", {"Authorization": f"Bearer {token}"}) if (i + j) % 2 else ("/api/health", {})
                )
                start = time.perf_counter()
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                mine.append((time.perf_counter() - start) * 1000)
                if not ok:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.perf_counter() - started
        time.sleep(3)
        stop.set()
        sampler.join()
        after = count_connections(monitor, name)
        return {
            "mode": mode, "requests": len(latencies), "errors": errors[0], "aborted": aborted.is_set(),
            "peak_connections": max(peak), "connections_3s_after": after, "baseline": baseline,
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p95_ms": percentile(latencies, 95) if len(latencies) > 1 else None,
            "req_per_s": len(latencies) / elapsed,
        }  # fmt: skip
    finally:
        monitor.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--modes", default="persistent,per-request,pool")
    parser.add_argument("--miners", type=int, default=200)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = URL
    os.environ["DB_CONN_MAX_AGE"] = "0"
    django_setup(args.miners)
    token = make_token()
    from django.db import connection

    connection.close()
    print(f"machine: {machine()}; {args.requests} requests, {args.concurrency} clients, uvicorn --workers 2")
    for mode in args.modes.split(","):
        r = run_mode(mode, token, args.requests, args.concurrency)
        print(
            f"{r['mode']:>12}: peak {r['peak_connections']:>3} connections (idle before {r['baseline']}), "
            f"{r['connections_3s_after']:>3} still open 3 s later; p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
            f"{r['req_per_s']:.0f} req/s, {r['errors']} errors"
            + (" (ABORTED at the safety limit)" if r["aborted"] else "")
        )


if __name__ == "__main__":
    main()
