"""Default market figures for the calculator: the latest complete day of the shipped history
(intelligence/data/btc_daily.csv). A live price feed, when configured, will replace this."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "btc_daily.csv"
BLOCKS_PER_DAY = Decimal(144)
# The subsidy since the April 2024 halving (block 840,000) until the next (block 1,050,000).
BLOCK_SUBSIDY_BTC = Decimal("3.125")
# Used when the latest day has no fee figure; a typical 2025 level (about 0.02 BTC per block).
FALLBACK_FEES_BTC_PER_BLOCK = Decimal("0.02")
# Figures older than this are shown with a warning: price and difficulty move enough in two days
# (a difficulty retarget is every ~14 days, BTC often moves 5 % a day) that revenue may be off.
STALE_AFTER_DAYS = 2


@dataclass(frozen=True)
class MarketSnapshot:
    date: str
    btc_price_usd: Decimal
    difficulty: Decimal
    block_subsidy_btc: Decimal
    fees_btc_per_block: Decimal

    def is_stale(self, *, today: date) -> bool:
        return is_stale(self.date, today=today)


def age_days(day: str, *, today: date) -> int:
    return (today - date.fromisoformat(day)).days


def is_stale(day: str, *, today: date) -> bool:
    """Are figures of ``day`` (ISO date) too old to trust? ``today`` is the caller's UTC date,
    passed in so this module stays free of clocks."""
    return age_days(day, today=today) > STALE_AFTER_DAYS


@lru_cache(maxsize=1)
def latest_snapshot(path: Path = DATA) -> MarketSnapshot:
    last = None
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["price_usd"] and row["difficulty"]:
                last = row
    if last is None:
        raise RuntimeError(f"{path} has no complete row")
    fees = Decimal(last["fees_btc"]) / BLOCKS_PER_DAY if last["fees_btc"] else FALLBACK_FEES_BTC_PER_BLOCK
    return MarketSnapshot(
        date=last["date"],
        btc_price_usd=Decimal(last["price_usd"]).quantize(Decimal("0.01")),
        difficulty=Decimal(last["difficulty"]).quantize(Decimal(1)),
        block_subsidy_btc=BLOCK_SUBSIDY_BTC,
        fees_btc_per_block=fees.quantize(Decimal("0.00000001")),
    )
