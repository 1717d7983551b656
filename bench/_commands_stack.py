"""The production stack on loopback for the command benchmarks (bench/commands_roundtrip.py,
bench/commands_concurrency.py): a fresh PostgreSQL database seeded with the demo farm, uvicorn (2 workers),
the Celery workers and beat of the Procfile, the miner simulator (bench/_sim_recorder.py: the simulator plus
a record of every write it carries out) and one edge collector per demo site, all real processes.

The edge side is prepared by the embedded mode's own code (hashinsight.demo.edge_demo.prepare: an enrolled
device per site, credentials, the collector's site.toml with the given poll interval, the simulator's
inventory), with an empty fault plan so no miner goes away on its own during a run. Every process runs in a
process group of its own and is stopped by its id (SIGTERM, then SIGKILL after 15 s)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from _setup import ROOT, ensure_database

REDIS_BROKER = "redis://127.0.0.1:6379/8"  # the bench helper's Redis database (cache and channel layer below)
REDIS_CACHE = "redis://127.0.0.1:6379/13"
REDIS_CHANNELS = "redis://127.0.0.1:6379/14"
QUEUES = ("default", "telemetry", "housekeeping", "intelligence")
WORK = ROOT / "var" / "bench" / "commands"
STOP_GRACE_S = 15


def stack_env(database_url: str) -> dict:
    """Production settings for every process of the stack (one SECRET_KEY and field key: the devices'
    HMAC secrets are sealed by the bench process and unsealed by the server)."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HASHINSIGHT_", "METRICS_"))}
    return env | {
        "HASHINSIGHT_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "hashinsight.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_BROKER,
        "CACHE_URL": REDIS_CACHE,
        "CHANNEL_LAYER_URL": REDIS_CHANNELS,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TRUSTED_PROXY_COUNT": "0",
        "SECURE_SSL_REDIRECT": "false",
        "METRICS_PUBLIC": "true",
        "STATIC_ROOT": str(WORK / "static"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "DEMO_EDGE": "false",
    }


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clear_queues() -> None:
    """Tasks an earlier run left on the bench's broker (only its own queue keys)."""
    import redis

    client = redis.Redis.from_url(REDIS_BROKER)
    client.delete(*QUEUES, "unacked", "unacked_index")
    for url in (REDIS_CACHE, REDIS_CHANNELS):
        redis.Redis.from_url(url).flushdb()


def setup(env: dict, miners: int) -> None:
    """A fresh database: migrate, seed ``miners`` demo miners, every miner active (the simulator then serves
    each one; offline or retired seed miners would only fail their commands), ANALYZE."""
    os.environ.update(env)
    url = env["DATABASE_URL"]
    drop_database(url)
    ensure_database(url)
    clear_queues()
    sys.path.insert(0, str(ROOT))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT, env=env)
    subprocess.run([*manage, "sync_schedules"], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*manage, "seed_demo", "--miners", str(miners), "--no-identity"],
        check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    import django

    django.setup()
    from django.db import connection

    from miners.models import Miner
    from telemetry.models import Alert

    Miner.objects.update(status=Miner.Status.ACTIVE)
    Alert.objects.all().delete()  # the seed's demo alerts (a safety alert would refuse some commands)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ports_free(first: int, count: int) -> bool:
    for port in range(first, first + count):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the simulator binds (TIME_WAIT is fine)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{proc.args[:4]} did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
            time.sleep(0.2)


