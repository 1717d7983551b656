"""Market data in the database (``MarketDay``): the loaders that write it and the reads built on it.

Writes (services):
- ``market_load_file(path)``: the shipped daily history (or another file of the same columns) as SHIPPED rows, in
  bulk upserts (a constant number of statements per 1,000 days). It never replaces a FEED or MANUAL row: a live
  feed's figure for a day is newer than the shipped one, and a hand-entered one is deliberate.
- ``market_days_from_feed(days, feed_name)``: a live feed's days as FEED rows, replacing SHIPPED and earlier FEED
  rows of the same day (never MANUAL ones).

Reads (selectors): ``market_days``, ``latest_market_day``, ``hashprice_of`` / ``hashprice_on`` and
``hashprice_series`` (USD per TH/s per day, from ``intelligence.algorithms.hashprice``: price, difficulty, the
subsidy of that day's halving era, fees per block from the day's fee total over 144 blocks or, where the history
has no fee figure, ``intelligence.market.FALLBACK_FEES_BTC_PER_BLOCK`` — said so by ``fees_estimated``), and
``market_health`` for /api/health.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from intelligence import market
from intelligence.algorithms import hashprice
from intelligence.models import MarketDay

Source = MarketDay.Source
BATCH = 1000
UPDATED_FIELDS = ["btc_price_usd", "difficulty", "hashrate_ths", "fees_btc", "miners_revenue_usd", "source",
                  "source_name", "updated_at"]  # fmt: skip
TWO_DP, EIGHT_DP, WHOLE = Decimal("0.01"), Decimal("0.00000001"), Decimal(1)


class MarketFileError(ValueError):
    """A market file that cannot be loaded: ``row`` is the 1-based data row (None: the file as a whole)."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message if row is None else f"row {row}: {message}")
        self.row, self.column = row, column


@dataclass(frozen=True)
class LoadResult:
    written: int  # rows inserted or updated
    kept: int  # days already held by a FEED or MANUAL row, left alone
    skipped: int  # incomplete days in the file (no price or no difficulty)
    first: date | None
    last: date | None


# -- writes --------------------------------------------------------------------------------------------


def _dec(raw: str, quantum: Decimal, *, row: int, column: str, required: bool) -> Decimal | None:
    text = (raw or "").strip()
    if not text:
        if required:
            raise MarketFileError("empty", row=row, column=column)
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MarketFileError(f"{text!r} is not a number", row=row, column=column) from None
    if not value.is_finite() or value < 0:
        raise MarketFileError(f"{text!r} is not a non-negative number", row=row, column=column)
    return value.quantize(quantum)


def read_market_file(path: Path) -> tuple[list[MarketDay], int]:
    """The complete days of a file with ``btc_daily.csv``'s columns (unsaved rows) and the count of incomplete
    ones (no price or no difficulty: the shipped history has four, missing at the source too)."""
    rows, skipped = [], 0
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"date", "price_usd", "difficulty"} - set(reader.fieldnames or ())
        if missing:
            raise MarketFileError(f"missing column(s): {', '.join(sorted(missing))}")
        for n, raw in enumerate(reader, start=1):
            if not (raw.get("price_usd") or "").strip() or not (raw.get("difficulty") or "").strip():
                skipped += 1
                continue
            try:
                day = date.fromisoformat((raw["date"] or "").strip())
            except ValueError:
                raise MarketFileError(f"{raw['date']!r} is not a date (YYYY-MM-DD)", row=n, column="date") from None
            rows.append(
                MarketDay(
                    date=day,
                    btc_price_usd=_dec(raw["price_usd"], TWO_DP, row=n, column="price_usd", required=True),
                    difficulty=_dec(raw["difficulty"], WHOLE, row=n, column="difficulty", required=True),
                    hashrate_ths=_dec(raw.get("hashrate_ths"), TWO_DP, row=n, column="hashrate_ths", required=False),
                    fees_btc=_dec(raw.get("fees_btc"), EIGHT_DP, row=n, column="fees_btc", required=False),
                    miners_revenue_usd=_dec(
                        raw.get("miners_revenue_usd"), TWO_DP, row=n, column="miners_revenue_usd", required=False
                    ),
                )
            )
    return rows, skipped


def _upsert(rows: Sequence[MarketDay]) -> int:
    now = timezone.now()
    for row in rows:
        row.updated_at = now  # bulk_create skips auto_now on the update path
    for start in range(0, len(rows), BATCH):
        MarketDay.objects.bulk_create(
            rows[start : start + BATCH], update_conflicts=True, unique_fields=["date"], update_fields=UPDATED_FIELDS
        )
    return len(rows)


@transaction.atomic
def market_load_file(path: Path = market.DATA, *, source_name: str = "") -> LoadResult:
    """Load a daily history file as SHIPPED rows (idempotent: a second load changes nothing but ``updated_at``)."""
    rows, skipped = read_market_file(path)
    name = (source_name or Path(path).name)[:80]
    for row in rows:
        row.source, row.source_name = Source.SHIPPED, name
    # Lock the days a feed or a person wrote, then leave them out: the shipped figure never replaces them.
    held = set(
        MarketDay.objects.select_for_update().exclude(source=Source.SHIPPED).values_list("date", flat=True)
    )  # fmt: skip
    fresh = [r for r in rows if r.date not in held]
    written = _upsert(fresh)
    return LoadResult(
        written=written,
        kept=len(rows) - len(fresh),
        skipped=skipped,
        first=rows[0].date if rows else None,
        last=rows[-1].date if rows else None,
    )


