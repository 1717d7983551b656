"""Default market figures for the calculator: the latest complete day of the shipped history
(intelligence/data/btc_daily.csv). A live price feed, when configured, will replace this."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "btc_daily.csv"
BLOCKS_PER_DAY = Decimal(144)
# The subsidy since the April 2024 halving (block 840,000) until the next (block 1,050,000).
BLOCK_SUBSIDY_BTC = Decimal("3.125")
# Used when the latest day has no fee figure; a typical 2025 level (about 0.02 BTC per block).
FALLBACK_FEES_BTC_PER_BLOCK = Decimal("0.02")


@dataclass(frozen=True)
class MarketSnapshot:
    date: str
    btc_price_usd: Decimal
    difficulty: Decimal
    block_subsidy_btc: Decimal
    fees_btc_per_block: Decimal


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
