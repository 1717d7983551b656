"""Power prices per site (``PowerPrice``): loading a price series, the CSV upload, and the reads behind the API and
the portal page.

Who may do what (the role matrix's HOSTING module, scoped by ``sites.selectors``):
- read a site's prices: HOSTING READ and the site among those the user sees (else 404); hosting clients are
  refused (403) even on sites where they have miners: prices are the operator's market position, not the client's
  (their contract rate is what they pay);
- load prices: HOSTING FULL and the site manageable (a read-only grant answers 403).

A load is one transaction of bulk upserts on (site, market, interval start): loading the same series again changes
nothing, a corrected file replaces the intervals it covers, and a file with any bad row writes nothing (the parser
refuses it whole, naming the row and the column).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from django.db import connections, router, transaction
from django.db.models import Avg, Count, Max, Min, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from hashinsight.accounts.roles import Access, Module, Role, has_access, role_of
from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from intelligence.algorithms import power_prices as pp
from intelligence.models import PowerMarket, PowerPrice
from sites.models import Site
from sites.selectors import require_site_manageable, site_list

BATCH = 1000  # rows per statement (7 parameters each: within SQLite's 32,766)
COLUMNS = ("site", "market", "interval_start", "interval_minutes", "usd_per_mwh", "source", "created_at")
ALLOWED_STEPS = (5, 15, 60)  # PowerPrice's check constraint
# PowerPrice.usd_per_mwh: 10 digits, 2 decimals.
MAX_ABS_PRICE = Decimal("99999999.99")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class LoadSummary:
    site_id: int
    market: str
    intervals: int
    step_minutes: int
    first: datetime | None
    last: datetime | None

    def as_dict(self) -> dict:
        return {
            "site": self.site_id,
            "market": self.market,
            "intervals": self.intervals,
            "interval_minutes": self.step_minutes,
            "first": self.first.isoformat().replace("+00:00", "Z") if self.first else None,
            "last": self.last.isoformat().replace("+00:00", "Z") if self.last else None,
        }


def _market(value: str) -> str:
    if value not in PowerMarket.values:
        raise DomainError(
            "invalid_market",
            f"market must be one of {', '.join(PowerMarket.values)}.",
            details={"market": value, "allowed": list(PowerMarket.values)},
        )
    return value


def _rows(*, site: Site, market: str, series: pp.PriceSeries) -> list[tuple[datetime, Decimal]]:
    """(interval start, price) per interval, checked against what the table can hold."""
    if series.step_minutes not in ALLOWED_STEPS:
        raise DomainError(
            "unsupported_interval",
            f"Intervals of {series.step_minutes} min cannot be stored (5, 15 or 60 min).",
            details={"interval_minutes": series.step_minutes, "allowed": list(ALLOWED_STEPS)},
        )
    starts = series.start_utc.astype("datetime64[s]").astype(np.int64).tolist()
    rows = []
    for i, (stamp, value) in enumerate(zip(starts, series.usd_per_mwh.tolist(), strict=True), start=1):
        price = Decimal(repr(value)).quantize(CENT)
        if abs(price) > MAX_ABS_PRICE:
            raise DomainError(
                "invalid_price_data",
                f"row {i}: {value} USD/MWh is outside what can be stored.",
                details={"row": i, "column": "usd_per_mwh"},
            )
        rows.append((datetime.fromtimestamp(stamp, tz=UTC), price))
    return rows


def _upsert(*, site: Site, market: str, step: int, source: str, rows: list[tuple[datetime, Decimal]]) -> None:
    """``INSERT … ON CONFLICT (site, market, interval_start) DO UPDATE`` in multi-row statements (SQLite and
    PostgreSQL share the syntax): 84,000 intervals in a few seconds, without a model instance per row."""
    using = router.db_for_write(PowerPrice)
    connection = connections[using]
    ops, qn = connection.ops, connection.ops.quote_name
    meta = PowerPrice._meta
    columns = [meta.get_field(f).column for f in COLUMNS]
    conflict = ", ".join(qn(meta.get_field(f).column) for f in ("site", "market", "interval_start"))
    updates = ", ".join(f"{qn(c)} = EXCLUDED.{qn(c)}" for c in columns[3:6])
    # Identifiers come from the model, quoted by the backend; every value is a parameter.
    head = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    now = ops.adapt_datetimefield_value(timezone.now())
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for first in range(0, len(rows), BATCH):
            chunk = rows[first : first + BATCH]
            params = []
            for start, price in chunk:
                params += [site.pk, market, ops.adapt_datetimefield_value(start), step,
                           ops.adapt_decimalfield_value(price, 10, 2), source, now]  # fmt: skip
            cursor.execute(head + ", ".join([one] * len(chunk)) + tail, params)


@transaction.atomic
def power_prices_load(*, site: Site, market: str, series: pp.PriceSeries, source: str, actor=None) -> LoadSummary:
    """Upsert ``series`` as ``site``'s prices on ``market`` (idempotent per site, market and interval start), and
    publish ``power_prices.loaded`` in the same transaction."""
    market = _market(market)
    source = source[:80]
    rows = _rows(site=site, market=market, series=series)
    _upsert(site=site, market=market, step=series.step_minutes, source=source, rows=rows)
    summary = LoadSummary(
        site_id=site.pk,
        market=market,
        intervals=len(rows),
        step_minutes=series.step_minutes,
        first=rows[0][0] if rows else None,
        last=rows[-1][0] if rows else None,
    )
    # Its handlers make the site's cached day plans stale (intelligence.plans_handlers).
    outbox.publish("power_prices.loaded", aggregate=f"site:{site.pk}", payload={
        "site_id": site.pk, "market": market, "intervals": summary.intervals, "first": summary.first,
        "last": summary.last, "source": source,
    })  # fmt: skip
    if actor is not None:
        from hashinsight.events.audit import actor_of, audit_append

        actor_type, actor_id = actor_of(actor)
        audit_append(
            event_type="power_prices.loaded", actor_type=actor_type, actor_id=actor_id,
            reference=f"site:{site.pk}", payload={**summary.as_dict(), "source": source}, site=site,
        )  # fmt: skip
    return summary


def parse_upload(data: bytes | str, *, name: str = "upload") -> pp.PriceSeries:
    """An uploaded CSV (``timestamp_utc,usd_per_mwh``) as a series; any bad row is a 400 naming row and column."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DomainError("invalid_encoding", "The CSV must be UTF-8 text.") from None
    try:
        return pp.parse_price_csv(data, name=name)
    except pp.PriceDataError as exc:
        raise DomainError(
            "invalid_price_data",
            str(exc),
            details={"row": exc.row, "column": exc.column, "reason": exc.message},
        ) from None


