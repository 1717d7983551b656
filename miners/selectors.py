"""Reads of miners, the catalog and portfolios, restricted to what a user may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from miners.models import Miner, MinerModel, PortfolioEntry
from sites import selectors as site_selectors
from sites.models import Site
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


def miner_scope_q_for(user, *, prefix: str = "miners__") -> Q:
    """The miner scope as a filter on a related ``miners`` join (for counts on sites and zones)."""
    scope = miner_scope_q(user, prefix=prefix)
    return Q() if scope is None else scope


def site_list_with_miner_count(*, user) -> QuerySet[Site]:
    """The sites ``user`` sees, each with ``miner_count``: the miners on it this user may see (a
    hosting client's own, never the other clients' beside them; a site owner's whole site)."""
    return site_selectors.site_list(user=user).annotate(miner_count=Count("miners", filter=miner_scope_q_for(user)))