@transaction.atomic
def market_days_from_feed(days: Iterable, *, feed_name: str) -> int:
    """Upsert a feed's days (``intelligence.feeds.FeedDay``) as FEED rows; MANUAL days are left alone."""
    rows = [
        MarketDay(
            date=d.date,
            btc_price_usd=Decimal(d.btc_price_usd).quantize(TWO_DP),
            difficulty=Decimal(d.difficulty).quantize(WHOLE),
            hashrate_ths=None if d.hashrate_ths is None else Decimal(d.hashrate_ths).quantize(TWO_DP),
            fees_btc=None if d.fees_btc is None else Decimal(d.fees_btc).quantize(EIGHT_DP),
            miners_revenue_usd=None if d.miners_revenue_usd is None else Decimal(d.miners_revenue_usd).quantize(TWO_DP),
            source=Source.FEED,
            source_name=feed_name[:80],
        )
        for d in days
    ]
    manual = set(
        MarketDay.objects.select_for_update()
        .filter(source=Source.MANUAL, date__in=[r.date for r in rows])
        .values_list("date", flat=True)
    )
    return _upsert([r for r in rows if r.date not in manual])


# -- reads ---------------------------------------------------------------------------------------------


def market_days(start: date | None = None, end: date | None = None):
    """The market days in [start, end] (either bound open), oldest first."""
    qs = MarketDay.objects.all()
    if start is not None:
        qs = qs.filter(date__gte=start)
    if end is not None:
        qs = qs.filter(date__lte=end)
    return qs.order_by("date")


def latest_market_day() -> MarketDay | None:
    return MarketDay.objects.order_by("-date").first()


@dataclass(frozen=True)
class HashpriceDay:
    date: date
    btc_price_usd: Decimal
    difficulty: Decimal
    block_subsidy_btc: Decimal
    fees_btc_per_block: Decimal
    fees_estimated: bool  # the day had no fee figure: FALLBACK_FEES_BTC_PER_BLOCK was used
    hashprice_usd_per_th_day: Decimal
    source: str

    def as_dict(self) -> dict:
        return {
            "date": self.date.isoformat(),
            "btc_price_usd": str(self.btc_price_usd),
            "difficulty": str(self.difficulty),
            "block_subsidy_btc": str(self.block_subsidy_btc),
            "fees_btc_per_block": str(self.fees_btc_per_block),
            "fees_estimated": self.fees_estimated,
            "hashprice_usd_per_th_day": str(self.hashprice_usd_per_th_day),
            "source": self.source,
        }


HASHPRICE_QUANTUM = Decimal("0.000001")


def hashprice_of(day: MarketDay) -> HashpriceDay:
    """Hashprice (USD per TH/s per day, before pool fees) of one market day."""
    subsidy = hashprice.block_subsidy_btc_on(day.date)
    estimated = day.fees_btc is None
    fees = market.FALLBACK_FEES_BTC_PER_BLOCK if estimated else hashprice.fees_btc_per_block(day.fees_btc)
    value = hashprice.hashprice_usd_per_th_day(day.btc_price_usd, day.difficulty, subsidy, fees)
    return HashpriceDay(
        date=day.date,
        btc_price_usd=day.btc_price_usd,
        difficulty=day.difficulty,
        block_subsidy_btc=subsidy,
        fees_btc_per_block=fees.quantize(EIGHT_DP),
        fees_estimated=estimated,
        hashprice_usd_per_th_day=value.quantize(HASHPRICE_QUANTUM),
        source=day.source,
    )


def hashprice_on(day: date) -> HashpriceDay | None:
    row = MarketDay.objects.filter(date=day).first()
    return None if row is None else hashprice_of(row)


def hashprice_series(start: date | None = None, end: date | None = None) -> list[HashpriceDay]:
    """Hashprice for each market day in [start, end], oldest first (one query)."""
    return [hashprice_of(d) for d in market_days(start, end)]


# -- health --------------------------------------------------------------------------------------------

REFRESH_JOB = "market_refresh"


def market_health(*, today: date | None = None) -> dict:
    """The market data's state for /api/health: which feed is configured, the latest day and its age, and the last
    refresh. ``status``: ``unconfigured`` (no live feed: the shipped history only), ``fresh``, or ``stale`` (the
    latest day is older than ``intelligence.market.STALE_AFTER_DAYS``, or there is none). Informational: it never
    raises and does not change the overall health status."""
    from hashinsight.events.models import JobRun
    from intelligence.feeds import configured_feed

    try:
        today = today or timezone.now().date()
        configured = configured_feed()  # a name that is not a feed raises: reported as an error below
        feed = configured.name if configured is not None else ""
        latest = MarketDay.objects.order_by("-date").values("date", "source", "source_name").first()
        age = (today - latest["date"]).days if latest else None
        stale = latest is None or market.is_stale(latest["date"].isoformat(), today=today)
        run = (
            JobRun.objects.filter(job_type=REFRESH_JOB)
            .order_by("-created_at")
            .values("created_at", "status", "result", "error")
            .first()
        )
        last_refresh = None
        if run is not None:
            result = run["result"] or {}
            ok = run["status"] == JobRun.Status.SUCCESS and not result.get("error")
            last_refresh = {
                "at": run["created_at"].isoformat(),
                "ok": ok,
                "error": "" if ok else (result.get("error") or run["error"] or run["status"]),
                "days": result.get("days"),
            }
        return {
            "status": "unconfigured" if not feed else ("stale" if stale else "fresh"),
            "feed": feed or None,
            "latest_day": latest["date"].isoformat() if latest else None,
            "age_days": age,
            "stale": stale,
            "stale_after_days": market.STALE_AFTER_DAYS,
            "source": latest["source"] if latest else None,
            "last_refresh": last_refresh,
        }
    except Exception as exc:  # the health page reports; it never fails because of market data
        return {"status": "error", "error": type(exc).__name__}
