"""What follows a change to miners or portfolios: invalidate, then one coalesced recalculation.
Batch handlers: a burst of events touches each user or site once."""

from hashinsight.core import cache as cache_helper
from hashinsight.events.coalesce import request_work_many
from hashinsight.events.registry import handles


@handles("miner.created", "miners.bulk_imported", batch=True)
def recalculate_sites(pairs) -> None:
    site_ids = set()
    for payload, _event in pairs:
        site_ids.update([payload.site_id] if hasattr(payload, "site_id") else payload.site_ids)
    cache_helper.invalidate_many("site_summary", [{"id": s} for s in sorted(site_ids)])
    request_work_many([(f"recalc:site:{s}", "miners.recalculate_site", [s]) for s in sorted(site_ids)])


@handles("portfolio.changed", batch=True)
def recalculate_portfolio(pairs) -> None:
    user_ids = sorted({payload.user_id for payload, _event in pairs})
    cache_helper.invalidate_many("user_portfolio", [{"id": u} for u in user_ids])
    request_work_many([(f"recalc:user:{u}", "miners.recalculate_user_all", [u]) for u in user_ids])
