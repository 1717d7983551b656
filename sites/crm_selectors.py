"""Reads of CRM deals and hosting contracts, already restricted to what a user may see.

The rule, once: the CRM module decides whether a user reads CRM at all (OWNER and ADMIN full, a site owner
read-only, everyone else nothing: the role matrix); ``sites.selectors.scope_of`` decides which rows.
- OWNER and ADMIN see every deal and contract;
- a MINING_SITE_OWNER sees the deals *at* the sites granted to them (a deal with no site yet is a sales matter
  of the operator and is not theirs) and the contracts at those sites;
- a CLIENT, CUSTOMER or GUEST sees none (the API answers 403 on the lists, the module check; a single row 404).

An object outside the scope is "not found" (404), never "forbidden": no existence leak. Each function costs a
constant number of queries (the grant ids once per request, then one filtered queryset).
"""

from __future__ import annotations

from django.db.models import Count, QuerySet, Sum
from django.utils.translation import gettext

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from sites.models import Deal, HostingContract
from sites.selectors import scope_of

MAX_ID = 2**31 - 1  # no row has a larger id; a larger number would reach the database driver as an error


def _scoped(qs: QuerySet, user) -> QuerySet:
    if not has_access(user, Module.CRM, Access.READ):
        return qs.none()
    scope = scope_of(user)
    if scope.kind == "all":
        return qs
    if scope.kind == "sites":
        return qs.filter(site_id__in=scope.ids)
    return qs.none()  # hosting clients have no CRM access; even with one, no deal or contract is theirs to read


def deal_list(*, user) -> QuerySet[Deal]:
    """The deals ``user`` may read, with their client, site and sales owner joined."""
    return _scoped(Deal.objects.select_related("customer", "site", "owner"), user)


def deal_get(*, user, deal_id) -> Deal:
    """One deal the user may read; a hidden or missing one is the same 404."""
    deal = _one(deal_list(user=user), deal_id)
    if deal is None:
        raise DomainError("not_found", gettext("No such deal."), status=404)
    return deal


def contract_list(*, user) -> QuerySet[HostingContract]:
    """The hosting contracts ``user`` may read, with their client, site, deal and sales owner joined."""
    return _scoped(HostingContract.objects.select_related("customer", "site", "deal", "sales_owner"), user)


def contract_get(*, user, contract_id) -> HostingContract:
    contract = _one(contract_list(user=user), contract_id)
    if contract is None:
        raise DomainError("not_found", gettext("No such hosting contract."), status=404)
    return contract


def _one(qs: QuerySet, pk):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < pk <= MAX_ID:
        return None
    return qs.filter(pk=pk).first()


def may_write(*, user) -> bool:
    """May ``user`` change deals and contracts? CRM FULL (owners and admins); a site owner only reads."""
    return has_access(user, Module.CRM, Access.FULL)


def pipeline_summary(qs: QuerySet[Deal]) -> list[dict]:
    """Per stage, in the pipeline's order: deals, value per currency, expected MW and miners. One query."""
    rows = (
        qs.order_by()
        .values("stage", "currency")
        .annotate(n=Count("id"), value=Sum("value"), mw=Sum("expected_mw"), miners=Sum("expected_miners"))
    )
    by_stage: dict[str, dict] = {}
    for row in rows:
        entry = by_stage.setdefault(row["stage"], {"deals": 0, "values": {}, "mw": 0, "miners": 0})
        entry["deals"] += row["n"]
        entry["values"][row["currency"]] = row["value"]
        entry["mw"] += row["mw"] or 0
        entry["miners"] += row["miners"] or 0
    out = []
    for stage, label in Deal.Stage.choices:
        entry = by_stage.get(stage, {"deals": 0, "values": {}, "mw": 0, "miners": 0})
        out.append({"stage": stage, "label": label, **entry, "values": sorted(entry["values"].items())})
    return out


def covered_miners(contract: HostingContract):
    """The miners the contract covers, as a queryset: those listed, or (none listed) every miner of its client at
    its site; either way only miners that are the client's at the site now (a listed miner that was moved away or
    handed to another client is no longer covered) and not retired. What billing, statements and the pages read
    (one query to decide, then the queryset)."""
    from miners.models import Miner, MinerStatus

    base = contract.miners.all() if contract.miners.exists() else Miner.objects.all()
    return base.filter(customer_id=contract.customer_id, site_id=contract.site_id).exclude(status=MinerStatus.RETIRED)


def contract_miner_count(contract: HostingContract) -> int:
    """How many miners the contract covers (see ``covered_miners``)."""
    return covered_miners(contract).count()


def active_contract_for(*, customer_id: int, site_id: int, on=None) -> HostingContract | None:
    """The client's active contract at the site (on ``on``, a date, when given): what billing and curtailment
    read. At most one exists at a time (``crm_services`` refuses overlaps)."""
    from django.db.models import Q

    qs = HostingContract.objects.filter(customer_id=customer_id, site_id=site_id, status=HostingContract.Status.ACTIVE)
    if on is not None:
        qs = qs.filter(Q(start_date__lte=on), Q(end_date__isnull=True) | Q(end_date__gte=on))
    return qs.order_by("-start_date").first()
