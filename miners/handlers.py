"""What follows a change to miners, portfolios or the catalog: invalidate, then one coalesced
recalculation. Batch handlers: a burst of events touches each user or site once."""

from hashinsight.core import cache as cache_helper
from hashinsight.events.coalesce import request_work_many
from hashinsight.events.registry import handles


def _refresh_sites(site_ids) -> None:
    ids = sorted(set(site_ids))
    cache_helper.invalidate_many("site_summary", [{"id": s} for s in ids])
    request_work_many([(f"recalc:site:{s}", "miners.recalculate_site", [s]) for s in ids])


def _refresh_users(user_ids) -> None:
    ids = sorted(set(user_ids))
    cache_helper.invalidate_many("user_portfolio", [{"id": u} for u in ids])
    request_work_many([(f"recalc:user:{u}", "miners.recalculate_user_all", [u]) for u in ids])


def site_ids_of(payload) -> list[int]:
    """The sites a miner event touches (a moved miner: the one it left too; a bulk import: all of its sites)."""
    if hasattr(payload, "site_ids"):  # miners.bulk_imported
        return list(payload.site_ids)
    if getattr(payload, "old_site_id", None) is not None:  # miner.updated / miner.deleted: the site it left too
        return [payload.site_id, payload.old_site_id]
    return [payload.site_id]


@handles("miner.created", "miner.updated", "miner.deleted", "miners.bulk_imported", batch=True)
def recalculate_sites(pairs) -> None:
    _refresh_sites(s for payload, _event in pairs for s in site_ids_of(payload))


@handles("site.changed", "zone.changed", batch=True)
def recalculate_changed_sites(pairs) -> None:
    _refresh_sites(payload.site_id for payload, _event in pairs if payload.action != "deleted")


@handles("portfolio.changed", batch=True)
def recalculate_portfolio(pairs) -> None:
    _refresh_users(payload.user_id for payload, _event in pairs)


@handles("miner_model.changed", batch=True)
def recalculate_model_uses(pairs) -> None:
    """Every portfolio, site summary and hosting client's summary that counts a changed model, from
    one read of where its miners stand. A deleted model is used by nothing (both references are
    PROTECT), so only the remaining ids are looked up."""
    from miners.models import Miner, PortfolioEntry

    model_ids = sorted({payload.model_id for payload, _event in pairs})
    users = PortfolioEntry.objects.filter(model_id__in=model_ids).values_list("user_id", flat=True).distinct()
    placements = list(Miner.objects.filter(model_id__in=model_ids).values_list("site_id", "customer_id").distinct())
    _refresh_users(users)
    _refresh_sites(site_id for site_id, _customer_id in placements)
    _refresh_customers(customer_id for _site_id, customer_id in placements)


# --- A hosting client's own figures (customer_summary), apart from its sites' ----------------------


def _refresh_customers(customer_ids) -> None:
    ids = sorted({c for c in customer_ids if c is not None})
    cache_helper.invalidate_many("customer_summary", [{"id": c} for c in ids])
    request_work_many([(f"recalc:customer:{c}", "miners.recalculate_customer", [c]) for c in ids])


def _customer_ids_of(payload) -> list[int | None]:
    if hasattr(payload, "customer_ids"):  # miners.bulk_imported
        return list(payload.customer_ids)
    return [payload.customer_id, getattr(payload, "old_customer_id", None)]  # the client it left too


@handles("miner.created", "miner.updated", "miner.deleted", "miners.bulk_imported", batch=True)
def recalculate_customers(pairs) -> None:
    _refresh_customers(c for payload, _event in pairs for c in _customer_ids_of(payload))


@handles("customer.changed", batch=True)
def recalculate_changed_customers(pairs) -> None:
    """Its hosting rate prices its figures."""
    _refresh_customers(payload.object_id for payload, _event in pairs if payload.action != "deleted")
