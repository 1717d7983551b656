"""``manage.py load_power_prices --site SLUG --market day_ahead|real_time (--file CSV | --ercot)``: load a site's
power prices from a CSV (``timestamp_utc,usd_per_mwh``; checked whole, nothing written on a bad row) or the shipped
ERCOT hub-average prices (day-ahead hourly, real-time 15-minute). Idempotent per site, market and interval."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hashinsight.core.errors import DomainError
from intelligence import power_price_services as svc
from intelligence.models import PowerMarket
from sites.models import Site


class Command(BaseCommand):
    help = "Load a site's power prices from a CSV or the shipped ERCOT prices."

    def add_arguments(self, parser):
        parser.add_argument("--site", required=True, help="the site's slug")
        parser.add_argument("--market", required=True, choices=list(PowerMarket.values))
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", type=Path, help="CSV with timestamp_utc,usd_per_mwh")
        source.add_argument("--ercot", action="store_true", help="the shipped ERCOT hub-average prices")

    def handle(self, *args, site: str, market: str, file: Path | None, ercot: bool, **options):
        found = Site.objects.filter(slug=site).first()
        if found is None:
            raise CommandError(f"No site {site!r}.")
        start = time.perf_counter()
        try:
            if ercot:
                summary = svc.power_prices_load_ercot(site=found, market=market)
            else:
                if not file.is_file():
                    raise CommandError(f"{file} is not a file")
                series = svc.parse_upload(file.read_bytes(), name=file.name)
                summary = svc.power_prices_load(site=found, market=market, series=series, source=f"file:{file.name}")
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{found.slug} {market}: {summary.intervals:,} intervals of {summary.step_minutes} min, "
                f"{summary.first:%Y-%m-%d %H:%M} … {summary.last:%Y-%m-%d %H:%M} UTC, "
                f"in {time.perf_counter() - start:.2f} s."
            )
        )