@dataclass
class Stack:
    env: dict
    sites: list[str]  # demo site slugs given a collector
    poll_interval_s: float = 5.0
    base_port: int = 24028
    web_workers: int = 2
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    port: int = 0
    plan: object = None
    record: Path = WORK / "simulator-writes.jsonl"

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = WORK / f"{name}.log"
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes[name] = proc
        return proc

    def start(self) -> None:
        from hashinsight.demo import edge_demo

        WORK.mkdir(parents=True, exist_ok=True)
        edge_dir = WORK / "edge"
        shutil.rmtree(edge_dir, ignore_errors=True)
        self.record.unlink(missing_ok=True)
        self.port = free_port()
        py = sys.executable
        web = self._start("uvicorn", [
            py, "-m", "uvicorn", "hashinsight.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.web_workers), "--lifespan", "off", "--no-access-log", "--log-level", "warning",
        ])  # fmt: skip
        # The Procfile's worker, housekeeping worker and beat (not the intelligence worker: forecasts and
        # recalculations are not on a command's path; their queue is cleared at the end).
        celery = [py, "-m", "celery", "-A", "hashinsight"]
        self._start("worker", [*celery, "worker", "-Q", "default,telemetry", "-n", "bench-events@%h",
                               "--pool", "threads", "--concurrency", "8", "-l", "WARNING"])  # fmt: skip
        self._start("housekeeping", [py, "-m", "celery", "-A", "hashinsight", "worker", "-Q", "housekeeping", "-n",
                                     "bench-housekeeping@%h", "--pool", "threads", "--concurrency", "2",
                                     "-l", "WARNING"])  # fmt: skip
        self._start("beat", [py, "-m", "celery", "-A", "hashinsight", "beat", "-l", "WARNING", "--scheduler",
                             "django_celery_beat.schedulers:DatabaseScheduler",
                             "--schedule", str(WORK / "beat-schedule")])  # fmt: skip
        wait_port(self.port, web, WORK / "uvicorn.log")

        empty = WORK / "no-faults.json"
        empty.write_text('{"faults": []}')
        plan = edge_demo.prepare(
            server_url=f"http://127.0.0.1:{self.port}", base_port=self.base_port,
            poll_interval_s=self.poll_interval_s, fault_plan=empty, var_dir=WORK,
        )  # fmt: skip
        self.plan = plan
        if not ports_free(plan.control_port, plan.miners + 1):
            raise SystemExit(f"ports {plan.control_port}–{plan.base_port + plan.miners} are taken: pass --base-port")
        sim_cmd = plan.simulator_command()
        sim_cmd[1:3] = [str(ROOT / "bench" / "_sim_recorder.py"), "--record", str(self.record)]
        sim = self._start("simulator", sim_cmd)
        wait_port(plan.base_port + plan.miners - 1, sim, WORK / "simulator.log")
        for site in plan.sites:
            if site.slug in self.sites:
                self._start(f"collector-{site.slug}", plan.collector_command(site))

    def site_plan(self, slug: str):
        return next(s for s in self.plan.sites if s.slug == slug)

    def wait_edge_ready(self, timeout: float = 120) -> float:
        """Until every miner of the collectors' sites has a live row written after the start (the collectors
        polled and pushed once, so their inventory is loaded and their command loops are polling)."""
        from django.db import connection
        from django.utils import timezone

        from miners.models import Miner
        from telemetry.models import LiveStatus

        started, since = time.time(), timezone.now()
        wanted = Miner.objects.filter(site__slug__in=self.sites).count()
        try:
            while time.time() - started < timeout:
                seen = LiveStatus.objects.filter(miner__site__slug__in=self.sites, last_seen__gte=since).count()
                if seen >= wanted:
                    time.sleep(1.0)  # the command loops start their first long poll
                    return time.time() - started
                for name, proc in self.processes.items():
                    if proc.poll() is not None:
                        log = (WORK / f"{name}.log").read_text(errors="replace")[-3000:]
                        raise SystemExit(f"{name} stopped:\n{log}")
                time.sleep(0.5)
        finally:
            connection.close()
        raise SystemExit(f"the collectors did not report every miner within {timeout:.0f} s (see {WORK}/*.log)")

    def stop(self) -> None:
        # Collectors first (they would otherwise retry a server going away), the server last.
        order = sorted(self.processes, key=lambda n: (not n.startswith("collector"), n == "uvicorn"))
        for name in order:
            proc = self.processes[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_S
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            clear_queues()

    def writes(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]


def make_tokens(*usernames: str) -> list[str]:
    from django.db import connection

    from hashinsight.accounts.models import User
    from hashinsight.accounts.services import api_token_create

    try:
        return [api_token_create(user=User.objects.get(username=u), name=f"bench {u}")[1] for u in usernames]
    finally:
        connection.close()


class Api:
    """A keep-alive JSON client for one thread."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.last_retry_after: str | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                self.last_retry_after = response.getheader("Retry-After")
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(raw) if raw else {}
        except ValueError:
            return response.status, {"raw": raw[:300].decode(errors="replace")}

    def close(self) -> None:
        self.conn.close()


def proc_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_line() -> str:
    from _setup import machine

    mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    gib = int(mem.split()[1]) / 1024 / 1024
    load = os.getloadavg()
    return f"{machine()} · {gib:.0f} GiB RAM · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
