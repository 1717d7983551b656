"""The market data's Beat job, ``intelligence.market_refresh`` (SCHEDULES line in the lead's notes): fetch the
configured live feed (``intelligence.feeds``) and upsert its days as FEED rows. Without a feed it does nothing and
leaves no job record; a feed that fails (network, HTTP, a body it cannot read) is recorded in the job run's result
and reported by /api/health, never raised: the next run simply tries again."""

from __future__ import annotations

import logging

from celery import shared_task

from hashinsight.events.jobs import job

logger = logging.getLogger(__name__)


@job("market_refresh")
def market_refresh_run(ctx, *, feed):
    from intelligence.feeds import FeedError
    from intelligence.market_data import market_days_from_feed

    try:
        days = feed.fetch_latest()
    except FeedError as exc:
        ctx.count(processed=1, failed=1)
        logger.warning("market feed %s failed: %s", feed.name, exc)
        return {"feed": feed.name, "days": 0, "error": str(exc)[:500]}
    written = market_days_from_feed(days, feed_name=feed.name)
    ctx.count(processed=len(days), succeeded=written)
    latest = max((d.date for d in days), default=None)
    return {"feed": feed.name, "days": written, "latest": latest.isoformat() if latest else None}


@shared_task(name="intelligence.market_refresh", bind=True, acks_late=True, ignore_result=True, soft_time_limit=60)
def market_refresh(self, trigger: str = "schedule") -> dict:
    """Refresh the market days from the configured live feed (none configured: nothing to do)."""
    from intelligence.feeds import configured_feed

    feed = configured_feed()
    if feed is None:
        return {"feed": None, "days": 0}
    return market_refresh_run(feed=feed, trigger=trigger, task_id=self.request.id or "")
