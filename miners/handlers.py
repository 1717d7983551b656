"""What follows a change to miners or portfolios: invalidate, then one coalesced recalculation."""

from hashinsight.core import cache as cache_helper
from hashinsight.events.coalesce import request_work
from hashinsight.events.registry import handles


@handles("miner.created", "miners.bulk_imported")
def recalculate_sites(payload, event) -> None:
    site_ids = [payload.site_id] if hasattr(payload, "site_id") else payload.site_ids
    for site_id in site_ids:
        cache_helper.invalidate("site_summary", id=site_id)
        request_work(f"recalc:site:{site_id}", "miners.recalculate_site", [site_id])


@handles("portfolio.changed")
def recalculate_portfolio(payload, event) -> None:
    cache_helper.invalidate("user_portfolio", id=payload.user_id)
    request_work(f"recalc:user:{payload.user_id}", "miners.recalculate_user_all", [payload.user_id])
