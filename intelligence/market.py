"""Default market figures for the calculator: the latest market day in the database (``MarketDay``: the shipped
history loaded by ``manage.py load_market`` and, on top of it, a configured live feed, ``intelligence.feeds``), or,
while that table is empty or not migrated yet, the latest complete day of the shipped file
(intelligence/data/btc_daily.csv). The block subsidy follows the halving schedule for that day."""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from intelligence.algorithms import hashprice

DATA = Path(__file__).parent / "data" / "btc_daily.csv"
BLOCKS_PER_DAY = Decimal(144)
# The subsidy since the April 2024 halving (block 840,000) until the next (block 1,050,000). The snapshot's own
# subsidy comes from the halving schedule for its day (hashprice.block_subsidy_btc_on); this is kept for callers.
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


def latest_snapshot(path: Path = DATA) -> MarketSnapshot:
    """The latest market day: from ``MarketDay`` when it has rows (one indexed query), else from ``path``."""
    if path == DATA:
        snapshot = _database_snapshot()
        if snapshot is not None:
            return snapshot
    return _file_snapshot(path)


def snapshot_of(*, day: date, btc_price_usd: Decimal, difficulty: Decimal, fees_btc: Decimal | None) -> MarketSnapshot:
    """A snapshot from one day's figures: the subsidy of that day's halving era (blended on a halving day), fees
    per block from the day's total over 144 blocks, or the fallback when the day has no fee figure."""
    fees = Decimal(fees_btc) / BLOCKS_PER_DAY if fees_btc is not None else FALLBACK_FEES_BTC_PER_BLOCK
    return MarketSnapshot(
        date=day.isoformat(),
        btc_price_usd=Decimal(btc_price_usd).quantize(Decimal("0.01")),
        difficulty=Decimal(difficulty).quantize(Decimal(1)),
        block_subsidy_btc=hashprice.block_subsidy_btc_on(day),
        fees_btc_per_block=fees.quantize(Decimal("0.00000001")),
    )


# The fee level a forecast carries forward: the median of the last week's daily figures, not the last day's. Fees
# swing day to day (weekends, bursts of inscriptions) and revert, so the last day is a noisy estimate of the next
# weeks: on the shipped history's days with fee data, a 7-day median in the hashprice composite gave a 7-day MAPE
# of 7.37 % against 7.64 % with the last day's fees (walk-forward, 371 weekly origins 2019-01 → 2026-02).
FEE_MEDIAN_DAYS = 7


def typical_fees_btc_per_block(snapshot: MarketSnapshot) -> Decimal:
    """Fees per block to carry forward from ``snapshot``'s day: the median over the FEE_MEDIAN_DAYS days up to it
    that have a fee figure in ``MarketDay``; the snapshot's own (its day's, or the fallback) when none has."""
    try:
        from django.db import DatabaseError, transaction

        from intelligence.models import MarketDay
    except Exception:  # Django not configured: the file snapshot is all there is
        return snapshot.fees_btc_per_block
    last = date.fromisoformat(snapshot.date)
    try:
        with transaction.atomic():  # a savepoint, as in _database_snapshot
            fees = list(
                MarketDay.objects.filter(
                    date__gt=last - timedelta(days=FEE_MEDIAN_DAYS), date__lte=last, fees_btc__isnull=False
                ).values_list("fees_btc", flat=True)
            )
    except DatabaseError:
        return snapshot.fees_btc_per_block
    if not fees:
        return snapshot.fees_btc_per_block
    return (Decimal(statistics.median(fees)) / BLOCKS_PER_DAY).quantize(Decimal("0.00000001"))


def _database_snapshot() -> MarketSnapshot | None:
    """None while the table is empty, not migrated, or Django is not set up (scripts, the algorithms' tests)."""
    try:
        from django.db import DatabaseError, transaction

        from intelligence.models import MarketDay
    except Exception:  # Django not configured: the file is the only source
        return None
    try:
        # A savepoint: on PostgreSQL a failed query (no table yet) would otherwise break the caller's transaction.
        with transaction.atomic():
            row = MarketDay.objects.order_by("-date").values("date", "btc_price_usd", "difficulty", "fees_btc").first()
    except DatabaseError:
        return None
    if row is None:
        return None
    return snapshot_of(
        day=row["date"], btc_price_usd=row["btc_price_usd"], difficulty=row["difficulty"], fees_btc=row["fees_btc"]
    )


@lru_cache(maxsize=4)
def _file_snapshot(path: Path) -> MarketSnapshot:
    last = None
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["price_usd"] and row["difficulty"]:
                last = row
    if last is None:
        raise RuntimeError(f"{path} has no complete row")
    return snapshot_of(
        day=date.fromisoformat(last["date"]),
        btc_price_usd=Decimal(last["price_usd"]),
        difficulty=Decimal(last["difficulty"]),
        fees_btc=Decimal(last["fees_btc"]) if last["fees_btc"] else None,
    )
