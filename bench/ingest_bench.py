"""Sustained telemetry ingest on PostgreSQL over HTTP through the production server, against
PostgreSQL's own COPY rate for the same rows, with the server's breakdown of where the time goes.

    .venv/bin/python bench/ingest_bench.py [--runs 5] [--batches 10] [--senders 4] [--batch-size 1000]
                                           [--workers 2] [--url http://host:port --token hie_…] [--in-process]
                                           [--no-gzip]

Starts ``uvicorn hashinsight.asgi:application --workers 2`` in production mode (its own PostgreSQL
database ``hashinsight_bench_ingest``, Redis databases 7–9), seeds 100,000 miners, enrolls a device per
site, then per run: ``--senders`` threads (spread over the sites, each with its own share of miners)
each push ``--batches`` gzip'd batches of ``--batch-size`` samples (one sample per miner, a new
timestamp per batch, going round the sender's miners) over keep-alive connections.
Bodies are built and compressed before the clock starts. Printed: samples/s per run and the median,
the COPY rate of the same rows into a copy of ``telemetry_raw`` (same columns and primary key; one
connection, then ``--senders`` in parallel), and the mean per-batch breakdown from the
``Server-Timing`` header (auth, parse, validate, write = raw COPY + INSERT, live = live upsert + event,
commit = COMMIT + outbox hand-off).

``--in-process`` skips HTTP: the same threads call validation and the store directly (what the
server does minus HTTP, auth and JSON), to separate the server's costs from the database's.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from _setup import ROOT, ensure_database, machine

DATABASE = "postgres://postgres@127.0.0.1:5432/hashinsight_bench_ingest"
# Broker (cache and channel layer at +1, +2 unless CACHE_URL / CHANNEL_LAYER_URL say otherwise; both pass
# through to the server); the queued hand-offs are dropped at the end. BENCH_REDIS_URL moves it.
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
PARTS = ("auth", "parse", "validate", "write", "live", "commit", "total", "cpu")


def server_env(database_url: str) -> dict:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HASHINSIGHT_", "METRICS_"))}
    return env | {
        "HASHINSIGHT_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TRUSTED_PROXY_COUNT": "0",
        "METRICS_PUBLIC": "true",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": str(Path(tempfile.gettempdir()) / "ingest_bench_static"),
        "LOG_LEVEL": "ERROR",
    }


def setup(database_url: str, miners: int) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ensure_database(database_url)
    sys.path.insert(0, str(ROOT))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "seed_demo", "--miners", str(miners), "--no-identity"],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    import django

    django.setup()


class Sender(NamedTuple):
    site_id: int
    device_id: int
    token: str
    serials: list[str]  # this sender's own miners; its batches go round them


def enroll_senders(count: int, token: str | None = None) -> list[Sender]:
    """``count`` senders spread over the sites with the most miners, one device per site, each sender
    with its own share of its site's miners (so no two senders write the same miner). With ``token``,
    all senders use that device and its site."""
    from django.db.models import Count

    from hashinsight.accounts.models import hash_secret
    from miners.models import Miner
    from sites.models import Site
    from telemetry.edge_auth import parse_device_token
    from telemetry.models import EdgeDevice

    if token:
        device = EdgeDevice.objects.get(token_prefix=parse_device_token(token)[0])
        devices = [(device, token)]
    else:
        devices = []
        for site in Site.objects.annotate(n=Count("miners")).filter(n__gt=0).order_by("-n")[:count]:
            prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            device = EdgeDevice.objects.create(
                site=site, name=f"bench {prefix}", token_prefix=prefix, token_hash=hash_secret(secret),
                secret_sealed="-",
            )  # fmt: skip
            devices.append((device, f"hie_{prefix}_{secret}"))
    senders = []
    for index, (device, device_token) in enumerate(devices):
        serials = list(Miner.objects.filter(site_id=device.site_id).order_by("pk").values_list("serial", flat=True))
        sharing = [k for k in range(count) if k % len(devices) == index]
        for position, _ in enumerate(sharing):
            senders.append(Sender(device.site_id, device.pk, device_token, serials[position :: len(sharing)]))
    return senders


def make_samples(serials: list[str], ts: datetime, rng_seed: int) -> list[dict]:
    import random

    rng = random.Random(rng_seed)
    stamp = ts.isoformat().replace("+00:00", "Z")
    return [
        {
            "miner": serial, "ts": stamp, "hashrate_ths": round(rng.gauss(110, 3), 2),
            "temp_chip_max_c": round(rng.gauss(72, 4), 1), "temp_inlet_c": round(rng.gauss(25, 2), 1),
            "temp_outlet_c": round(rng.gauss(45, 3), 1), "fan_rpm": [rng.randint(5800, 6200) for _ in range(4)],
            "power_w": round(rng.gauss(3250, 40)), "status": "hashing", "accepted_shares": rng.randint(0, 10**6),
            "rejected_shares": rng.randint(0, 100), "errors": [],
        }
        for serial in serials
    ]  # fmt: skip


def plan(senders: list[Sender], batch_size: int, batches: int, runs: int, start: datetime):
    """runs × senders × batches sample lists. A sender's batch g (counted over all runs) holds the next
    ``batch_size`` of its miners, at ``start + g`` seconds: with enough miners (the default 100,000), a
    miner gets about one sample per run, as a fleet reporting once a minute would, instead of the same
    few thousand rows being rewritten every batch."""
    for sender in senders:
        if len(sender.serials) < batch_size:
            raise SystemExit(f"a sender has {len(sender.serials)} miners; {batch_size} needed")
    out = []
    for run in range(runs):
        per_sender = []
        for k, sender in enumerate(senders):
            mine, count = sender.serials, len(sender.serials)
            batches_of_sender = []
            for b in range(batches):
                g = run * batches + b
                first = g * batch_size % count
                chosen = [mine[(first + i) % count] for i in range(batch_size)]
                batches_of_sender.append(make_samples(chosen, start + timedelta(seconds=g), run * 1000 + k * 10 + b))
            per_sender.append(batches_of_sender)
        out.append(per_sender)
    return out


# ---------------------------------------------------------------------------------------------------
# HTTP


def start_server(env: dict, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"server did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
            time.sleep(0.2)


def parse_server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def http_run(host: str, port: int, tokens: list[str], bodies_per_sender: list[list[bytes]], gzipped: bool):
    """Each sender thread posts its bodies in order on one keep-alive connection; returns
    (wall seconds, samples accepted, [server timings], [client latency ms])."""
    results: list = []
    errors: list = []
    barrier = threading.Barrier(len(bodies_per_sender) + 1)
    base_headers = {"Content-Type": "application/json"}
    if gzipped:
        base_headers["Content-Encoding"] = "gzip"

    def sender(bodies, token):
        headers = {**base_headers, "Authorization": f"Bearer {token}"}
        conn = http.client.HTTPConnection(host, port, timeout=120)
        conn.connect()
        barrier.wait()
        for body in bodies:
            started = time.perf_counter()
            conn.request("POST", "/api/edge/v1/telemetry/ingest", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            latency = (time.perf_counter() - started) * 1000
            if response.status != 200:
                errors.append((response.status, data[:300]))
                continue
            import json

            answer = json.loads(data)
            results.append((answer["accepted"], answer["duplicates"], len(answer["rejected"]),
                            parse_server_timing(response.getheader("Server-Timing", "")), latency))  # fmt: skip
        conn.close()

    threads = [
        threading.Thread(target=sender, args=(bodies, token))
        for bodies, token in zip(bodies_per_sender, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    rejected = sum(r[2] for r in results)
    duplicates = sum(r[1] for r in results)
    if rejected or duplicates:
        print(f"  warning: {rejected} rejected, {duplicates} duplicates")
    return wall, sum(r[0] for r in results), [r[3] for r in results], [r[4] for r in results]


def in_process_run(senders: list[Sender], samples_per_sender: list[list[list[dict]]]):
    """The server's work minus HTTP, auth and JSON parsing, in threads with one connection each."""
    from django.db import connection
    from django.utils import timezone

    from telemetry.ingest import validate_samples
    from telemetry.ingest_store import miner_map, store_batch

    results: list = []
    barrier = threading.Barrier(len(samples_per_sender) + 1)

    def sender(batches, site_id, device_id):
        barrier.wait()
        try:
            for samples in batches:
                timings: dict = {}
                started = time.perf_counter()
                validated = validate_samples(samples, miner_map(site_id), timezone.now())
                timings["validate"] = time.perf_counter() - started
                result = store_batch(site_id=site_id, device_id=device_id, validated=validated, timings=timings)
                timings["total"] = time.perf_counter() - started
                results.append((result.inserted, {k: v * 1000 for k, v in timings.items()}))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sender, args=(b, who.site_id, who.device_id))
        for b, who in zip(samples_per_sender, senders, strict=True)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return wall, sum(r[0] for r in results), [r[1] for r in results], [r[1]["total"] for r in results]


