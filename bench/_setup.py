"""Shared set-up for benchmarks: a dedicated PostgreSQL database, migrated and seeded."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hashinsight_bench"


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(miners: int) -> None:
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    if url.startswith("postgres"):
        ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo", "--miners", str(miners)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    import django

    django.setup()
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would give a live system


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def summary(values_ms: list[float]) -> str:
    return (
        f"p50 {statistics.median(values_ms):.1f} ms, p95 {percentile(values_ms, 95):.1f} ms, "
        f"max {max(values_ms):.1f} ms (n={len(values_ms)})"
    )


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"
