"""ROI attribution for a fleet the user may see: why profit changed between two periods (``GET /api/explain/roi``).

This module gathers each period's inputs from the database and hands them to the pure
``intelligence.algorithms.explain.explain_profit_change`` (exact Shapley parts over BTC price, difficulty, offline
rate and power price, plus fees and a residual, summing exactly to the change). Where each input comes from:

- **market** (BTC price, difficulty, fees per block): the average over the period's ``MarketDay`` rows
  (``intelligence.market_data.market_days``: the shipped history and any live feed's days; while the table is
  empty, the shipped file through the loader's own reader). The block subsidy
  is the halving schedule's, averaged over the same days. Days without a market row are named in
  ``data_quality``; a period with no fee figure at all takes the other period's average fees (so a gap in the
  data shows as no change in fees, not an invented one), or the calculator's typical level when neither has
  any; named too.
- **fleet** (TH/s, kW): the nominal figures of the scoped miners' models (retired miners excluded), the same in
  both periods: a miner record carries no history of when it was installed, so fleet growth shows in the
  residual through the measured profit, not in the fleet inputs.
- **offline rate**: 1 − the mean daily uptime of the scoped miners' ``telemetry.Daily`` rows over the period (each
  miner-day weighs the same); 0 when there is no telemetry (named in ``data_quality``).
- **power price**: per site, the average day-ahead ``PowerPrice`` over the period; for a site without prices
  the ``power_price_usd_per_kwh`` override, else ``DEFAULT_POWER_PRICE_USD_PER_KWH``; sites weighted by their
  fleet kW. A hosting client's miners (scope ``customer:<id>``, or a hosting client's own fleet) are priced at
  the client's contract hosting rate: that is what the client pays, and the site's wholesale price is not the
  client's to see. An app customer's portfolio uses the prices stated on its entries.
- **actual profit**: measured from telemetry (each day's energy × that day's power price, each day's hashrate ×
  that day's hashprice less the pool fee) when the scoped miners reported at least ``TELEMETRY_COVERAGE_MIN`` of
  their miner-days; else the model's profit. ``profit_source`` says which, per period.

Results go through the cache helper under ``roi_explain:{digest}`` (the digest of the full query and the resolved
scope), fresh for ``CACHE_FRESH_S``. The scope is resolved for the user *before* the cache is read, so a cached
answer is only ever served to someone whose scope resolves to the same miners.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db.models import Avg, Count, Max, Min, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone, translation
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from hashinsight.core import cache as cache_helper
from hashinsight.core.dates import parse_day_or_moment
from hashinsight.core.errors import DomainError
from intelligence.algorithms.explain import FACTORS, ExplainError, PeriodInputs, explain_profit_change
from intelligence.algorithms.hashprice import BLOCKS_PER_DAY, block_subsidy_btc_on, hashprice_usd_per_th_day
from intelligence.market import DATA as SHIPPED_CSV
from intelligence.market import FALLBACK_FEES_BTC_PER_BLOCK
from intelligence.profitability import DEFAULT_POOL_FEE_PCT
from sites.selectors import Scope, customer_list, scope_of, site_list

# Used for a site with no power prices in the period when the request names none: a typical US industrial
# mining rate (the calculator's users quote 0.04–0.07 USD/kWh).
DEFAULT_POWER_PRICE_USD_PER_KWH = Decimal("0.05")
MAX_SPAN_DAYS = 366
DEFAULT_PERIOD_DAYS = 30
# Telemetry must cover this share of the scoped miners' miner-days for the measured profit to be used.
TELEMETRY_COVERAGE_MIN = Decimal("0.95")
CACHE_FRESH_S = 120
DATE_PARAMS = ("before_start", "before_end", "after_start", "after_end")
# The shown parts: the four factors, then fees and the residual together (their split is in parts_detail_usd).
SHOWN_PARTS = (*FACTORS, "fees_residual")
MWH = Decimal(1000)
USD_CENT = Decimal("0.01")


def _invalid(param: str, message: str, **details) -> DomainError:
    return DomainError(f"invalid_{param}", message, details={"parameter": param, **details})


# ---------------------------------------------------------------------------------------------------
# Market days: the table, or the shipped CSV while the table is empty.


@dataclass(frozen=True)
class MarketRow:
    day: date
    btc_price_usd: Decimal
    difficulty: Decimal
    fees_btc: Decimal | None  # the day's total


@lru_cache(maxsize=1)
def _shipped_rows() -> tuple[MarketRow, ...]:
    """The shipped history, read by the market loader's own reader (used only while the table is empty)."""
    from intelligence.market_data import read_market_file

    days, _skipped = read_market_file(SHIPPED_CSV)
    return tuple(MarketRow(d.date, d.btc_price_usd, d.difficulty, d.fees_btc) for d in days)


