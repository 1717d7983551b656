"""The monthly site report's PDF for a 100,000-miner site (issue 10's figure: < 20 s): a site with 100,000 miners of
three models, January 2026's 31 ``SiteDaily`` rows and 3.1 M miner ``Daily`` rows (written with COPY), 400 alerts,
60 safety events and 8 curtailment events; then what the ``reports.render`` job does for a PDF, timed end to end
(gather the month: ``hashinsight.reports.data.site_month``; draw the charts; lay out the PDF), median of 3 runs, with
each phase's median and the file size. The Excel and PowerPoint of the same month are timed once, for information.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_reports .venv/bin/python bench/report_pdf.py [--miners N]

PostgreSQL only (COPY). The bench site (``bench-report``) and its rows are replaced when the miner count differs or
with ``--rebuild``; nothing else in the database is touched. Market figures: the shipped daily history (the month is
inside it)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from _setup import ROOT, ensure_database, machine

SLUG = "bench-report"
MONTH = date(2026, 1, 1)
DAYS = 31
MODELS = [
    ("Bitmain", "Antminer S21 bench", Decimal("200"), Decimal("3500")),
    ("Bitmain", "Antminer S19 XP bench", Decimal("141"), Decimal("3010")),
    ("MicroBT", "Whatsminer M60S bench", Decimal("186"), Decimal("3344")),
]


def setup() -> None:
    url = os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_reports")
    if not url.startswith("postgres"):
        sys.exit("PostgreSQL only: set DATABASE_URL to a PostgreSQL database")
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()


def build(n_miners: int, rebuild: bool):
    from django.db import connection, transaction

    from intelligence.models import CurtailmentEvent
    from miners.models import Miner, MinerModel
    from sites.models import Site, Zone
    from telemetry.models import Alert, Daily, EdgeDevice, SafetyEvent, SiteDaily

    site = Site.objects.filter(slug=SLUG).first()
    if (
        site is not None
        and not rebuild
        and Miner.objects.filter(site=site).count() == n_miners
        and (Daily.objects.filter(site_id=site.pk, day__gte=MONTH).count() == n_miners * DAYS)
    ):
        print(f"bench site kept: {n_miners:,} miners, {n_miners * DAYS:,} daily rows")
        return site
    t = time.perf_counter()
    rng = random.Random(10)
    with transaction.atomic():
        if site is not None:
            with connection.cursor() as cur:
                cur.execute("DELETE FROM telemetry_daily WHERE site_id = %s", [site.pk])
                cur.execute("DELETE FROM telemetry_site_daily WHERE site_id = %s", [site.pk])
            Alert.objects.filter(site=site).delete()
            SafetyEvent.objects.filter(site=site).delete()
            EdgeDevice.objects.filter(site=site).delete()
            CurtailmentEvent.objects.filter(site=site).delete()
            Miner.objects.filter(site=site).delete()
            Zone.objects.filter(site=site).delete()
            site.delete()
        site = Site.objects.create(
            name="Bench report site 深圳",
            slug=SLUG,
            capacity_kw=Decimal("400000"),
            power_price_usd_per_kwh=Decimal("0.045"),
        )
        zones = [Zone.objects.create(site=site, name=f"Hall {i + 1}", capacity_kw=Decimal("40000")) for i in range(10)]
        models = []
        for vendor, name, ths, w in MODELS:
            m, _ = MinerModel.objects.get_or_create(
                vendor=vendor,
                name=name,
                hashrate_ths=ths,
                defaults={"power_w": w, "code": name.lower().replace(" ", "-")},
            )
            models.append(m)
        Miner.objects.bulk_create(
            [Miner(site=site, zone=zones[i % 10], model=models[i % 3], serial=f"BR{i:07d}") for i in range(n_miners)],
            batch_size=5000,
        )
        miners = list(Miner.objects.filter(site=site).order_by("pk").values_list("pk", "model_id"))
        nominal = {m.pk: float(m.hashrate_ths) for m in models}
        power = {m.pk: float(m.power_w) for m in models}
        print(f"miners: {len(miners):,} in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        pg = connection.connection
        sums = {}
        with (
            pg.cursor() as cur,
            cur.copy(
                "COPY telemetry_daily (miner_id, day, site_id, customer_id, sample_count, buckets_reported, "
                "avg_hashrate_ths, energy_kwh, uptime_pct, max_temp_chip_c, restarts, accepted_shares, "
                "rejected_shares) FROM STDIN"
            ) as copy,
        ):
            for d in range(DAYS):
                day = MONTH + timedelta(days=d)
                ths_sum = kwh_sum = up_sum = 0.0
                for pk, model_id in miners:
                    up = 100.0 if rng.random() > 0.04 else rng.uniform(0, 95)
                    ths = nominal[model_id] * rng.uniform(0.9, 1.02) * up / 100
                    kwh = power[model_id] * 24 / 1000 * up / 100
                    ths_sum, kwh_sum, up_sum = ths_sum + ths, kwh_sum + kwh, up_sum + up
                    copy.write_row((pk, day, site.pk, None, 288, 288, ths, kwh, up, rng.uniform(60, 85), 0, 0, 0))
                sums[day] = (ths_sum, kwh_sum, up_sum / len(miners))
        print(f"daily rows: {len(miners) * DAYS:,} with COPY in {time.perf_counter() - t:.1f} s")
        SiteDaily.objects.bulk_create(
            [
                SiteDaily(
                    site_id=site.pk,
                    day=day,
                    miners_reporting=len(miners),
                    avg_hashrate_ths=ths,
                    energy_kwh=kwh,
                    uptime_pct=up,
                )
                for day, (ths, kwh, up) in sums.items()
            ]
        )
        start = datetime(MONTH.year, MONTH.month, 1, tzinfo=UTC)
        types = ["miner_offline", "temp_high", "hashrate_low", "fan_failure"]
        Alert.objects.bulk_create(
            [
                Alert(
                    site=site,
                    miner_id=miners[rng.randrange(len(miners))][0],
                    alert_type=rng.choice(types),
                    severity=rng.choice(["critical", "warning", "warning", "info"]),
                    message="bench alert",
                    dedupe_key=f"bench-{i}",
                    first_seen=(s := start + timedelta(minutes=rng.randrange(DAYS * 1440))),
                    last_seen=s + timedelta(minutes=rng.randrange(1, 600)),
                    status="resolved",
                )
                for i in range(400)
            ]
        )
        device = EdgeDevice.objects.create(
            site=site, name="bench", token_prefix="benchrep", token_hash="x", secret_sealed="x"
        )
        SafetyEvent.objects.bulk_create(
            [
                SafetyEvent(
                    device=device,
                    site=site,
                    miner_id=miners[rng.randrange(len(miners))][0],
                    event_id=f"e{i}",
                    kind=rng.choice(["overheat_shutdown", "fan_failure", "power_loss", "hashboard_failure"]),
                    ts=start + timedelta(minutes=rng.randrange(DAYS * 1440)),
                )
                for i in range(60)
            ]
        )
        for i in range(8):
            s = start + timedelta(days=3 * i + 1, hours=17)
            CurtailmentEvent.objects.create(
                site=site,
                status="ended",
                mode="full_stop",
                priority="normal",
                starts_at=s,
                min_end_at=s,
                max_end_at=s + timedelta(hours=4),
                ended_at=s + timedelta(hours=3),
                restore_batch_size=1000,
                restore_interval_seconds=60,
                drift_action="flag",
                energy_avoided_kwh=Decimal("150000"),
                revenue_forgone_usd=Decimal("2500.00"),
            )
    with connection.cursor() as cur:
        cur.execute("ANALYZE telemetry_daily")
        cur.execute("ANALYZE miners_miner")
    return site


def render_once(site, fmt: str = "pdf") -> tuple[dict, int]:
    from django.utils import translation

    from hashinsight.reports import data as report_data
    from hashinsight.reports.charts import render_charts
    from hashinsight.reports.render_pdf import render_pdf
    from hashinsight.reports.render_pptx import render_pptx
    from hashinsight.reports.render_xlsx import render_xlsx

    phases = {}
    with translation.override("zh-hans"):
        t = time.perf_counter()
        dataset = report_data.site_month(site=site, month=MONTH)
        phases["data"] = time.perf_counter() - t
        t = time.perf_counter()
        charts = render_charts(dataset) if fmt != "xlsx" else {}
        phases["charts"] = time.perf_counter() - t
        t = time.perf_counter()
        body = {
            "pdf": lambda: render_pdf(dataset, charts),
            "xlsx": lambda: render_xlsx(dataset),
            "pptx": lambda: render_pptx(dataset, charts),
        }[fmt]()
        phases[fmt] = time.perf_counter() - t
    phases["total"] = sum(phases.values())
    return phases, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    setup()
    site = build(args.miners, args.rebuild)
    print(machine())
    print(f"site {site.slug}: {args.miners:,} miners, {MONTH:%Y-%m}, language zh-hans")
    runs = []
    for i in range(args.runs):
        phases, size = render_once(site)
        runs.append(phases)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()) + f", PDF {size:,} bytes")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print("median: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
    verdict = "meets" if med["total"] < 20 else "MISSES"
    print(f"PDF report for a {args.miners:,}-miner site: median {med['total']:.2f} s ({verdict} the < 20 s target)")
    for fmt in ("xlsx", "pptx"):
        phases, size = render_once(site, fmt)
        print(f"{fmt} once: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()) + f", {size:,} bytes")


if __name__ == "__main__":
    main()
