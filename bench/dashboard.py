"""GET / (the portal dashboard) with 100,000 miners on PostgreSQL and the Redis cache, as the owner
(every site), a site owner (1 of 3 sites) and a hosting client: p50/p95 cached and cold, and SQL
queries per request. Also the site page, for information.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hashinsight_bench REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/dashboard.py

Runs in-process through Django's test client (full middleware, session auth, template rendering; no
socket). "Cached" is a warm cache (every summary the page needs is fresh). "Cold" clears the cache
before every request, so each one builds its summaries from the database (grouped by model in SQL)
and stores them. Without REDIS_URL the in-process cache is used and the figures say so.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from _setup import django_setup, machine, summary


def count_queries(seen: list, execute, sql, params, many, context):
    seen.append(sql)
    return execute(sql, params, many, context)


def timed(client, url: str, runs: int, before=None) -> tuple[list[float], set[str]]:
    timings, states = [], set()
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content[:300]
        states.add(response.get("X-Cache", "-"))
    return timings, states


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold", type=int, default=40)
    args = parser.parse_args()
    django_setup(args.miners)

    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from hashinsight.accounts.models import User
    from miners.models import Miner
    from sites.models import Site

    settings.ALLOWED_HOSTS = ["testserver"]
    print(f"machine: {machine()}")
    print(f"database: {connection.vendor}, cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    print(f"miners: {Miner.objects.count():,} on {Site.objects.count()} sites")
    site_slug = Site.objects.order_by("pk").values_list("slug", flat=True).first()
    cases = [
        ("owner", "/", "owner, dashboard, all sites"),
        ("siteowner", "/", "site owner, dashboard, 1 site"),
        ("client", "/", "hosting client, dashboard"),
        ("owner", f"/sites/{site_slug}/", "owner, site page"),
    ]
    for username, url, label in cases:
        client = Client()
        client.force_login(User.objects.get(username=username))
        for _ in range(5):  # warm connections, templates and the cache
            client.get(url)
        warm, warm_states = timed(client, url, args.requests)
        queries = []
        with connection.execute_wrapper(partial(count_queries, queries)):
            client.get(url)
        cold, cold_states = timed(client, url, args.cold, before=cache.clear)
        print(f"{label:32} cached: {summary(warm)} X-Cache={','.join(sorted(warm_states))} queries={len(queries)}")
        print(f"{'':32} cold:   {summary(cold)} X-Cache={','.join(sorted(cold_states))}")


if __name__ == "__main__":
    main()