# ---------------------------------------------------------------------------------------------------
# PostgreSQL's own COPY rate for the same rows


def copy_text(samples: list[dict], miner_ids: dict[str, int], site_id: int) -> bytes:
    import json

    lines = []
    for s in samples:
        lines.append("\t".join((
            str(miner_ids[s["miner"]]), s["ts"], str(site_id), "\\N", str(s["hashrate_ths"]), str(s["temp_chip_max_c"]),
            str(s["temp_inlet_c"]), str(s["temp_outlet_c"]), json.dumps(s["fan_rpm"]), str(s["power_w"]), s["status"],
            str(s["accepted_shares"]), str(s["rejected_shares"]), json.dumps(s["errors"]),
        )))  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


COPY_COLUMNS = (
    "miner_id, ts, site_id, device_id, hashrate_ths, temp_chip_max_c, temp_inlet_c, temp_outlet_c, fan_rpm, power_w, "
    "status, accepted_shares, rejected_shares, errors"
)


def copy_rate(database_url: str, chunks: list[bytes], rows: int, parallel: int) -> float:
    """Rows/s of COPY (text format, prebuilt) into a fresh copy of telemetry_raw with its primary key."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_raw")
        conn.execute("CREATE TABLE bench_copy_raw (LIKE telemetry_raw INCLUDING DEFAULTS)")
        conn.execute("ALTER TABLE bench_copy_raw ADD PRIMARY KEY (miner_id, ts)")
    groups = [chunks[i::parallel] for i in range(parallel)]
    barrier = threading.Barrier(parallel + 1)

    def load(mine):
        with psycopg.connect(database_url) as conn:
            barrier.wait()
            for chunk in mine:
                with conn.cursor().copy(f"COPY bench_copy_raw ({COPY_COLUMNS}) FROM STDIN") as copy:
                    copy.write(chunk)
                conn.commit()

    threads = [threading.Thread(target=load, args=(g,)) for g in groups]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_copy_raw")
    return rows / elapsed


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_watch(database_url: str, server_pid: int | None) -> dict[str, list[int]]:
    """The processes whose CPU time a run is charged: the server's workers, the database's backends
    (this database's sessions, plus the WAL writer) and this process (senders, or everything in-process)."""
    import psycopg

    workers = [] if server_pid is None else [server_pid]  # with one worker, uvicorn serves in-process
    if server_pid is not None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                if f"\nPPid:\t{server_pid}\n" in status:
                    workers.append(int(entry.name))
    with psycopg.connect(database_url, autocommit=True) as conn:
        backends = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid()) "
            "OR backend_type = 'walwriter'"
        )]  # fmt: skip
    # In-process, the sender threads open their connections during the run (and close them after it):
    # their backends are not known beforehand, so PostgreSQL's share is not measured there.
    watched = {"postgres": backends, "bench process": [os.getpid()]} if server_pid else {"bench process": [os.getpid()]}
    if server_pid is not None:
        watched = {"uvicorn workers": workers, **watched}
    return watched


