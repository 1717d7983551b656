"""The portal's live list page (``/sites/<slug>/telemetry/live/``, ``ListPage`` with offset
pagination and a COUNT) on PostgreSQL with one 100,000-miner site: p50/p95 at the first, middle and last
page, for the default sort and each sortable column in both directions, as the owner (whole site) and as a
hosting client (5,000 of the miners). Each figure is the whole request (session auth, middleware, template).

    .venv/bin/python bench/telemetry_live_page_bench.py [--miners 100000] [--runs 30] [--keep]

Uses its own database (h12_bench, or DATABASE_URL), dropped at the end unless --keep; the data are those
of bench/telemetry_query_bench.py (same seed). Target of the issue: a live list page p95 < 100 ms at any
depth.

Measured 2026-11-26 (2-core VM, PostgreSQL 15, 15 runs), owner p95: first page 48–78 ms for serial,
hashrate, temperature and last_seen ascending, 151 ms status, 233–357 ms for zone, power and every
descending sort (no usable index: zone and power have none, and DESC NULLS LAST cannot use the ascending
live_q_* indexes); middle and last pages 240–610 ms for every sort (OFFSET over a sort of all 100,000 full
rows, which spills to disk). Client (5,000 miners) p95 90–186 ms at any depth: ~40 ms of it is the zone
choices (zone_list's EXISTS) and the COUNT through the miners join.
"""

from __future__ import annotations

import argparse
import os
import re
import time

from _setup import machine
from telemetry_query_bench import drop, fmt, seed, setup

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h12_bench"
SORTS = ("", "zone", "status", "hashrate", "temperature", "power", "last_seen")


def timed(client, url: str, runs: int) -> list[float]:
    response = client.get(url)  # warm-up (connection, plans)
    assert response.status_code == 200, (url, response.status_code)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database for another run")
    parser.add_argument("--sorts", default=",".join(SORTS), help="comma-separated sort keys ('' = default)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith("postgres"):
        raise SystemExit("needs PostgreSQL (DATABASE_URL=postgres://…)")
    setup(url)
    try:
        run(args)
    finally:
        if not args.keep:
            drop(url)


def run(args):
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from hashinsight.portal.tables import PAGE_SIZE

    settings.ALLOWED_HOSTS = ["testserver"]
    site, owner, client_user, customer = seed(args.miners)
    print(f"machine: {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(f"database: {cursor.fetchone()[0].split(',')[0]}")
    base = f"/sites/{site.slug}/telemetry/live/"
    sorts = args.sorts.split(",")
    for who, user, n in (
        ("owner", owner, args.miners),
        ("client", client_user, site.miners.filter(customer=customer).count()),
    ):
        client = Client()
        client.force_login(user)
        last = max(1, -(-n // PAGE_SIZE))
        print(f"\n== as {who} ({n:,} miners, {last:,} pages of {PAGE_SIZE})")
        for key in sorts:
            for sort in (key,) if not key else (key, f"-{key}"):
                for label, page in (("first", 1), ("middle", last // 2 or 1), ("last", last)):
                    query = "&".join(p for p in (f"sort={sort}" if sort else "", f"page={page}") if p)
                    page_url = f"{base}?{query}"
                    body = client.get(page_url).content.decode()
                    rows = len(re.findall(r"<tr[ >]", body)) - 1  # minus the header row
                    assert rows > 0, (sort, label, rows)
                    print(f"sort={sort or '(default)':<13} {label:<6} {fmt(timed(client, page_url, args.runs))}")


if __name__ == "__main__":
    main()
