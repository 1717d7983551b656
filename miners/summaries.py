"""Fleet and portfolio money, kept warm in the cache, and the one place that composes it for a user.

Cached parts (``hashinsight.core.cache`` keys):
- ``site_summary:{id}``: a whole site, priced at the site's power price (the operator's view);
- ``customer_summary:{id}``: one hosting client's miners, per site, priced at its hosting rate
  (a client must never see a site's figures, which include other clients' miners);
- ``user_portfolio:{id}``: an app customer's portfolio entries, each at its own power price.

Every part is built with a constant number of queries, whatever the fleet size: miners are grouped
by model in SQL and the calculator (``intelligence.profitability``) runs once per group.

"Expected" counts only miners that are hashing (status ACTIVE): offline and maintenance miners
neither earn nor draw power, retired ones are gone. "Nominal" is every miner in service (all but
RETIRED) at its nameplate figures: what the fleet would earn if all of it hashed. Both use the
model's nominal TH/s and W, not telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count

from hashinsight.core import cache as cache_helper
from hashinsight.core.cache import register_builder
from intelligence.market import MarketSnapshot, latest_snapshot
from intelligence.profitability import (
    DEFAULT_POOL_FEE_PCT,
    ProfitInputs,
    ProfitResult,
    combine,
    mining_profitability,
)
from miners.models import Miner, MinerModel, PortfolioEntry
from sites import selectors as site_selectors
from sites.models import Customer, Site

EARNING = frozenset({Miner.Status.ACTIVE})
IN_SERVICE = frozenset(s for s in Miner.Status.values if s != Miner.Status.RETIRED)


def _profit(model: MinerModel, quantity: int, price: Decimal, market: MarketSnapshot) -> ProfitResult:
    return mining_profitability(
        ProfitInputs(
            hashrate_ths=model.hashrate_ths, power_w=model.power_w, quantity=quantity,
            electricity_usd_per_kwh=price, btc_price_usd=market.btc_price_usd, difficulty=market.difficulty,
            block_subsidy_btc=market.block_subsidy_btc, fees_btc_per_block=market.fees_btc_per_block,
            pool_fee_pct=DEFAULT_POOL_FEE_PCT,
        )
    )  # fmt: skip


def _pack(result: ProfitResult) -> dict:
    """Strings, so an entry reads the same through any cache serializer (and as JSON in the API)."""
    return {k: (None if v is None else str(v)) for k, v in result.as_dict().items() if k != "formula"}


def unpack(data: dict) -> ProfitResult:
    return ProfitResult(**{k: (None if v is None else Decimal(v)) for k, v in data.items()})


def _group_economics(rows: list[dict], models: dict[int, MinerModel], price: Decimal, market: MarketSnapshot) -> dict:
    """``rows``: ``{"zone_id", "model_id", "status", "n"}`` for one site (or one client at one site)."""
    by_status: dict[str, int] = {}
    earning: dict[int, int] = {}
    in_service: dict[int, int] = {}
    zones: dict[int, dict] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        zone = zones.setdefault(row["zone_id"], {"zone_id": row["zone_id"], "miners": 0, "nominal_w": Decimal(0)})
        zone["miners"] += row["n"]
        if row["status"] in IN_SERVICE:
            zone["nominal_w"] += models[row["model_id"]].power_w * row["n"]
            in_service[row["model_id"]] = in_service.get(row["model_id"], 0) + row["n"]
        if row["status"] in EARNING:
            earning[row["model_id"]] = earning.get(row["model_id"], 0) + row["n"]
    expected = combine(_profit(models[m], n, price, market) for m, n in earning.items())
    nominal = combine(_profit(models[m], n, price, market) for m, n in in_service.items())
    return {
        "by_status": by_status,
        "nominal_kw": str(nominal.fleet_power_kw),
        "expected": _pack(expected),
        "nominal": _pack(nominal),
        "zones": [
            {"zone_id": z["zone_id"], "miners": z["miners"], "nominal_kw": str(z["nominal_w"] / 1000)}
            for z in zones.values()
        ],
    }


def _models_of(rows: list[dict]) -> dict[int, MinerModel]:
    return MinerModel.objects.in_bulk({r["model_id"] for r in rows})


@register_builder("site_summary")
def site_summary(*, id: int) -> dict:
    """A whole site at its power price: three queries for any number of miners."""
    market = latest_snapshot()
    price = Site.objects.filter(pk=id).values_list("power_price_usd_per_kwh", flat=True).first()
    rows = list(
        Miner.objects.filter(site_id=id).values("zone_id", "model_id", "status").annotate(n=Count("id")).order_by()
    )
    return {
        "site_id": id,
        "power_price_usd_per_kwh": str(price or 0),
        "market_date": market.date,
        **_group_economics(rows, _models_of(rows), price or Decimal(0), market),
    }


@register_builder("customer_summary")
def customer_summary(*, id: int) -> dict:
    """One hosting client's miners, per site, at its hosting rate (what it pays per kWh)."""
    market = latest_snapshot()
    rate = Customer.objects.filter(pk=id).values_list("hosting_rate_usd_per_kwh", flat=True).first() or Decimal(0)
    rows = list(
        Miner.objects.filter(customer_id=id)
        .values("site_id", "zone_id", "model_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    models = _models_of(rows)
    site_ids = sorted({r["site_id"] for r in rows})
    return {
        "customer_id": id,
        "power_price_usd_per_kwh": str(rate),
        "market_date": market.date,
        "sites": [
            {"site_id": s, **_group_economics([r for r in rows if r["site_id"] == s], models, rate, market)}
            for s in site_ids
        ],
    }


@register_builder("user_portfolio")
def portfolio_summary(*, id: int) -> dict:
    """Fleet TH/s, kW and estimated daily revenue, power cost and profit at current market figures
    (the body of ``/api/v1/portfolio/summary``), totals and per entry."""
    market = latest_snapshot()
    entries = list(PortfolioEntry.objects.filter(user_id=id).select_related("model"))
    results = {e.pk: _profit(e.model, e.quantity, e.power_price_usd_per_kwh, market) for e in entries}
    total = combine(results.values())
    return {
        "user_id": id,
        "entries": len(entries),
        **_rounded(total),
        "market_date": market.date,
        "by_entry": [{"id": pk, **_rounded(r)} for pk, r in results.items()],
    }


def _rounded(r: ProfitResult) -> dict:
    def q(value, places):
        return None if value is None else str(value.quantize(Decimal(places)))

    return {
        "hashrate_ths": q(r.fleet_hashrate_ths, "0.01"),
        "power_kw": q(r.fleet_power_kw, "0.001"),
        "btc_per_day": q(r.btc_per_day, "0.00000001"),
        "revenue_usd_per_day": q(r.revenue_usd_per_day, "0.01"),
        "power_cost_usd_per_day": q(r.power_cost_usd_per_day, "0.01"),
        "profit_usd_per_day": q(r.profit_usd_per_day, "0.01"),
        "margin_pct": q(r.margin_pct, "0.1"),
        "break_even_power_usd_per_kwh": q(r.break_even_electricity_usd_per_kwh, "0.00001"),
        "break_even_btc_price_usd": q(r.break_even_btc_price_usd, "0.01"),
    }


# --- Composition for a user ----------------------------------------------------------------------


@dataclass
class SiteMoney:
    site: Site
    by_status: dict[str, int]
    expected: ProfitResult
    nominal: ProfitResult
    power_prices: set[Decimal] = field(default_factory=set)
    zones: dict[int, dict] = field(default_factory=dict)  # zone id → {"miners", "nominal_kw"}

    @property
    def power_price_usd_per_kwh(self) -> Decimal | None:
        """The one price these figures used, or None when several did (clients at different rates)."""
        return next(iter(self.power_prices)) if len(self.power_prices) == 1 else None

    @property
    def in_service(self) -> int:
        return sum(n for s, n in self.by_status.items() if s in IN_SERVICE)


@dataclass
class FleetMoney:
    sites: list[SiteMoney]
    expected: ProfitResult
    nominal: ProfitResult
    market_date: str
    priced_at: str  # "site": each site's power price; "hosting": the client's hosting rate
    cache_state: str  # the worst of the parts': miss > stale > bypass > hit

    @property
    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for s in self.sites:
            for status, n in s.by_status.items():
                totals[status] = totals.get(status, 0) + n
        return totals

    @property
    def in_service(self) -> int:
        return sum(s.in_service for s in self.sites)

    @property
    def hosting(self) -> bool:
        return self.priced_at == "hosting"

    @property
    def power_price_usd_per_kwh(self) -> Decimal | None:
        """The one price all sites use, or None when they differ."""
        prices = set().union(*(s.power_prices for s in self.sites))
        return next(iter(prices)) if len(prices) == 1 else None


_STATE_RANK = {"hit": 0, "bypass": 1, "stale": 2, "miss": 3}


def fleet_money(*, user, site: Site | None = None) -> FleetMoney | None:
    """The user's fleet (or one ``site`` of it) from cached parts; None for roles without a fleet.

    The user's scope (``sites.selectors.scope_of``) decides the parts: a scope of every site or of
    some sites reads whole-site parts for the sites it sees; a scope of hosting clients reads those
    clients' own parts, so a client never sees figures of miners it does not own.
    Queries: the grant ids and the site list; the rest comes from the cache."""
    scope = site_selectors.scope_of(user)
    if scope.kind == "none":
        return None
    sites_qs = site_selectors.site_list(user=user)
    if site is not None:
        sites_qs = sites_qs.filter(pk=site.pk)
    sites = {s.pk: s for s in sites_qs}
    rows: dict[int, SiteMoney] = {}
    states, dates = [], set()

    def add(site_id: int, part: dict, price: str) -> None:
        if site_id not in sites:
            return
        row = rows.setdefault(
            site_id, SiteMoney(site=sites[site_id], by_status={}, expected=combine([]), nominal=combine([]))
        )
        for status, n in part["by_status"].items():
            row.by_status[status] = row.by_status.get(status, 0) + n
        for z in part.get("zones", []):  # entries built before zones were kept have none
            zone = row.zones.setdefault(z["zone_id"], {"miners": 0, "nominal_kw": Decimal(0)})
            zone["miners"] += z["miners"]
            zone["nominal_kw"] += Decimal(z["nominal_kw"])
        row.expected = combine([row.expected, unpack(part["expected"])])
        row.nominal = combine([row.nominal, unpack(part["nominal"])])
        row.power_prices.add(Decimal(price))

    if scope.kind in ("all", "sites"):
        priced_at = "site"
        for site_id in sites:
            cached = cache_helper.get("site_summary", id=site_id)
            states.append(cached.state)
            dates.add(cached.value["market_date"])
            add(site_id, cached.value, cached.value["power_price_usd_per_kwh"])
    else:  # a hosting client's scope
        priced_at = "hosting"
        for customer_id in scope.ids:
            cached = cache_helper.get("customer_summary", id=customer_id)
            states.append(cached.state)
            dates.add(cached.value["market_date"])
            for part in cached.value["sites"]:
                add(part["site_id"], part, cached.value["power_price_usd_per_kwh"])
    ordered = [rows[pk] for pk in sites if pk in rows]
    return FleetMoney(
        sites=ordered,
        expected=combine(r.expected for r in ordered),
        nominal=combine(r.nominal for r in ordered),
        market_date=min(dates) if dates else latest_snapshot().date,
        priced_at=priced_at,
        cache_state=max(states, key=_STATE_RANK.__getitem__) if states else "hit",
    )
