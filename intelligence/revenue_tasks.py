"""Celery jobs of revenue forecasts per site and hosting client, and smart alerts (recorded as JobRuns through
``@job``): thin wrappers over ``intelligence.forecasting`` and ``intelligence.smart_alerts``, idempotent (a refresh
rebuilds the same entry; the alerts deduplicate)."""

from __future__ import annotations

import logging

from celery import shared_task

from hashinsight.core import cache as cache_helper
from hashinsight.core.errors import DomainError
from hashinsight.events.jobs import job
from intelligence import forecasting, smart_alerts

log = logging.getLogger(__name__)


@job("intelligence.revenue_refresh")
def _refresh(ctx, subject: str) -> dict:
    try:
        value = cache_helper.build_and_store("revenue_forecast", subject=subject)
    except DomainError as exc:
        if exc.code != "not_found":
            raise
        # The site or client was deleted after the event: nothing to forecast, and its entry goes stale.
        cache_helper.invalidate("revenue_forecast", subject=subject)
        ctx.count(processed=1)
        return {"subject": subject, "skipped": "not_found"}
    ctx.count(processed=1, succeeded=1)
    revenue = value["revenue"]
    day1 = revenue["points"][0]["yhat"] if revenue["points"] else None
    log.info(
        "revenue forecast refreshed",
        extra={"subject": subject, "job_run_id": ctx.run.pk, "fleet_hashrate_ths": revenue["fleet"]["hashrate_ths"],
               "revenue_usd_day1": day1,
               "cache_key": cache_helper.cache_key("revenue_forecast", subject=subject)},
    )  # fmt: skip
    return {"subject": subject, "fleet_hashrate_ths": revenue["fleet"]["hashrate_ths"], "revenue_usd_day1": day1}


@shared_task(name="intelligence.revenue_refresh", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3)  # fmt: skip
def revenue_refresh(self, subject: str, trigger: str = "event") -> dict:
    """Rebuild ``revenue_forecast:{subject}`` (``site:<id>`` or ``customer:<id>``) and announce it."""
    return _refresh(str(subject), trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)


@job("intelligence.revenue_refresh_all", priority=1)
def _refresh_all(ctx, limit: int = 2000) -> dict:
    subjects = forecasting.revenue_subjects()[:limit]
    for subject in subjects:
        try:
            cache_helper.build_and_store("revenue_forecast", subject=subject)
            ctx.count(processed=1, succeeded=1)
        except Exception:
            log.exception("revenue forecast failed", extra={"subject": subject})
            ctx.count(processed=1, failed=1)
    return {"subjects": len(subjects)}


@shared_task(name="intelligence.revenue_refresh_all", bind=True, acks_late=True, ignore_result=True)
def revenue_refresh_all(self, trigger: str = "schedule") -> dict:
    """Beat (hourly): every site and hosting client with an active miner gets a fresh revenue forecast (the
    network's hashprice fit is shared with the users' refresh)."""
    return _refresh_all(trigger=trigger, task_id=self.request.id or "")


@job("intelligence.smart_alerts", priority=1)
def _smart_alerts(ctx) -> dict:
    result = smart_alerts.run()
    ctx.count(processed=1, succeeded=1)
    return result


@shared_task(name="intelligence.smart_alerts", bind=True, acks_late=True, ignore_result=True)
def smart_alerts_check(self, trigger: str = "schedule") -> dict:
    """Beat (hourly): forecast error and profit-down alerts raised or resolved; the fleet's ROI drift recorded."""
    return _smart_alerts(trigger=trigger, task_id=self.request.id or "")
