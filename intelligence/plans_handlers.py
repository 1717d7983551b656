"""What makes a site's cached day plans (``optimize:{site}:{date}``) stale: whatever ``plan_for_day`` reads from
the site changed. Every day's entry of the site is marked stale at once (``cache.invalidate_group``): readers get
the old plan with ``X-Cache: stale`` while one rebuild re-reads the inputs, which re-uses the stored plan when they
turn out unchanged and solves again otherwise. Nothing is rebuilt here; ``intelligence.plan_tomorrow`` (hourly)
keeps tomorrow's plans current for sites nobody reads.

- ``power_prices.loaded`` of the day-ahead market (upload, feed, shipped series): the hourly prices;
- ``miner.created`` / ``miner.updated`` / ``miner.deleted`` / ``miners.bulk_imported``: the site's hashing miners,
  grouped by model, zone and hosting client (a moved miner: the site it left and the one it joined);
- ``zone.changed`` (capacities) and ``site.changed`` (its time zone places the day);
- ``miner_model.changed``: the nameplate kW and TH/s of every site where its miners stand.

Invalidation is idempotent, so a redelivered event costs one more bump and nothing else."""

from __future__ import annotations

from hashinsight.core import cache as cache_helper
from hashinsight.events.registry import handles
from intelligence.models import PowerMarket
from miners.handlers import site_ids_of


def plans_invalidate(site_ids) -> None:
    """Mark every cached day plan of these sites stale (one pipelined round-trip on Redis)."""
    ids = sorted({s for s in site_ids if s is not None})
    cache_helper.invalidate_group("optimize", [{"id": s} for s in ids])


@handles("power_prices.loaded", batch=True)
def prices_loaded(pairs) -> None:
    """Only day-ahead prices enter a plan."""
    plans_invalidate(payload.site_id for payload, _event in pairs if payload.market == PowerMarket.DAY_AHEAD)


@handles("miner.created", "miner.updated", "miner.deleted", "miners.bulk_imported", batch=True)
def fleet_changed(pairs) -> None:
    plans_invalidate(s for payload, _event in pairs for s in site_ids_of(payload))


@handles("site.changed", "zone.changed", batch=True)
def site_changed(pairs) -> None:
    plans_invalidate(payload.site_id for payload, _event in pairs if payload.action != "deleted")


@handles("miner_model.changed", batch=True)
def model_changed(pairs) -> None:
    """The sites where the changed models' miners stand, from one read."""
    from miners.models import Miner

    model_ids = sorted({payload.model_id for payload, _event in pairs})
    plans_invalidate(Miner.objects.filter(model_id__in=model_ids).values_list("site_id", flat=True).distinct())
