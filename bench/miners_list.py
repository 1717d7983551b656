"""GET /api/v1/miners?limit=100 with 100,000 miners on PostgreSQL, as a site owner granted one of
three sites and as a hosting client: p50/p95 latency and SQL queries per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hashinsight_bench .venv/bin/python bench/miners_list.py

Runs in-process through Django's test client (full middleware, auth, DRF, serialisation; no socket),
authenticating with a real API token so each request pays for token lookup like an integration does.
"""

from __future__ import annotations

import argparse
import time

from _setup import django_setup, machine, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    django_setup(args.miners)

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from hashinsight.accounts.models import User
    from hashinsight.accounts.services import api_token_create
    from miners.models import Miner
    from sites.selectors import granted_customer_ids, granted_site_ids

    settings.ALLOWED_HOSTS = ["testserver"]
    print(f"machine: {machine()}")
    print(f"database: {connection.vendor}, miners: {Miner.objects.count():,}")
    for username, label in (("siteowner", "site owner, 1 of 3 sites"), ("client", "hosting client")):
        user = User.objects.get(username=username)
        visible = Miner.objects.filter(site_id__in=granted_site_ids(user)) if username == "siteowner" else (
            Miner.objects.filter(customer_id__in=granted_customer_ids(user))
        )  # fmt: skip
        _, token = api_token_create(user=user, name="bench")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        for offset in (0, 5000):
            url = f"/api/v1/miners?limit=100&offset={offset}"
            for _ in range(10):  # warm connections and caches
                client.get(url)
            timings = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.content[:200]
            with CaptureQueriesContext(connection) as queries:
                body = client.get(url).json()
            print(
                f"{label:26} offset={offset:<5} visible={visible.count():>6,} rows={len(body['results'])} "
                f"queries={len(queries)}  {summary(timings)}"
            )


if __name__ == "__main__":
    main()
