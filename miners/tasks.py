"""Recalculations requested (and coalesced) by events; thin wrappers over miners.summaries."""

from celery import shared_task

from hashinsight.core import cache as cache_helper


@shared_task(name="miners.recalculate_user_all", acks_late=True, ignore_result=True)
def recalculate_user_all(user_id: int) -> dict:
    """The seed's recalculation of a user's portfolio figures, stored under ``user_portfolio:{id}``."""
    return cache_helper.build_and_store("user_portfolio", id=user_id)


@shared_task(name="miners.recalculate_site", acks_late=True, ignore_result=True)
def recalculate_site(site_id: int) -> dict:
    return cache_helper.build_and_store("site_summary", id=site_id)


@shared_task(name="miners.recalculate_customer", acks_late=True, ignore_result=True)
def recalculate_customer(customer_id: int) -> dict:
    """A hosting client's own figures (``customer_summary:{id}``), apart from its sites' totals."""
    return cache_helper.build_and_store("customer_summary", id=customer_id)
