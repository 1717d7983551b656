"""``manage.py load_market [--file CSV]``: load the shipped daily BTC history (or a file with its columns) into
MarketDay, in bulk and idempotently; days a live feed or a person wrote are kept."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from intelligence import market
from intelligence.market_data import MarketFileError, market_load_file


class Command(BaseCommand):
    help = "Load the daily BTC market history (default: the shipped intelligence/data/btc_daily.csv)."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=market.DATA, help="CSV with btc_daily.csv's columns")

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        start = time.perf_counter()
        try:
            result = market_load_file(file)
        except MarketFileError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Market days {result.first} … {result.last}: {result.written:,} written, {result.kept:,} kept "
                f"(live feed or entered by hand), {result.skipped:,} incomplete skipped, "
                f"in {time.perf_counter() - start:.2f} s."
            )
        )