def _table_has_rows() -> bool:
    from intelligence.models import MarketDay

    return MarketDay.objects.exists()


def market_bounds() -> tuple[date, date] | None:
    """The first and last market day there is data for (None: none at all)."""
    from intelligence.models import MarketDay

    if _table_has_rows():
        b = MarketDay.objects.aggregate(first=Min("date"), last=Max("date"))
        return b["first"], b["last"]
    rows = _shipped_rows()
    return (rows[0].day, rows[-1].day) if rows else None


def market_rows(start: date, end: date) -> list[MarketRow]:
    if _table_has_rows():
        from intelligence.market_data import market_days

        qs = market_days(start, end).only("date", "btc_price_usd", "difficulty", "fees_btc")
        return [MarketRow(m.date, Decimal(m.btc_price_usd), Decimal(m.difficulty), m.fees_btc) for m in qs]
    return [r for r in _shipped_rows() if start <= r.day <= end]


# ---------------------------------------------------------------------------------------------------
# The request: scope and periods, validated.


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


def default_periods(last: date) -> tuple[Period, Period]:
    """The last ``DEFAULT_PERIOD_DAYS`` days of market data against the same number of days before them."""
    after = Period(last - timedelta(days=DEFAULT_PERIOD_DAYS - 1), last)
    before_end = after.start - timedelta(days=1)
    return Period(before_end - timedelta(days=DEFAULT_PERIOD_DAYS - 1), before_end), after


def parse_periods(query) -> tuple[Period, Period]:
    """The two periods from the query string (all four dates, or none for the default), checked: real dates,
    each period in order, the first before the second, within the market data, at most ``MAX_SPAN_DAYS`` each."""
    bounds = market_bounds()
    if bounds is None:
        raise DomainError("no_market_data", _("There is no market data to compare periods with."), status=409)
    first, last = bounds
    given = {p: (query.get(p) or "").strip() for p in DATE_PARAMS}
    if not any(given.values()):
        before, after = default_periods(last)
        if before.start < first:
            raise _invalid("before_start", _("The market data is too short for the default periods; name them."))
        return before, after
    days = {}
    for param in DATE_PARAMS:
        raw = given[param]
        if not raw:
            raise _invalid(param, _("Give all four dates, or none for the default periods."), reason="missing")
        moment, day = parse_day_or_moment(raw)
        if moment is None:
            raise _invalid(param, _("Must be a date, e.g. 2025-06-30."), reason="format", value=raw[:40])
        days[param] = day or moment.astimezone(UTC).date()
    for param, value in days.items():
        if not first <= value <= last:
            raise _invalid(
                param,
                _("Must be within the market data, %(first)s to %(last)s.") % {"first": first, "last": last},
                reason="outside_data",
                first=first.isoformat(),
                last=last.isoformat(),
            )
    order = [
        ("before_end", days["before_start"] <= days["before_end"], _("before_end must not be before before_start.")),
        ("after_end", days["after_start"] <= days["after_end"], _("after_end must not be before after_start.")),
        ("after_start", days["before_end"] < days["after_start"], _("after_start must be after before_end.")),
    ]
    for param, ok, message in order:
        if not ok:
            raise _invalid(param, message, reason="order")
    before = Period(days["before_start"], days["before_end"])
    after = Period(days["after_start"], days["after_end"])
    for param, period in (("before_end", before), ("after_end", after)):
        if period.days > MAX_SPAN_DAYS:
            raise _invalid(
                param,
                _("A period spans at most %(n)s days.") % {"n": MAX_SPAN_DAYS},
                reason="span",
                max_days=MAX_SPAN_DAYS,
            )
    return before, after


