"""The power price feeds' Beat job, ``intelligence.power_prices_refresh`` (every 5 minutes, the SCHEDULES line
"power prices: feed refresh"): ``power_feeds.power_feeds_refresh`` for every site in ``POWER_PRICE_FEEDS``, recorded
as a JobRun with each site's outcome. Without a configured feed it does nothing and leaves no job record. A feed's
failure is its site's outcome in the run's result (and /api/health), never raised: the next run simply tries again
from the last stored interval. Idempotent (the load is an upsert per interval), so an overlap, a redelivery
(``acks_late``) or a retry after a database error (with backoff) changes nothing already loaded.

Every 5 minutes because the finest real-time step a feed gives is 5 minutes: the responder (every minute) then sees
a new interval at most one run after its feed publishes it."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from hashinsight.events.jobs import job
from intelligence import power_feeds


@job(power_feeds.REFRESH_JOB)
def power_prices_refresh_run(ctx, *, slug: str | None = None) -> dict:
    outcomes = power_feeds.power_feeds_refresh(slug=slug)
    failed = sum(1 for o in outcomes if o["error"])
    ctx.count(processed=len(outcomes), succeeded=len(outcomes) - failed, failed=failed)
    new = sum(m.get("new", 0) for o in outcomes for m in o["markets"].values())
    return {"sites": outcomes, "new": new, "failed": failed}


@shared_task(
    name="intelligence.power_prices_refresh", bind=True, acks_late=True, ignore_result=True, soft_time_limit=120,
    autoretry_for=(DatabaseError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=3,
)  # fmt: skip
def power_prices_refresh(self, trigger: str = "schedule") -> dict:
    """Fetch and load the new power prices of every site with a feed (none configured: nothing to do)."""
    if not power_feeds.configured_feed_sites():
        return {"sites": [], "new": 0, "failed": 0}
    return power_prices_refresh_run(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries)
