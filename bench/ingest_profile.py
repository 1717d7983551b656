"""Where a worker's CPU goes for one ingest request, in-process: Django's full middleware stack and the
view through the test client (no uvicorn, no asgiref thread hop), on the database ``bench/ingest_bench.py``
seeds (run that first). Prints the thread CPU per request of each stage measured apart and of whole
requests, then a cProfile of requests on the thread's CPU clock.

    .venv/bin/python bench/ingest_profile.py [--batches 30] [--batch-size 1000] [--no-profile] [--pyinstrument]

``--pyinstrument`` samples instead of cProfile (``pip install --target DIR pyinstrument`` and put DIR on
PYTHONPATH): cProfile's cost per call inflates code made of many small calls (psycopg's per-row COPY
looked like a quarter of a request under it; timed alone it is ~1 ms of a 1,000-row batch).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from _setup import ROOT, machine

DATABASE = "postgres://postgres@127.0.0.1:5432/hashinsight_bench_ingest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true", help="a sampling profile (wall clock) instead")
    args = parser.parse_args()
    from ingest_bench import server_env

    os.environ.update(server_env(os.environ.get("DATABASE_URL", DATABASE)))
    os.environ["DJANGO_SETTINGS_MODULE"] = "hashinsight.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import orjson
    from django.db.models import Max
    from django.test import Client
    from django.utils import timezone
    from ingest_bench import enroll_senders, make_samples

    from telemetry.ingest import validate_samples
    from telemetry.ingest_store import miner_map
    from telemetry.models import RawSample

    print(machine())
    with open("/proc/loadavg") as load:
        print(f"load average at start: {load.read().split()[0]}")
    sender = enroll_senders(1)[0]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # recent, as in ingest_bench.py
    newest = RawSample.objects.aggregate(newest=Max("ts"))["newest"]
    if newest is not None and newest >= start:
        start = newest + timedelta(seconds=1)
    bodies, sample_lists = [], []
    for g in range(args.batches + 1):
        first = g * args.batch_size % len(sender.serials)
        chosen = [sender.serials[(first + k) % len(sender.serials)] for k in range(args.batch_size)]
        samples = make_samples(chosen, start + timedelta(seconds=g), g)
        sample_lists.append(samples)
        bodies.append(gzip.compress(orjson.dumps({"samples": samples}), 6))

    # Stages apart (thread CPU, the mean per batch): gunzip + parse, validation.
    import zlib

    def cpu_of(fn, items) -> float:
        gc.disable()
        started = time.thread_time()
        for item in items:
            fn(item)
        gc.enable()
        return (time.thread_time() - started) / len(items) * 1000

    miners = miner_map(sender.site_id)
    now = timezone.now()
    print(f"gunzip + orjson: {cpu_of(lambda b: orjson.loads(zlib.decompress(b, 16 + 15)), bodies):.2f} ms/batch")
    print(f"validation:      {cpu_of(lambda s: validate_samples(s, miners, now), sample_lists):.2f} ms/batch")

    client = Client(HTTP_HOST="localhost")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {sender.token}", "HTTP_CONTENT_ENCODING": "gzip"}

    def post(body):
        response = client.post("/api/edge/v1/telemetry/ingest", body, content_type="application/json", **headers)
        assert response.status_code == 200, response.content[:300]
        return response

    post(bodies[0])  # warm-up: staging tables, maps, imports
    cpu, timings = [], []
    profiler = None
    for body in bodies[1 : len(bodies) // 2]:
        started = time.thread_time()
        response = post(body)
        cpu.append((time.thread_time() - started) * 1000)
        timings.append(response["Server-Timing"])
    if args.pyinstrument:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0002)
        with sampler:
            for body in bodies[len(bodies) // 2 :]:
                post(body)
        print(sampler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total"))
    elif not args.no_profile:
        # Deterministic, on the thread's CPU clock: waits on the database count nothing (a wall-clock
        # sampler on a shared box mostly shows them).
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        for body in bodies[len(bodies) // 2 :]:
            post(body)
        profiler.disable()
    print(f"whole request (test client, full middleware), thread CPU: median {statistics.median(cpu):.1f} ms, "
          f"mean {statistics.fmean(cpu):.1f} ms over {len(cpu)} batches")  # fmt: skip
    print(f"last Server-Timing: {timings[-1]}")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
