"""Fleet and portfolio figures kept warm in the cache (``user_portfolio:{id}``, ``site_summary:{id}``)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Sum

from hashinsight.core.cache import register_builder
from intelligence.market import latest_snapshot
from intelligence.profitability import ProfitInputs, mining_profitability
from miners.models import Miner, PortfolioEntry

POOL_FEE_PCT = Decimal(2)


@register_builder("user_portfolio")
def portfolio_summary(*, id: int) -> dict:
    """Fleet TH/s, kW and estimated daily revenue, power cost and profit at current market figures."""
    market = latest_snapshot()
    totals = {k: Decimal(0) for k in ("hashrate_ths", "power_kw", "revenue_usd_day", "cost_usd_day", "btc_day")}
    entries = PortfolioEntry.objects.filter(user_id=id).select_related("model")
    for entry in entries:
        result = mining_profitability(
            ProfitInputs(
                hashrate_ths=entry.model.hashrate_ths, power_w=entry.model.power_w, quantity=entry.quantity,
                electricity_usd_per_kwh=entry.power_price_usd_per_kwh, btc_price_usd=market.btc_price_usd,
                difficulty=market.difficulty, block_subsidy_btc=market.block_subsidy_btc,
                fees_btc_per_block=market.fees_btc_per_block, pool_fee_pct=POOL_FEE_PCT,
            )
        )  # fmt: skip
        totals["hashrate_ths"] += result.fleet_hashrate_ths
        totals["power_kw"] += result.fleet_power_kw
        totals["revenue_usd_day"] += result.revenue_usd_per_day
        totals["cost_usd_day"] += result.power_cost_usd_per_day
        totals["btc_day"] += result.btc_per_day
    return {
        "user_id": id,
        "entries": len(entries),
        "hashrate_ths": str(totals["hashrate_ths"].quantize(Decimal("0.01"))),
        "power_kw": str(totals["power_kw"].quantize(Decimal("0.001"))),
        "btc_per_day": str(totals["btc_day"].quantize(Decimal("0.00000001"))),
        "revenue_usd_per_day": str(totals["revenue_usd_day"].quantize(Decimal("0.01"))),
        "power_cost_usd_per_day": str(totals["cost_usd_day"].quantize(Decimal("0.01"))),
        "profit_usd_per_day": str((totals["revenue_usd_day"] - totals["cost_usd_day"]).quantize(Decimal("0.01"))),
        "market_date": market.date,
    }


@register_builder("site_summary")
def site_summary(*, id: int) -> dict:
    rows = Miner.objects.filter(site_id=id).values("status").annotate(n=Count("id"), w=Sum("model__power_w"))
    return {
        "site_id": id,
        "by_status": {r["status"]: r["n"] for r in rows},
        "nominal_kw": str(sum((r["w"] or 0) for r in rows if r["status"] != Miner.Status.RETIRED) / 1000),
    }