def _decimal_param(query, param: str, *, positive: bool) -> Decimal | None:
    raw = (query.get(param) or "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        value = None
    if value is None or not value.is_finite() or value < 0 or (positive and value == 0) or value > Decimal(10**12):
        message = _("Must be a number greater than zero.") if positive else _("Must be a number, zero or more.")
        raise _invalid(param, message, value=raw[:40])
    return value


def resolve_scope(*, user, raw: str | None) -> dict:
    """The miners the answer covers, as plain data (the cache key and the builder's input). ``user`` (default):
    everything the caller sees (an app customer: its portfolio); ``site:<id>`` / ``customer:<id>``: that site's
    or client's miners within the caller's scope — hidden or unknown ones are a 404."""
    raw = (raw or "user").strip()
    scope = scope_of(user)
    restrict = {"kind": scope.kind, "ids": list(scope.ids)}
    if raw == "user":
        if scope.kind == "none":
            return {"kind": "user", "id": user.pk, "portfolio_user": user.pk}
        pricing = "customer" if scope.kind == "customers" else "site"
        return {"kind": "user", "id": user.pk, "restrict": restrict, "pricing": pricing}
    kind, _sep, ident = raw.partition(":")
    if kind not in ("site", "customer") or not ident.isdigit() or len(ident) > 12:
        raise _invalid("scope", _("Scope must be user, site:<id> or customer:<id>."), value=raw[:40])
    pk = int(ident)
    visible = site_list(user=user) if kind == "site" else customer_list(user=user)
    if not visible.filter(pk=pk).exists():
        raise DomainError("not_found", _("Not found."), status=404)
    pricing = "customer" if kind == "customer" or scope.kind == "customers" else "site"
    return {"kind": kind, "id": pk, "restrict": restrict, "pricing": pricing, f"{kind}_id": pk}


def parse_request(*, user, query) -> dict:
    """Everything the answer depends on, validated, as canonical plain data."""
    scope = resolve_scope(user=user, raw=query.get("scope"))
    before, after = parse_periods(query)
    override = _decimal_param(query, "power_price_usd_per_kwh", positive=False)
    capex = _decimal_param(query, "capex_usd", positive=True)
    return {
        "scope": scope,
        "before": before.as_dict(),
        "after": after.as_dict(),
        "power_price_usd_per_kwh": None if override is None else str(override),
        "capex_usd": None if capex is None else str(capex),
        "language": get_language() or settings.LANGUAGE_CODE,  # the notes and labels are in the reader's language
    }


def roi_explain(*, user, query, cached: bool = True) -> cache_helper.Cached:
    """The attribution for ``user`` and the query string ``query`` (a 400/404 ``DomainError`` when invalid)."""
    request = parse_request(user=user, query=query)
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    if not cached:
        return cache_helper.Cached(build_roi_explain(digest=digest, request=canonical), "bypass")
    return cache_helper.get("roi_explain", fresh_s=CACHE_FRESH_S, max_stale_s=0, digest=digest, request=canonical)


# ---------------------------------------------------------------------------------------------------
# Building the answer.


def _scoped_miners(scope: dict):
    from miners.models import Miner, MinerStatus

    qs = Miner.objects.exclude(status=MinerStatus.RETIRED)
    restrict = Scope(scope["restrict"]["kind"], tuple(scope["restrict"]["ids"]))
    q = restrict.q()
    if q is not None:
        qs = qs.filter(q)
    if scope.get("site_id"):
        qs = qs.filter(site_id=scope["site_id"])
    if scope.get("customer_id"):
        qs = qs.filter(customer_id=scope["customer_id"])
    return qs


def _dec(x, quantum: str) -> Decimal:
    return Decimal(str(x)).quantize(Decimal(quantum))


@dataclass
class Fleet:
    """The scoped fleet by price group (a site, a hosting client, or a portfolio entry)."""

    miners: int
    ths: Decimal
    kw: Decimal
    groups: dict  # key -> {"kw": Decimal, "ths": Decimal, "fixed_price": Decimal | None, "site": id | None}
    label: str


def _fleet(scope: dict) -> Fleet:
    if "portfolio_user" in scope:
        from miners.models import PortfolioEntry

        groups = {}
        miners = 0
        for e in PortfolioEntry.objects.filter(user_id=scope["portfolio_user"]).select_related("model"):
            kw = e.model.power_w * e.quantity / 1000
            groups[f"entry:{e.pk}"] = {
                "kw": kw,
                "ths": e.model.hashrate_ths * e.quantity,
                "fixed_price": e.power_price_usd_per_kwh,
                "site": None,
                "source": "portfolio",
            }
            miners += e.quantity
        return Fleet(
            miners,
            _sum(g["ths"] for g in groups.values()),
            _sum(g["kw"] for g in groups.values()),
            groups,
            _("Your portfolio"),
        )
    from sites.models import Customer, Site

    qs = _scoped_miners(scope)
    by = "customer_id" if scope["pricing"] == "customer" else "site_id"
    rows = qs.values(by).annotate(n=Count("pk"), ths=Sum("model__hashrate_ths"), w=Sum("model__power_w"))
    rates = {}
    if by == "customer_id":
        ids = [r[by] for r in rows if r[by] is not None]
        rates = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "hosting_rate_usd_per_kwh"))
    groups = {}
    for r in rows:
        groups[f"{by}:{r[by]}"] = {
            "kw": Decimal(str(r["w"])) / 1000,
            "ths": Decimal(str(r["ths"])),
            "fixed_price": rates.get(r[by]),
            "site": r[by] if by == "site_id" else None,
            "source": "hosting_rate" if by == "customer_id" else None,
            "miners": r["n"],
        }
    if scope["kind"] == "site":
        label = Site.objects.filter(pk=scope["id"]).values_list("name", flat=True).first() or ""
    elif scope["kind"] == "customer":
        label = Customer.objects.filter(pk=scope["id"]).values_list("company", flat=True).first() or ""
    else:
        label = _("All you can see")
    return Fleet(
        sum(g["miners"] for g in groups.values()),
        _sum(g["ths"] for g in groups.values()),
        _sum(g["kw"] for g in groups.values()),
        groups,
        label,
    )


