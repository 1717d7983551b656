"""The portal's live list page (``/sites/<slug>/telemetry/live/``: keyset pages through
``telemetry_selectors.live_page``, no COUNT) on PostgreSQL with one 100,000-miner site: p50/p95 at the
first page, the middle page (as Next reaches it), the page before it (as Previous reaches it) and the last
page, for the default sort and each sortable column in both directions, as the owner (whole site) and as a
hosting client (5,000 of the miners). Each figure is the whole request (session auth, middleware, template).

    .venv/bin/python bench/telemetry_live_page_bench.py [--miners 100000] [--runs 30] [--keep] [--sorts ,hashrate]

Uses its own database (h13_bench, or DATABASE_URL), dropped at the end unless --keep (a kept database is
reused: the seed is skipped); the data are those of bench/telemetry_query_bench.py (same seed). Target of
the issue: a live list page p95 < 100 ms at any depth.

Before (offset pages + COUNT, 2026-11-26, 10 runs): owner p95 first page 40–48 ms for serial, hashrate,
temperature and last_seen ascending, 146–230 ms for status, zone, power and every descending sort; middle
and last pages 184–287 ms for every sort. Client p95 90–186 ms at any depth.

After (keyset, 2026-11-26, 2-core VM, PostgreSQL 15, 15 runs): owner p50 28–41 ms, p95 33–54 ms for every
sort, both directions, at every depth (single outliers to 77–93 ms in a run); client p50 42–72 ms, p95
45–97 ms (the slowest: -hashrate first page, 84/89 ms — the seed gives this client the lowest model, so a
descending hashrate walk passes 60,000 other rows first). Zone and power are no longer sortable (no index).
"""

from __future__ import annotations

import argparse
import os
import time
from urllib.parse import urlencode

from _setup import machine
from telemetry_query_bench import drop, fmt, seed, setup

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h13_bench"
SORTS = ("", "status", "hashrate", "temperature", "last_seen")


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


def cursors(user, site_id: int, sort: str, n: int, page_size: int) -> dict[str, str | None]:
    """The cursors of the pages measured: the middle page (as Next reaches it), the page before it (as
    Previous reaches it) and the last page; taken from the rows at those depths (read once, by offset)."""
    from telemetry import telemetry_selectors as sel

    key, desc = sel.parse_sort(sort or None)
    ordered = sel.live_ordered(sel.live_rows(user=user, site_id=site_id), sort=sort or None)
    rows = ordered.values(*sel.LIVE_FIELDS)
    middle = max(1, (n // page_size) // 2) * page_size
    last = max(1, -(-n // page_size) - 1) * page_size
    return {
        "first": None,
        "middle": sel._cursor_at(rows[middle - 1], key=key, desc=desc),
        "middle, back": sel._cursor_at(rows[middle], key=key, desc=desc, back=True),
        "last": sel._cursor_at(rows[last - 1], key=key, desc=desc),
    }


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
        print(f"\n== as {who} ({n:,} miners, pages of {PAGE_SIZE})")
        for key in sorts:
            for sort in (key,) if not key else (key, f"-{key}"):
                for label, cursor in cursors(user, site.pk, sort, n, PAGE_SIZE).items():
                    params = {"sort": sort} if sort else {}
                    if cursor:
                        params["cursor"] = cursor
                    page_url = f"{base}?{urlencode(params)}"
                    body = client.get(page_url).content.decode()
                    rows = body.count('data-testid="live-row"')
                    assert rows == PAGE_SIZE or (label == "last" and rows > 0), (sort, label, rows)
                    assert 'data-testid="table-problem"' not in body, (sort, label)
                    print(f"sort={sort or '(default)':<13} {label:<12} {fmt(timed(client, page_url, args.runs))}")


if __name__ == "__main__":
    main()
