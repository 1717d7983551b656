"""Bulk import of 10,000 miners (CSV, with IP, MAC and credentials sealed per row) on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hashinsight_bench .venv/bin/python bench/bulk_import.py

Each run imports fresh serials through POST /api/v1/miners/bulk as the owner, then deletes them again.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from _setup import django_setup, machine


def csv_body(rows: int, tag: str) -> bytes:
    lines = ["serial,model,site,zone,customer,rack,shelf,slot,status,ip,mac,username,password"]
    for i in range(rows):
        lines.append(
            f"B{tag}{i:05d},antminer-s21-200t,no-kvaloya,Hall 1,aurora-digital,BX{tag[:4]}-{i // 200},"
            f"{i // 10 % 20},{i % 10},active,10.9.{i // 250}.{i % 250},02:00:00:{i >> 16 & 255:02X}:"
            f"{i >> 8 & 255:02X}:{i & 255:02X},root,pw-{i}"
        )
    return ("\n".join(lines) + "\n").encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000, help="fleet size to seed first")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    django_setup(args.miners)

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from hashinsight.accounts.models import User
    from miners.models import Miner

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    client.force_login(User.objects.get(username="owner"))
    print(f"machine: {machine()}")
    print(f"database: {connection.vendor}, existing miners: {Miner.objects.count():,}")
    timings = []
    for _ in range(args.runs):
        tag = uuid.uuid4().hex[:8]
        body = csv_body(args.rows, tag)
        start = time.perf_counter()
        response = client.generic("POST", "/api/v1/miners/bulk", body, content_type="text/csv")
        timings.append(time.perf_counter() - start)
        assert response.status_code == 201, response.content[:500]
        Miner.objects.filter(serial__startswith=f"B{tag}").delete()
    print(f"bulk import of {args.rows:,} rows: median {statistics.median(timings):.2f} s, "
          f"min {min(timings):.2f} s, max {max(timings):.2f} s (runs={args.runs})")  # fmt: skip


if __name__ == "__main__":
    main()