def _sum(values) -> Decimal:
    return sum(values, Decimal(0))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _site_prices(site_ids: list[int], period: Period) -> tuple[dict, dict]:
    """(site -> average day-ahead USD/kWh over the period, (site, day) -> that day's average USD/kWh)."""
    from intelligence.models import PowerMarket, PowerPrice

    if not site_ids:
        return {}, {}
    qs = PowerPrice.objects.filter(
        site_id__in=site_ids,
        market=PowerMarket.DAY_AHEAD,
        interval_start__gte=_day_start(period.start),
        interval_start__lt=_day_start(period.end + timedelta(days=1)),
    )
    daily = {}
    for r in (
        qs.annotate(day=TruncDate("interval_start", tzinfo=UTC)).values("site_id", "day").annotate(p=Avg("usd_per_mwh"))
    ):
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        daily[(r["site_id"], day)] = _dec(r["p"], "0.000001") / MWH
    overall = {
        r["site_id"]: _dec(r["p"], "0.000001") / MWH for r in qs.values("site_id").annotate(p=Avg("usd_per_mwh"))
    }
    return overall, daily


@dataclass
class Pricing:
    usd_per_kwh: Decimal
    source: str  # site | hosting_rate | portfolio | override | default | mixed
    by_group: dict  # group key -> USD/kWh over the period
    by_site_day: dict  # (site, day) -> USD/kWh


def _pricing(fleet: Fleet, period: Period, override: Decimal | None, notes: list, label: str) -> Pricing:
    site_ids = [g["site"] for g in fleet.groups.values() if g["site"] is not None]
    overall, daily = _site_prices(site_ids, period)
    fallback, fallback_source = (
        (override, "override") if override is not None else (DEFAULT_POWER_PRICE_USD_PER_KWH, "default")
    )
    by_group, sources, unpriced = {}, set(), 0
    for key, g in fleet.groups.items():
        if g["fixed_price"] is not None:
            by_group[key], src = Decimal(g["fixed_price"]), g["source"]
        elif g["site"] is not None and g["site"] in overall:
            by_group[key], src = overall[g["site"]], "site"
        else:
            by_group[key], src = fallback, fallback_source
            unpriced += 1
        sources.add(src)
    if unpriced and site_ids:
        notes.append(
            _note(
                "no_power_prices",
                _("%(period)s: %(n)s site(s) have no day-ahead power prices; priced at %(price)s USD/kWh.")
                % {"period": _period_name(label), "n": unpriced, "price": fallback},
                period=label,
                price_source=fallback_source,
            )
        )
    if fleet.kw > 0:
        price = _sum(by_group[k] * g["kw"] for k, g in fleet.groups.items()) / fleet.kw
    else:
        price = fallback
        sources = sources or {fallback_source}
    source = sources.pop() if len(sources) == 1 else "mixed"
    return Pricing(price.quantize(Decimal("0.000001")), source, by_group, daily)


