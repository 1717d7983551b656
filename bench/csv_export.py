"""CSV export of 100,000 miners (``/miners/?format=csv``): time to first byte, time to the first data
rows, total time and memory, medians of several runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hashinsight_bench .venv/bin/python bench/csv_export.py

Two paths, because they stream differently:
- in-process through Django's test client (WSGI handler, full middleware): Python heap peak by
  tracemalloc while the response is consumed;
- a real uvicorn server (ASGI, the production path) in a child process, read over HTTP: the server's
  resident memory (VmRSS sampled every 10 ms) before and at its peak during the export.
"Flat" means the peak does not grow with the number of rows: each path is also run on a third of the
fleet (one site), and the peaks are compared.
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
import tracemalloc

from _setup import ROOT, django_setup, machine


def median(values):
    return statistics.median(values)


def in_process(client, url: str, *, trace: bool = False) -> dict:
    if trace:  # tracemalloc slows Python several-fold: memory runs are separate from timed runs
        tracemalloc.start()
        tracemalloc.reset_peak()
    start, cpu_start = time.perf_counter(), time.process_time()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    chunks = iter(response.streaming_content)
    first = next(chunks)
    ttfb = time.perf_counter() - start
    second = next(chunks, b"")
    first_rows = time.perf_counter() - start
    size, lines = len(first) + len(second), first.count(b"\n") + second.count(b"\n")
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n")
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start  # this process's CPU (Django + CSV), not PostgreSQL's; load-independent
    out = {"ttfb": ttfb, "first_rows": first_rows, "total": total, "cpu": cpu, "rows": lines - 1, "mb": size / 1e6}
    if trace:
        out = {"rows": out["rows"], "mb": out["mb"], "heap_peak_mib": tracemalloc.get_traced_memory()[1] / 2**20}
        tracemalloc.stop()
    return out


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def over_http(port: int, pid: int, url: str, cookie: str) -> dict:
    base, peak, stop = rss_kib(pid), [0], threading.Event()
    cpu_start = cpu_s(pid)

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", url, headers={"Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 200, response.status
    first = response.read1(65536)
    ttfb = time.perf_counter() - start
    size, lines = len(first), first.count(b"\n")
    first_rows = None
    while chunk := response.read1(65536):
        if first_rows is None:
            first_rows = time.perf_counter() - start
        size += len(chunk)
        lines += chunk.count(b"\n")
    total = time.perf_counter() - start
    conn.close()
    stop.set()
    sampler.join()
    return {
        "ttfb": ttfb, "first_rows": first_rows or total, "total": total, "cpu": cpu_s(pid) - cpu_start,
        "rows": lines - 1, "mb": size / 1e6, "rss_base_mib": base / 1024, "rss_peak_mib": peak[0] / 1024,
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(label: str, runs: list[dict]) -> None:
    fields = [k for k in runs[0] if k not in ("rows", "mb")]
    parts = [f"{k} {median([r[k] for r in runs]) * (1000 if k in ('ttfb', 'first_rows') else 1):.1f}"
             + (" ms" if k in ("ttfb", "first_rows") else " s" if k in ("total", "cpu") else "")
             for k in fields]  # fmt: skip
    print(f"{label:42} rows={runs[0]['rows']:>7,} size={runs[0]['mb']:.1f} MB  " + ", ".join(parts)
          + f"  (median of {len(runs)})")  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    django_setup(args.miners)

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from hashinsight.accounts.models import User
    from miners.models import Miner
    from sites.models import Site

    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    print(f"database: {connection.vendor}, miners: {Miner.objects.count():,}")
    owner = User.objects.get(username="owner")
    one_site = Site.objects.order_by("pk").first()
    urls = [("all miners", "/miners/?format=csv"), ("one site", f"/miners/?format=csv&site={one_site.pk}")]

    client = Client()
    client.force_login(owner)
    client.get(urls[1][1]).getvalue()  # warm up: imports, connection, query plans
    for label, url in urls:
        report(f"in-process (WSGI handler), {label}", [in_process(client, url) for _ in range(args.runs)])
        report(f"in-process, tracemalloc, {label}", [in_process(client, url, trace=True) for _ in range(3)])

    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--port", str(port), "--log-level",
         "warning", "--no-access-log"], cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        over_http(port, server.pid, urls[1][1], cookie)  # warm up
        for label, url in urls:
            report(f"uvicorn (ASGI) over HTTP, {label}", [over_http(port, server.pid, url, cookie)
                                                          for _ in range(args.runs)])  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