def power_prices_upload(*, site: Site, market: str, data: bytes | str, actor, filename: str = "") -> LoadSummary:
    """Check and load an uploaded CSV: all rows or none."""
    market = _market(market)
    series = parse_upload(data, name=filename or "upload")
    return power_prices_load(
        site=site, market=market, series=series, source=f"upload:{filename or 'csv'}"[:80], actor=actor
    )


def ercot_series(market: str) -> pp.PriceSeries:
    """The shipped ERCOT hub-average prices (intelligence/data, provenance there): day-ahead hourly, real-time
    15-minute."""
    return pp.load_hourly("da") if _market(market) == PowerMarket.DAY_AHEAD else pp.load_15min()


def power_prices_load_ercot(*, site: Site, market: str, only_if_missing: bool = False) -> LoadSummary | None:
    """Load the shipped ERCOT series for ``market``. With ``only_if_missing`` (the demo seed), a site that already
    holds as many intervals of that source over the same span is left alone (None): a re-seed costs one query."""
    series = ercot_series(market)
    source = series.name
    if only_if_missing:
        held = PowerPrice.objects.filter(site=site, market=market, source=source).aggregate(
            n=Count("id"), first=Min("interval_start"), last=Max("interval_start")
        )
        first, last = series.datetimes()[0], series.datetimes()[-1]
        if held["n"] == len(series) and held["first"] == first and held["last"] == last:
            return None
    return power_prices_load(site=site, market=market, series=series, source=source)


# -- reads ---------------------------------------------------------------------------------------------


def may_read_prices(user) -> bool:
    """Operators (HOSTING READ, not a hosting client): the role-level half of the read rule."""
    return has_access(user, Module.HOSTING, Access.READ) and role_of(user) != Role.CLIENT


def price_site_for_read(*, user, site_id: int | None = None, slug: str | None = None) -> Site:
    """The site whose prices ``user`` asks to read: 403 for roles that may not read prices (checked first, so it
    says nothing about the site), 404 for a site outside the user's scope."""
    if not may_read_prices(user):
        raise DomainError(
            "prices_not_readable", "Power prices are shown to the site's operators only.", status=403
        )  # fmt: skip
    lookup = {"pk": site_id} if site_id is not None else {"slug": slug}
    return get_object_or_404(site_list(user=user), **lookup)


def price_site_for_write(*, user, site_id: int | None = None, slug: str | None = None) -> Site:
    site = price_site_for_read(user=user, site_id=site_id, slug=slug)
    if not has_access(user, Module.HOSTING, Access.FULL):
        raise DomainError("permission_denied", "Loading power prices needs full access to hosting.", status=403)
    require_site_manageable(user=user, site_id=site.pk)
    return site


def power_prices(
    *, site: Site, market: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[PowerPrice]:
    """A site's prices, intervals starting in [start, end) (either bound open), oldest first."""
    qs = PowerPrice.objects.filter(site=site)
    if market:
        qs = qs.filter(market=market)
    if start is not None:
        qs = qs.filter(interval_start__gte=start)
    if end is not None:
        qs = qs.filter(interval_start__lt=end)
    return qs.order_by("market", "interval_start")


def power_price_summary(*, site: Site) -> list[dict]:
    """Per market: how many intervals, the span, the step, min/mean/max price (one query)."""
    rows = (
        PowerPrice.objects.filter(site=site)
        .values("market")
        .annotate(n=Count("id"), first=Min("interval_start"), last=Max("interval_start"), step=Min("interval_minutes"))
        .annotate(low=Min("usd_per_mwh"), mean=Avg("usd_per_mwh"), high=Max("usd_per_mwh"))
        .order_by("market")
    )
    labels = dict(PowerMarket.choices)
    return [{**r, "label": labels.get(r["market"], r["market"])} for r in rows]