def cpu_seconds(watched: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_proc_cpu(pid) for pid in pids) for name, pids in watched.items()}


def vacuum(database_url: str) -> float:
    """Every live row is rewritten by each run; without vacuum (autovacuum is off on the benchmark
    server) dead versions pile up and each run would be slower than the last."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) telemetry_live")
        conn.execute("VACUUM (ANALYZE) telemetry_raw")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------


def breakdown(timings: list[dict]) -> str:
    """Mean ms per batch for each part (means add up to the total; medians of skewed parts would not)."""
    lines = []
    total = statistics.fmean(t.get("total", 0) for t in timings) or 1
    for part in PARTS:
        values = [t[part] for t in timings if part in t]
        if values:
            mean = statistics.fmean(values)
            lines.append(
                f"    {part:9} {mean:7.1f} ms  ({mean / total:5.1%})   p50 {statistics.median(values):7.1f} ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10, help="batches per sender per run")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--miners", type=int, default=100_000, help="seeded miners (seed_demo; 100,000 at most)")
    parser.add_argument("--url", help="a running server on this database instead of starting one (needs --token)")
    parser.add_argument("--token", help="device token for --url (all senders then write that device's site)")
    parser.add_argument("--in-process", action="store_true", help="no HTTP: validation + store in threads")
    parser.add_argument("--no-gzip", action="store_true")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", DATABASE)
    setup(database_url, args.miners)
    from django.db import connection
    from django.db.models import Max

    from miners.models import Miner
    from telemetry.models import RawSample

    senders = enroll_senders(args.senders, args.token if args.url else None)
    miner_ids = dict(Miner.objects.values_list("serial", "id"))
    # Timestamps: 5 minutes back, or just after the newest sample an earlier invocation left, so every
    # run's samples are new (not duplicates) and within the accepted range. Recent, as a collector's are:
    # samples older than the windows the 5-minute rollup still re-rolls (~10 minutes) cost each batch a
    # query moving its cursor back (a spool replayed after an outage), which steady ingest never pays.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    newest = RawSample.objects.aggregate(newest=Max("ts"))["newest"]
    if newest is not None and newest >= start:
        start = newest + timedelta(seconds=1)
    connection.close()
    print(machine())
    mode = "in-process" if args.in_process else f"HTTP, uvicorn --workers {args.workers}"
    encoding = "plain JSON" if args.no_gzip else "gzip"
    print(f"ingest: {mode}, {args.senders} senders × {args.batches} batches × {args.batch_size} samples, "
          f"{encoding}, {args.runs} runs; {len({s.site_id for s in senders})} sites, "
          f"{sum(len(s.serials) for s in senders):,} miners")  # fmt: skip

    runs = plan(senders, args.batch_size, args.batches, args.runs + 1, start)  # + warm-up
    import orjson

    proc = None
    try:
        if not args.in_process:
            if args.url:
                parsed = urlparse(args.url)
                host, port = parsed.hostname, parsed.port or 80
            else:
                log = Path(tempfile.gettempdir()) / "ingest_bench_server.log"
                proc, port = start_server(server_env(database_url), args.workers, log)
                host = "127.0.0.1"
        rates, copy1, copyn, all_timings, latencies, cpu_runs = [], [], [], [], [], []
        vacuum_s = []
        for index, per_sender in enumerate(runs):
            total_samples = sum(len(b) for batches in per_sender for b in batches)
            vacuum_s.append(vacuum(database_url))
            if not args.in_process:
                bodies = [[orjson.dumps({"samples": b}) for b in batches] for batches in per_sender]
                if not args.no_gzip:
                    bodies = [[gzip.compress(body, 6) for body in sender] for sender in bodies]
            watched = cpu_watch(database_url, proc.pid if proc is not None else None)
            before = cpu_seconds(watched)
            if args.in_process:
                wall, accepted, timings, lat = in_process_run(senders, per_sender)
            else:
                tokens = [sender.token for sender in senders]
                wall, accepted, timings, lat = http_run(host, port, tokens, bodies, not args.no_gzip)
            after = cpu_seconds(watched)
            batch_count = sum(len(batches) for batches in per_sender)
            if accepted != total_samples:
                print(f"  warning: {accepted} of {total_samples} samples accepted")
            chunks = [
                copy_text(b, miner_ids, sender.site_id)
                for batches, sender in zip(per_sender, senders, strict=True)
                for b in batches
            ]
            one = copy_rate(database_url, chunks, total_samples, 1)
            many = copy_rate(database_url, chunks, total_samples, args.senders)
            label = "warm-up" if index == 0 else f"run {index}"
            print(f"{label:8} {total_samples / wall:9,.0f} samples/s ({wall:.2f} s)   COPY same rows: "
                  f"{one:9,.0f} rows/s on 1 connection, {many:9,.0f} on {args.senders}")  # fmt: skip
            if index:
                rates.append(total_samples / wall)
                copy1.append(one)
                copyn.append(many)
                all_timings.extend(timings)
                latencies.extend(lat)
                cpu_runs.append({k: (after[k] - before[k]) / batch_count * 1000 for k in before})
        rate, c1, cn = statistics.median(rates), statistics.median(copy1), statistics.median(copyn)
        print(f"median: {rate:,.0f} samples/s; COPY {c1:,.0f} rows/s (1 conn) → {rate / c1:.2f} × COPY; "
              f"{cn:,.0f} rows/s ({args.senders} conns) → {rate / cn:.2f} ×")  # fmt: skip
        vacuumed = statistics.median(vacuum_s[1:])
        print(f"VACUUM (ANALYZE) of live and raw before each run (untimed; autovacuum's work in production, "
              f"where every live row is rewritten once a minute): median {vacuumed:.2f} s")  # fmt: skip
        lat = sorted(latencies)
        print(f"per batch: client latency p50 {statistics.median(lat):.1f} ms, "
              f"p95 {lat[int(len(lat) * 0.95) - 1]:.1f} ms; server breakdown (mean per batch):")  # fmt: skip
        print(breakdown(all_timings))
        cpu = {k: statistics.median(run[k] for run in cpu_runs) for k in cpu_runs[0]}
        print("CPU per batch (median of runs): " + ", ".join(f"{k} {v:.1f} ms" for k, v in cpu.items())
              + f"; the machine has {os.cpu_count()} cores")  # fmt: skip
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            # No Celery worker runs here: drop the event hand-offs the server queued on the bench's broker.
            import redis

            redis.Redis.from_url(REDIS).delete("default")


if __name__ == "__main__":
    main()
