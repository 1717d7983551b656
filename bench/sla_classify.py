"""SLA classification of one hosting client's month (``hashinsight.billing.sla.classify_period``), the SLA share of
issue 10's invoicing figure (100 clients and 100,000 miners in < 60 s): a client with N miners (default 10,000) at a
site, 31 days of daily rows (written with COPY) where about 5 % of the miner-days have downtime, 1 % no row at all,
a quarter of the miners curtailed 4 h on five days by operator CURTAIL commands, 2 % disabled by the client for a
day, 200 hardware faults, a force-majeure window and the site's 5-minute history (8,928 windows). Timed: the call
reading ``Daily`` itself, and the call given the caller's uptime (as invoicing does, which reads ``Daily`` anyway);
medians of 3 runs, wall and CPU, with the query count.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_sla .venv/bin/python bench/sla_classify.py [--miners 10000]

PostgreSQL only (COPY). The bench data (site ``bench-sla``) is replaced on every run."""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from _setup import ROOT, ensure_database, machine

FIRST, DAYS = date(2026, 1, 1), 31


def setup() -> None:
    url = os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_sla")
    if not url.startswith("postgres"):
        sys.exit("PostgreSQL only: set DATABASE_URL to a PostgreSQL database")
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def build(n: int):
    from django.db import connection, transaction

    from commands.models import Command, CommandTarget
    from hashinsight.accounts.models import User
    from hashinsight.accounts.roles import Role
    from hashinsight.billing.models import ForceMajeureWindow
    from miners.models import Miner, MinerModel
    from sites.models import Customer, HostingContract, Site, Zone
    from telemetry.models import EdgeDevice, SafetyEvent, SiteDaily, SiteHistory5m

    rnd = random.Random(7)
    with transaction.atomic():
        old = Site.objects.filter(slug="bench-sla").first()
        if old is not None:
            with connection.cursor() as cur:
                cur.execute("DELETE FROM telemetry_daily WHERE site_id = %s", [old.pk])
                cur.execute("DELETE FROM telemetry_site_history_5m WHERE site_id = %s", [old.pk])
                cur.execute("DELETE FROM telemetry_site_daily WHERE site_id = %s", [old.pk])
            CommandTarget.objects.filter(command__site=old).delete()
            Command.objects.filter(site=old).delete()
            SafetyEvent.objects.filter(site=old).delete()
            EdgeDevice.objects.filter(site=old).delete()
            HostingContract.objects.filter(site=old).delete()
            Miner.objects.filter(site=old).delete()
            Zone.objects.filter(site=old).delete()
            old.delete()
        site = Site.objects.create(slug="bench-sla", name="Bench SLA site", capacity_kw=Decimal("400000"))
        zone = Zone.objects.create(site=site, name="Z", capacity_kw=Decimal("400000"))
        client, _ = Customer.objects.get_or_create(
            slug="bench-sla-client",
            defaults={
                "company": "Bench SLA Ltd.",
                "hosting_rate_usd_per_kwh": Decimal("0.06"),
                "contract_start": FIRST,
            },
        )
        model = MinerModel.objects.filter(code="antminer-s21-200t").first() or MinerModel.objects.create(
            vendor="Bitmain", name="Antminer S21", code="antminer-s21-200t", hashrate_ths=200, power_w=3500
        )
        Miner.objects.bulk_create(
            [Miner(site=site, zone=zone, customer=client, model=model, serial=f"BSLA{i:07d}") for i in range(n)],
            batch_size=5000,
        )
        miners = list(Miner.objects.filter(site=site).values_list("pk", flat=True))
        contract = HostingContract.objects.create(
            number="BENCH-HC-SLA", customer=client, site=site, start_date=FIRST, status="active",
            curtailment_allowance_hours=Decimal("10"),
            sla_credit_schedule=[{"below_pct": "97", "credit_pct": "5"}],
        )  # fmt: skip
        buf = io.StringIO()
        uptime = {}
        for m in miners:
            for d in range(DAYS):
                day = FIRST + timedelta(days=d)
                r = rnd.random()
                if r < 0.01:
                    continue
                pct = rnd.choice((50.0, 75.0, 83.3, 95.0)) if r < 0.06 else 100.0
                uptime[(m, day)] = pct
                buf.write(f"{m}\t{day}\t{site.pk}\t{client.pk}\t1440\t288\t200\t84\t{pct}\t70\t0\t0\t0\n")
        buf.seek(0)
        with (
            connection.cursor() as cur,
            cur.copy(
                "COPY telemetry_daily (miner_id, day, site_id, customer_id, sample_count, buckets_reported, "
                "avg_hashrate_ths, energy_kwh, uptime_pct, max_temp_chip_c, restarts, accepted_shares, "
                "rejected_shares) "
                "FROM STDIN"
            ) as copy,
        ):
            copy.write(buf.getvalue())
        operator, _ = User.objects.get_or_create(username="bench-sla-op", defaults={"role": Role.ADMIN})
        client_user, _ = User.objects.get_or_create(username="bench-sla-client", defaults={"role": Role.CLIENT})

        def command(kind, targets, when, proposer, params=None):
            c = Command.objects.create(
                site=site, command_type=kind, params=params or {}, status="COMPLETED", proposer=proposer,
                risk_score=Decimal("0.1"), risk_tier="LOW", expires_at=when + timedelta(hours=1), dispatched_at=when,
                finished_at=when,
            )  # fmt: skip
            Command.objects.filter(pk=c.pk).update(created_at=when)  # as if proposed then
            CommandTarget.objects.bulk_create(
                [
                    CommandTarget(command=c, miner_id=m, serial=f"x{m}", result_status="ok", acked_at=when)
                    for m in targets
                ],
                batch_size=5000,
            )

        quarter = miners[: n // 4]
        for d in (3, 9, 15, 21, 27):
            day = FIRST + timedelta(days=d)
            window = {"start": f"{day}T02:00:00Z", "end": f"{day}T06:00:00Z", "kw": "1000", "mode": "hard"}
            command("CURTAIL", quarter, at(day), operator, window)
        disabled = miners[n // 4 : n // 4 + n // 50]
        command("HASHING_DISABLE", disabled, at(FIRST + timedelta(days=12), 8), client_user)
        command("HASHING_ENABLE", disabled, at(FIRST + timedelta(days=13), 8), operator)
        device = EdgeDevice.objects.create(site=site, name="bench", token_prefix="bsla", token_hash="x" * 64,
                                           secret_sealed="x")  # fmt: skip
        SafetyEvent.objects.bulk_create(
            [SafetyEvent(device=device, site=site, miner_id=m, event_id=f"f{m}", kind="fan_failure",
                         ts=at(FIRST + timedelta(days=rnd.randrange(DAYS)), 10)) for m in rnd.sample(miners, 200)]
        )  # fmt: skip
        ForceMajeureWindow.objects.create(site=site, start=at(FIRST + timedelta(days=20), 0),
                                          end=at(FIRST + timedelta(days=20), 12), reason="bench storm")  # fmt: skip
        SiteDaily.objects.bulk_create(
            [SiteDaily(site=site, day=FIRST + timedelta(days=d), miners_reporting=n, avg_hashrate_ths=200.0 * n,
                       energy_kwh=84.0 * n, uptime_pct=97) for d in range(DAYS)]
        )  # fmt: skip
        SiteHistory5m.objects.bulk_create(
            [SiteHistory5m(site=site, bucket=at(FIRST) + timedelta(minutes=5 * i), miners_reporting=n,
                           miners_hashing=n // 3 if 3000 <= i < 3024 else n, hashrate_ths=0, power_w=0,
                           uptime_fraction=1) for i in range(DAYS * 288)],
            batch_size=5000,
        )  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return contract, uptime


def timed(fn, runs=3):
    from django.db import connection, reset_queries

    walls, cpus, queries, result = [], [], 0, None
    for _ in range(runs):
        reset_queries()
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
        queries = len(connection.queries)
        slow = sorted(connection.queries, key=lambda x: -float(x["time"]))[:3]
    for x in slow:
        print(f"   {float(x['time']):.2f} s  {x['sql'][:150]}")
    return statistics.median(walls), statistics.median(cpus), queries, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true", help="time the data of the previous run (same --miners)")
    args = parser.parse_args()
    setup()
    from django.conf import settings

    from hashinsight.billing import sla

    settings.DEBUG = True  # count queries
    t = time.perf_counter()
    if args.reuse:
        from sites.models import HostingContract as Contract
        from telemetry.models import Daily

        contract = Contract.objects.get(number="BENCH-HC-SLA")
        rows = Daily.objects.filter(site_id=contract.site_id).values_list("miner_id", "day", "uptime_pct")
        uptime = {(m, d): p for m, d, p in rows.iterator(20000)}
    else:
        contract, uptime = build(args.miners)
    print(f"built {args.miners:,} miners × {DAYS} days in {time.perf_counter() - t:.1f} s ({machine()})")
    end = FIRST + timedelta(days=DAYS - 1)
    wall, cpu, q, out = timed(lambda: sla.classify_period(contract, FIRST, end))
    print(
        f"classify_period reading Daily:      {wall:.2f} s wall, {cpu:.2f} s CPU, {q} queries, {len(out):,} miner-days"
    )
    wall, cpu, q, out2 = timed(lambda: sla.classify_period(contract, FIRST, end, uptime=uptime, site_cache={}))
    print(
        f"classify_period given the uptime:   {wall:.2f} s wall, {cpu:.2f} s CPU, {q} queries, {len(out2):,} miner-days"
    )
    assert out == out2
    summary = sla.period_summary(contract, FIRST, end, out, miner_count=args.miners)
    print("summary:", {k: str(v) for k, v in summary.items()})


if __name__ == "__main__":
    main()