def _period_name(label: str) -> str:
    return _("Before") if label == "before" else _("After")


def _note(code: str, message: str, **extra) -> dict:
    return {"code": code, "message": str(message), **extra}


@dataclass
class Telemetry:
    miner_days: int
    offline_rate: Decimal | None
    by_site_day: list  # rows: site_id, customer_id, day, ths, kwh


def _telemetry(scope: dict, period: Period) -> Telemetry:
    from telemetry.models import Daily

    if "portfolio_user" in scope:
        return Telemetry(0, None, [])
    miners = _scoped_miners(scope).values("pk")
    qs = Daily.objects.filter(miner_id__in=miners, day__gte=period.start, day__lte=period.end)
    agg = qs.aggregate(n=Count("pk"), up=Sum("uptime_pct"))
    if not agg["n"]:
        return Telemetry(0, None, [])
    offline = 1 - Decimal(str(agg["up"])) / 100 / agg["n"]
    offline = min(max(offline.quantize(Decimal("0.000001")), Decimal(0)), Decimal(1))
    rows = list(qs.values("site_id", "customer_id", "day").annotate(ths=Sum("avg_hashrate_ths"), kwh=Sum("energy_kwh")))
    return Telemetry(agg["n"], offline, rows)


def _known_fees_per_block(rows: list[MarketRow]) -> tuple[Decimal | None, int]:
    """The average fees per block over the days that have a fee figure (None when none has), and how many do."""
    fees = [r.fees_btc / BLOCKS_PER_DAY for r in rows if r.fees_btc is not None]
    if not fees:
        return None, 0
    return (_sum(fees) / len(fees)).quantize(Decimal("0.00000001")), len(fees)


def _period_market(period: Period, label: str) -> list[MarketRow]:
    rows = market_rows(period.start, period.end)
    if not rows:
        raise _invalid(f"{label}_start", _("No market data in this period."), reason="outside_data")
    return rows


def _resolve_fees(rows_by_label: dict, notes: list) -> dict:
    """Fees per block for each period. A period without any fee figure (the shipped history has none from
    2024-04-28 to 2025-11-04) takes the other period's average, so the missing figure shows as no change in fees
    rather than as an invented one; with none in either, the calculator's typical level."""
    known = {label: _known_fees_per_block(rows) for label, rows in rows_by_label.items()}
    out = {}
    for label, rows in rows_by_label.items():
        fees, n = known[label]
        other = next((f for lbl, (f, _n) in known.items() if lbl != label and f is not None), None)
        if fees is None:
            fees = other if other is not None else FALLBACK_FEES_BTC_PER_BLOCK
            why = _("the other period's average") if other is not None else _("a typical level")
            notes.append(
                _note(
                    "fees_unknown",
                    _("%(period)s: no fee figures; %(fees)s BTC per block assumed (%(why)s).")
                    % {"period": _period_name(label), "fees": fees, "why": why},
                    period=label,
                )
            )
        elif n < len(rows):
            notes.append(
                _note(
                    "fees_days_missing",
                    _("%(period)s: fees known on %(k)s of %(m)s days; the average of those is used.")
                    % {"period": _period_name(label), "k": n, "m": len(rows)},
                    period=label,
                )
            )
        out[label] = fees
    return out


def _market_inputs(period: Period, rows: list[MarketRow], fees_avg: Decimal, notes: list, label: str):
    """The period's average market, and each day's hashprice (for the measured profit)."""
    n = Decimal(len(rows))
    missing = period.days - len(rows)
    if missing:
        notes.append(
            _note(
                "market_days_missing",
                _("%(period)s: %(n)s day(s) without market data; averages over the %(m)s days with data.")
                % {"period": _period_name(label), "n": missing, "m": len(rows)},
                period=label,
                days=missing,
            )
        )
    subsidies = {r.day: block_subsidy_btc_on(r.day) for r in rows}
    market = {
        "btc_price_usd": (_sum(r.btc_price_usd for r in rows) / n).quantize(USD_CENT),
        "difficulty": (_sum(r.difficulty for r in rows) / n).quantize(Decimal(1)),
        "fees_btc_per_block": fees_avg,
        "block_subsidy_btc": (_sum(subsidies.values()) / n).quantize(Decimal("0.00000001")),
        "market_days": len(rows),
    }
    per_day = {
        r.day: hashprice_usd_per_th_day(
            r.btc_price_usd,
            r.difficulty,
            subsidies[r.day],
            r.fees_btc / BLOCKS_PER_DAY if r.fees_btc is not None else fees_avg,
        )
        for r in rows
    }
    return market, per_day


