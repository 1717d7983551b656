"""The telemetry query API on PostgreSQL with one 100,000-miner site: p50/p95 of the site dashboard
summary (``/api/v1/telemetry/sites/{id}/summary``) and of the live list
(``/api/v1/telemetry/sites/{id}/live``) at the first, middle and last keyset page, for several sorts,
as the owner (whole site) and as a hosting client (5,000 of the miners).

    .venv/bin/python bench/telemetry_query_bench.py [--miners 100000] [--runs 60] [--keep]

Uses its own database (h7_bench, or DATABASE_URL), dropped at the end unless --keep. Requests go
in-process through Django's test client (full middleware, session authentication, DRF rendering; no
socket). The middle and last cursors are the ones the API itself would hand out at that depth (built
from the row before the page, as ``next_cursor`` is). Figures of the issue: summary p95 < 150 ms, live
list at any depth p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import urlparse

from _setup import ROOT, ensure_database, machine, percentile

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h7_bench"


def setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()


def seed(n_miners: int):
    from django.db import connection
    from django.utils import timezone

    from hashinsight.accounts.models import User
    from hashinsight.accounts.roles import Role
    from miners.models import Miner, MinerModel
    from sites.models import Customer, Site, Zone
    from sites.services import customer_add_contact
    from telemetry.models import Alert, LiveStatus

    site, _ = Site.objects.get_or_create(slug="h7-bench", defaults={"name": "H7 bench", "capacity_kw": 400_000})
    owner = User.objects.filter(username="h7_owner").first() or User.objects.create_user(
        "h7_owner", password="x-bench-1234", role=Role.OWNER
    )
    client_user = User.objects.filter(username="h7_client").first() or User.objects.create_user(
        "h7_client", password="x-bench-1234", role=Role.CLIENT
    )
    if LiveStatus.objects.filter(site_id=site.pk).count() >= n_miners:
        customer = Customer.objects.get(slug="h7-client-0")
        return site, owner, client_user, customer
    zones = [
        Zone.objects.get_or_create(site=site, name=f"Hall {i}", defaults={"capacity_kw": 40_000})[0] for i in range(10)
    ]
    models = [
        MinerModel.objects.get_or_create(code=f"h7-model-{ths}", defaults={
            "vendor": "Bench", "name": f"B{ths}", "hashrate_ths": ths, "power_w": ths * 17})[0]
        for ths in (100, 140, 200, 270)
    ]  # fmt: skip
    customers = [
        Customer.objects.get_or_create(slug=f"h7-client-{i}", defaults={
            "company": f"Bench client {i}", "hosting_rate_usd_per_kwh": "0.06", "contract_start": "2025-01-01"})[0]
        for i in range(20)
    ]  # fmt: skip
    customer_add_contact(user=client_user, customer=customers[0])
    rng = random.Random(7)
    t0 = time.perf_counter()
    miners = Miner.objects.bulk_create(
        [
            Miner(site=site, zone=zones[i % 10], model=models[i % 4], customer=customers[i % 20],
                  serial=f"H7-{rng.getrandbits(40):010x}-{i:06d}")
            for i in range(n_miners)
        ],
        batch_size=5000,
    )  # fmt: skip
    now = timezone.now()
    statuses = ["hashing"] * 90 + ["idle"] * 3 + ["error"] * 2 + ["offline"] * 5
    rows = []
    for i, m in enumerate(miners):
        status = statuses[rng.randrange(100)]
        nominal = float(models[i % 4].hashrate_ths)
        hashing = status == "hashing"
        rows.append(LiveStatus(
            miner_id=m.pk, site_id=site.pk, customer_id=m.customer_id,
            last_seen=now - timedelta(seconds=rng.randrange(30) if rng.random() > 0.02 else 3600 + rng.randrange(9000)),
            hashrate_ghs=nominal * 1000 * rng.uniform(0.6, 1.05) if hashing else (None if rng.random() < 0.3 else 0.0),
            hashrate_ths_instant=nominal * rng.uniform(0.6, 1.05) if hashing else 0.0,
            temp_chip_max_c=rng.gauss(72, 8) if rng.random() > 0.01 else None,
            temp_inlet_c=rng.gauss(28, 3), temp_outlet_c=rng.gauss(48, 4), fan_rpm=[6000, 6100, 5900, 6050],
            power_w=nominal * 17 * rng.uniform(0.9, 1.05) if hashing else 90.0, status=status, updated_at=now,
        ))  # fmt: skip
    LiveStatus.objects.bulk_create(rows, batch_size=5000)
    Alert.objects.bulk_create(
        [
            Alert(site=site, miner_id=miners[i].pk, customer_id=miners[i].customer_id, alert_type="chip_temp_above",
                  severity=("warning", "critical", "info")[i % 3], message="hot", dedupe_key=f"h7-{i}",
                  first_seen=now, last_seen=now)
            for i in range(0, n_miners, 97)
        ]
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE telemetry_live")
        cursor.execute("ANALYZE miners_miner")
        cursor.execute("ANALYZE telemetry_alert")
    print(f"seeded {n_miners:,} miners with live rows in {time.perf_counter() - t0:.1f} s")
    return site, owner, client_user, customers[0]


def timed(client, url: str, runs: int, before=None, states: set | None = None) -> list[float]:
    client.get(url)  # warm-up (connection, plans)
    out = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        if states is not None:
            states.add(response.get("X-Cache", "-"))
    return out


def fmt(values: list[float]) -> str:
    return f"p50 {statistics.median(values):6.1f} ms   p95 {percentile(values, 95):6.1f} ms   (n={len(values)})"


def cursor_at(qs, sort: str, position: int) -> str | None:
    """The cursor the API hands out for the page starting at ``position`` (0-based)."""
    from telemetry import telemetry_selectors as sel

    if position == 0:
        return None
    key, desc = sel.parse_sort(sort)
    column = sel.LIVE_SORTS[key]
    row = sel.live_ordered(qs, sort=sort).values("miner_id", column)[position - 1]
    value = row[column]
    return sel._encode_cursor(
        {"k": key, "d": desc, "v": value.isoformat() if hasattr(value, "isoformat") else value,
         "i": row["miner_id"], "n": value is None}
    )  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database for another run")
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
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from telemetry.models import LiveStatus

    settings.ALLOWED_HOSTS = ["testserver"]
    site, owner, client_user, customer = seed(args.miners)
    print(f"machine: {machine()}")
    print(f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(f"database: {cursor.fetchone()[0].split(',')[0]}")
    live = LiveStatus.objects.filter(site_id=site.pk)
    total = live.count()
    own = live.filter(customer_id=customer.pk).count()
    print(f"site {site.slug}: {total:,} live rows; client {customer.slug}: {own:,}")
    print()
    for who, user, qs in (("owner", owner, live), ("client", client_user, live.filter(customer_id=customer.pk))):
        client = Client()
        client.force_login(user)
        n = qs.count()
        print(f"== as {who} ({n:,} miners visible)")
        summary_url = f"/api/v1/telemetry/sites/{site.pk}/summary"
        states = set()
        print(f"summary, cached (<= 10 s old)    {fmt(timed(client, summary_url, args.runs, states=states))} {states}")
        states = set()
        cold = timed(client, summary_url, max(10, args.runs // 2), before=cache.clear, states=states)
        print(f"summary, cold (built per request) {fmt(cold)} {states}")
        for sort in ("serial", "-temperature", "status", "hashrate", "last_seen"):
            # Annotated as the API does, so the cursor's ordering is exactly the API's.
            for label, position in (("first", 0), ("middle", (n // 2 // 50) * 50), ("last", max(0, n - 50))):
                cursor = cursor_at(qs, sort, position)
                query = f"sort={sort}&limit=50" + (f"&cursor={cursor}" if cursor else "")
                page_url = f"/api/v1/telemetry/sites/{site.pk}/live?{query}"
                body = client.get(page_url).json()
                assert len(body["results"]) == 50, (sort, label, len(body["results"]))
                print(f"live sort={sort:<13} {label:<6}    {fmt(timed(client, page_url, args.runs))}")
        filtered = f"/api/v1/telemetry/sites/{site.pk}/live?status=offline&sort=-temperature&limit=50"
        print(f"live status=offline -temperature {fmt(timed(client, filtered, args.runs))}")
        print()


def drop(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"dropped database {name}")


if __name__ == "__main__":
    main()
