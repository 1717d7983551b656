"""Monthly invoicing on PostgreSQL: 100 hosting clients, 100,000 miners, a 31-day month of daily rows (3.1 M).

    .venv/bin/python bench/invoicing.py [--clients 100] [--miners-per-client 1000] [--runs 3] [--keep]

Uses its own database (h_invoicing_bench unless DATABASE_URL says otherwise), migrated from scratch, and drops it
at the end (``--keep`` keeps it). Set-up: one site, 100 clients with a contract each (a third all-in per kWh, a
third per kWh plus a fixed fee, a third revenue share), 1,000 miners each, 31 ``MarketDay`` rows, and the month's
``telemetry_daily`` rows loaded with COPY: 1 % of miner-days missing (not reported), 4 % with downtime.

Figure: ``invoicing.build_drafts(month)`` — the whole monthly job: for each contract the SLA classification (the
real one, ``hashinsight.billing.sla``), the statement rows (INSERT … SELECT), the lines, the totals and the outbox —
median of ``--runs`` runs, each on an empty statement table (the previous run's drafts truncated), then the median
of ``--runs`` rebuilds over existing drafts (what a re-run of the build does: the drafts' rows deleted and written
again) and the issue of one invoice (statement hash of 31,000 rows, audit, proof leaf).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h_invoicing_bench"
MONTH = date(2026, 10, 1)
DAYS = 31


def reset_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.path.lstrip("/")}"')


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()


def machine() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _setup import machine as describe

    return describe()


def build_fleet(clients: int, per_client: int, seed: int = 7) -> None:
    from django.db import connection

    from hashinsight.tests.factories import MinerModelFactory, SiteFactory, ZoneFactory
    from intelligence.models import MarketDay
    from miners.models import Miner
    from sites.models import Customer, HostingContract

    rng = random.Random(seed)
    site = SiteFactory(slug="bench-site", name="Bench site", capacity_kw=Decimal("400000"))
    zone = ZoneFactory(site=site, name="Bench hall", capacity_kw=Decimal("400000"))
    model = MinerModelFactory(code="bench-s21", name="Bench S21", hashrate_ths=Decimal("200"), power_w=Decimal("3500"))
    kinds = ["all_in_kwh", "kwh_plus_fixed", "revenue_share"]
    for c in range(clients):
        customer = Customer.objects.create(
            company=f"Bench client {c:03d}", slug=f"bench-client-{c:03d}", hosting_rate_usd_per_kwh=Decimal("0.06"),
            contract_start=date(2026, 1, 1),
        )  # fmt: skip
        HostingContract.objects.create(
            number=f"BENCH-{c:03d}", customer=customer, site=site, status="active", start_date=date(2026, 1, 1),
            tariff_kind=kinds[c % 3], rate_per_kwh=Decimal("0.06"), fixed_fee_per_miner_month=Decimal("12.50"),
            revenue_share_pct=Decimal("30"), deposit=Decimal("0"), curtailment_allowance_hours=Decimal("10"),
            curtailment_credit_kind="rate", curtailment_credit_per_miner_hour=Decimal("0.05"),
            sla_credit_schedule=[{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "95", "credit_pct": "10"}],
        )  # fmt: skip
        Miner.objects.bulk_create(
            [Miner(site=site, zone=zone, customer=customer, model=model, serial=f"BN{c:03d}{i:06d}")
             for i in range(per_client)],
            batch_size=5000,
        )  # fmt: skip
    for d in range(DAYS):
        MarketDay.objects.create(date=MONTH + timedelta(days=d), btc_price_usd=Decimal("95000") + d * 100,
                                 difficulty=Decimal("120000000000000"), fees_btc=Decimal("10"))  # fmt: skip
    rows = list(Miner.objects.values_list("pk", "customer_id").order_by("pk"))  # read before the COPY starts
    buffer = io.StringIO()
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.connection
        with (
            raw.cursor() as pg,
            pg.copy(
                "COPY telemetry_daily (miner_id, day, site_id, customer_id, sample_count, buckets_reported, "
                "avg_hashrate_ths, energy_kwh, uptime_pct, max_temp_chip_c, restarts, accepted_shares, "
                "rejected_shares) FROM STDIN"
            ) as copy,
        ):
            for miner_id, customer_id in rows:
                for d in range(DAYS):
                    r = rng.random()
                    if r < 0.01:
                        continue  # not reported
                    uptime = 100.0 if r > 0.05 else round(rng.uniform(0, 99.9), 3)
                    energy = round(84.0 * uptime / 100 * rng.uniform(0.97, 1.03), 3)
                    ths = round(200.0 * uptime / 100 * rng.uniform(0.95, 1.05), 3)
                    day = MONTH + timedelta(days=d)
                    buffer.write(f"{miner_id}\t{day}\t{site.pk}\t{customer_id}\t288\t288\t{ths}\t{energy}\t{uptime}"
                                 f"\t70.0\t0\t1000\t1\n")  # fmt: skip
                    count += 1
                if buffer.tell() > 8_000_000:
                    copy.write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
            copy.write(buffer.getvalue())
        cursor.execute("ANALYZE")
    print(f"set-up: {clients} clients, {clients * per_client:,} miners, {count:,} daily rows (COPY)")


def truncate_drafts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # TRUNCATE fires no row trigger; the drafts and their lines go with it (bench only).
        cursor.execute(
            "TRUNCATE billing_statementrow, billing_invoiceline, billing_invoice, events_outboxevent CASCADE"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--miners-per-client", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep (skip the set-up)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not args.reuse:
        reset_database(url)
    setup_django(url)
    try:
        start = time.perf_counter()
        if not args.reuse:
            build_fleet(args.clients, args.miners_per_client)
        print(f"set-up took {time.perf_counter() - start:.1f} s")
        from hashinsight.billing import invoicing, issuing
        from hashinsight.billing.models import Invoice, StatementRow

        def load() -> str:
            return " ".join(f"{x:.1f}" for x in os.getloadavg())

        times, loads = [], []
        for _ in range(args.runs):
            truncate_drafts()
            t0 = time.perf_counter()
            result = invoicing.build_drafts(MONTH)
            times.append(time.perf_counter() - t0)
            loads.append(load())
            print(f"  build_drafts: {times[-1]:.2f} s {result} (load {loads[-1]})", flush=True)
        rows = StatementRow.objects.count()
        rebuilds = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            rebuilt = invoicing.build_drafts(MONTH)
            rebuilds.append(time.perf_counter() - t0)
            loads.append(load())
            print(f"  rebuild: {rebuilds[-1]:.2f} s {rebuilt} (load {loads[-1]})", flush=True)
        invoice = Invoice.objects.order_by("pk").first()
        t0 = time.perf_counter()
        issuing.invoice_issue(invoice, actor=None)
        issue_s = time.perf_counter() - t0
        print()
        print(f"machine: {machine()}; load average (1/5/15 min) after each run: {'; '.join(loads)}")
        print(f"date: {date.today().isoformat()}")
        print(f"monthly invoicing ({args.clients} clients, {args.clients * args.miners_per_client:,} miners, "
              f"{rows:,} statement rows): median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
              f"max {max(times):.2f} s (n={len(times)}); target < 60 s")  # fmt: skip
        print(f"rebuild over existing drafts: median {statistics.median(rebuilds):.2f} s, min {min(rebuilds):.2f} s, "
              f"max {max(rebuilds):.2f} s (n={len(rebuilds)})")  # fmt: skip
        print(f"issue one invoice ({rows // max(args.clients, 1):,} rows hashed): {issue_s:.2f} s")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(url)


if __name__ == "__main__":
    main()