def _measured_profit(
    tel: Telemetry, pricing: Pricing, fleet: Fleet, hashprice_by_day: dict, period_hp: Decimal, pricing_by: str
) -> Decimal:
    keep = 1 - DEFAULT_POOL_FEE_PCT / 100
    total = Decimal(0)
    for r in tel.by_site_day:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        hp = hashprice_by_day.get(day, period_hp)
        key = f"{pricing_by}:{r[pricing_by]}"
        price = pricing.by_site_day.get((r["site_id"], day)) if pricing_by == "site_id" else None
        if price is None:
            price = pricing.by_group.get(key, pricing.usd_per_kwh)
        total += Decimal(str(r["ths"] or 0)) * hp * keep - Decimal(str(r["kwh"] or 0)) * price
    return total.quantize(USD_CENT)


def _period_inputs(scope, fleet, period, label, rows, fees, override, capex, notes) -> tuple[PeriodInputs, dict]:
    market, hp_by_day = _market_inputs(period, rows, fees, notes, label)
    pricing = _pricing(fleet, period, override, notes, label)
    tel = _telemetry(scope, period)
    expected = fleet.miners * period.days
    coverage = Decimal(tel.miner_days) / expected if expected else Decimal(0)
    if tel.offline_rate is None and fleet.miners and "portfolio_user" not in scope:
        notes.append(
            _note(
                "no_telemetry",
                _("%(period)s: no telemetry for these miners; offline rate taken as 0 and the profit modelled.")
                % {"period": _period_name(label)},
                period=label,
            )
        )
    elif tel.offline_rate is not None and coverage < 1:
        notes.append(
            _note(
                "telemetry_partial",
                _("%(period)s: telemetry covers %(pct)s %% of the miner-days (%(k)s of %(n)s).")
                % {
                    "period": _period_name(label),
                    "pct": (coverage * 100).quantize(Decimal("0.1")),
                    "k": tel.miner_days,
                    "n": expected,
                },
                period=label,
            )
        )
    offline = tel.offline_rate if tel.offline_rate is not None else Decimal("0.000000")
    measured = tel.offline_rate is not None and coverage >= TELEMETRY_COVERAGE_MIN
    period_hp = hashprice_usd_per_th_day(
        market["btc_price_usd"], market["difficulty"], market["block_subsidy_btc"], market["fees_btc_per_block"]
    )
    actual = None
    if measured:
        by = "customer_id" if scope.get("pricing") == "customer" else "site_id"
        actual = _measured_profit(tel, pricing, fleet, hp_by_day, period_hp, by)
    inputs = PeriodInputs(
        days=Decimal(period.days),
        btc_price_usd=market["btc_price_usd"],
        difficulty=market["difficulty"],
        offline_rate=offline,
        power_price_usd_per_kwh=pricing.usd_per_kwh,
        fees_btc_per_block=market["fees_btc_per_block"],
        block_subsidy_btc=market["block_subsidy_btc"],
        fleet_ths=fleet.ths,
        fleet_kw=fleet.kw,
        pool_fee_pct=DEFAULT_POOL_FEE_PCT,
        capex_usd=capex,
        actual_profit_usd=actual,
    )
    shown = {
        **period.as_dict(),
        "btc_price_usd": str(inputs.btc_price_usd),
        "difficulty": str(inputs.difficulty),
        "fees_btc_per_block": str(inputs.fees_btc_per_block),
        "block_subsidy_btc": str(inputs.block_subsidy_btc),
        "hashprice_usd_per_th_day": str(period_hp.quantize(Decimal("0.0001"))),
        "offline_rate": str(inputs.offline_rate),
        "power_price_usd_per_kwh": str(inputs.power_price_usd_per_kwh),
        "power_price_source": pricing.source,
        "fleet_ths": str(inputs.fleet_ths.quantize(Decimal("0.01"))),
        "fleet_kw": str(inputs.fleet_kw.quantize(Decimal("0.001"))),
        "pool_fee_pct": str(inputs.pool_fee_pct),
        "market_days": market["market_days"],
        "telemetry_miner_days": tel.miner_days,
        "telemetry_coverage": str(coverage.quantize(Decimal("0.0001"))),
        "profit_source": "telemetry" if measured else "model",
    }
    return inputs, shown


