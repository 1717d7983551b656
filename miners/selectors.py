"""Reads of miners, the catalog and portfolios, restricted to what a user may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum

from miners.models import Miner, MinerModel, PortfolioEntry
from sites.selectors import miner_scope_q


def miner_list(*, user) -> QuerySet[Miner]:
    """Miners the user may see, with everything a list row shows joined in (one query per page)."""
    qs = Miner.objects.select_related("model", "site", "zone", "customer")
    scope = miner_scope_q(user)
    return qs if scope is None else qs.filter(scope)


def miner_model_list() -> QuerySet[MinerModel]:
    """The catalog is public reference data (the calculator needs it, even for guests)."""
    return MinerModel.objects.all()


def portfolio_list(*, user) -> QuerySet[PortfolioEntry]:
    if not user.is_authenticated:
        return PortfolioEntry.objects.none()
    return PortfolioEntry.objects.filter(user=user).select_related("model")


def fleet_summary(*, user) -> dict:
    """Counts and nominal capacity of the visible fleet, by site and status (two queries)."""
    qs = miner_list(user=user).exclude(status=Miner.Status.RETIRED)
    totals = qs.aggregate(miners=Count("id"), hashrate_ths=Sum("model__hashrate_ths"), power_w=Sum("model__power_w"))
    rows = (
        miner_list(user=user)
        .values("site_id", "site__name", "status")
        .annotate(n=Count("id"))
        .order_by("site__name", "status")
    )
    by_site: dict[int, dict] = {}
    for row in rows:
        entry = by_site.setdefault(
            row["site_id"], {"site_id": row["site_id"], "site": row["site__name"], "statuses": {}}
        )
        entry["statuses"][row["status"]] = row["n"]
    return {
        "miners": totals["miners"] or 0,
        "hashrate_ths": totals["hashrate_ths"] or 0,
        "power_kw": (totals["power_w"] or 0) / 1000,
        "by_site": list(by_site.values()),
    }


def miner_scope_q_for(user, *, prefix: str = "miners__") -> Q:
    """The miner scope as a filter on a related ``miners`` join (for counts on sites and zones)."""
    scope = miner_scope_q(user, prefix=prefix)
    return Q() if scope is None else scope