def build_roi_explain(*, digest: str, request: str) -> dict:
    """The answer for one canonical request (see ``parse_request``); registered as the cache builder."""
    req = json.loads(request)
    with translation.override(req.get("language") or settings.LANGUAGE_CODE):
        return _build(req)


def _build(req: dict) -> dict:
    scope = req["scope"]
    before, after = (
        Period(date.fromisoformat(req[k]["start"]), date.fromisoformat(req[k]["end"])) for k in ("before", "after")
    )
    override = None if req["power_price_usd_per_kwh"] is None else Decimal(req["power_price_usd_per_kwh"])
    capex = None if req["capex_usd"] is None else Decimal(req["capex_usd"])
    notes: list[dict] = []
    fleet = _fleet(scope)
    if not fleet.miners:
        notes.append(_note("no_miners", _("No miners in this scope: every figure is zero.")))
    rows = {"before": _period_market(before, "before"), "after": _period_market(after, "after")}
    fees = _resolve_fees(rows, notes)
    in_before, shown_before = _period_inputs(
        scope, fleet, before, "before", rows["before"], fees["before"], override, capex, notes
    )
    in_after, shown_after = _period_inputs(
        scope, fleet, after, "after", rows["after"], fees["after"], override, capex, notes
    )
    if "portfolio_user" not in scope:
        without = _miners_without_telemetry(scope, before, after)
        if without:
            notes.append(
                _note(
                    "miners_without_telemetry",
                    _("%(n)s of %(m)s miners have no telemetry in either period.") % {"n": without, "m": fleet.miners},
                    miners=without,
                )
            )
    else:
        without = 0
    try:
        attribution = explain_profit_change(in_before, in_after)
    except ExplainError as exc:  # inputs come from our own data; say which one rather than a 500
        raise DomainError("invalid_inputs", exc.message, details={"field": exc.field}) from exc
    parts = attribution.parts_usd
    shown_parts = {k: str(parts[k]) for k in FACTORS}
    shown_parts["fees_residual"] = str(parts["fees"] + parts["residual"])
    roi = None
    if attribution.roi_parts_pp is not None:
        rp = attribution.roi_parts_pp
        roi_parts = {k: str(rp[k]) for k in FACTORS}
        roi_parts["fees_residual"] = str(rp["fees"] + rp["residual"] + rp.get("capex", Decimal(0)))
        roi = {
            "capex_usd": str(capex),
            "before_pct": str(attribution.roi_before_pct),
            "after_pct": str(attribution.roi_after_pct),
            "change_pp": str(attribution.roi_change_pp),
            "parts_pp": roi_parts,
            "note": _("ROI of each period: its profit ÷ capex × 100 (not annualised)."),
        }
    shown_before["profit_usd"] = str(attribution.profit_before_usd)
    shown_after["profit_usd"] = str(attribution.profit_after_usd)
    return {
        "scope": {
            "kind": scope["kind"],
            "id": scope["id"],
            "label": str(fleet.label),
            "miners": fleet.miners,
            "miners_without_telemetry": without,
        },
        "before": shown_before,
        "after": shown_after,
        "profit_before_usd": str(attribution.profit_before_usd),
        "profit_after_usd": str(attribution.profit_after_usd),
        "change_usd": str(attribution.change_usd),
        "parts_usd": shown_parts,
        "parts_detail_usd": {"fees": str(parts["fees"]), "residual": str(parts["residual"])},
        "roi": roi,
        "data_quality": notes,
        "method": attribution.as_dict()["method"],
        "generated_at": timezone.now().isoformat(timespec="seconds"),
    }


def _miners_without_telemetry(scope: dict, before: Period, after: Period) -> int:
    from django.db.models import Q

    from telemetry.models import Daily

    miners = _scoped_miners(scope)
    days = Q(day__gte=before.start, day__lte=before.end) | Q(day__gte=after.start, day__lte=after.end)
    reported = Daily.objects.filter(days, miner_id__in=miners.values("pk"))
    return miners.exclude(pk__in=reported.values("miner_id")).count()


cache_helper.register_builder("roi_explain")(build_roi_explain)
