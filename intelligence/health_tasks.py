"""Celery jobs of miner health predictions (recorded as JobRuns through ``@job``). Idempotent: a rerun upserts
the same ``MinerHealth`` rows from the same history, so a redelivered or retried run is harmless."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.db import transaction

from hashinsight.core import cache as cache_helper
from hashinsight.events.jobs import job

log = logging.getLogger(__name__)


@job("intelligence.health_predict")
def _predict(ctx, user_id: int) -> dict:
    from django.contrib.auth import get_user_model

    from intelligence.miner_health import health_compute
    from sites.selectors import scope_of

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:  # deleted since it was queued: nothing to do
        return {"user_id": user_id, "skipped": "no such user"}
    run = health_compute(scope_of(user))
    ctx.count(processed=run.miners, succeeded=run.scored)
    summary = cache_helper.build_and_store("miner_health", id=user_id)
    log.info("miner health predicted", extra={"health_user_id": user_id, "job_run_id": ctx.run.pk, **run.tiers,
                                               "miners": run.miners})  # fmt: skip
    return {"user_id": user_id, **run.as_dict(), "summary_tiers": summary["tiers"]}


@shared_task(name="intelligence.health_predict", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3)  # fmt: skip
def health_predict(self, user_id: int, trigger: str = "manual") -> dict:
    """Score the miners ``user_id`` sees and rebuild ``miner_health:{user_id}``."""
    return _predict(int(user_id), trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)


@job("intelligence.health_predict_all", priority=1)
def _predict_all(ctx, warm_assets: bool = True) -> dict:
    from intelligence.asset_forecast import asset_forecast_warm
    from intelligence.miner_health import health_compute
    from sites.selectors import Scope

    run = health_compute(Scope("all"))
    ctx.count(processed=run.miners, succeeded=run.scored)
    result = run.as_dict()
    if warm_assets:  # the hourly moment the 5-minute layer has a new hour: preload the assets' forecasts
        result["asset_forecasts"] = asset_forecast_warm()
    return result


@shared_task(name="intelligence.health_predict_all", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3,
             soft_time_limit=900, time_limit=960)  # fmt: skip
def health_predict_all(self, trigger: str = "schedule") -> dict:
    """Beat (hourly): every miner's health, once (a score does not depend on who reads it), then the sites' and
    zones' power forecasts for the new hour."""
    return _predict_all(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)


def health_request(*, user_id: int) -> str:
    """Queue ``health_predict(user_id)`` after the caller's commit; returns the Celery task id at once (the
    JobRun carries it: ``/api/v1/jobs?task_id=…``)."""
    task_id = str(uuid.uuid4())
    transaction.on_commit(
        lambda: health_predict.apply_async(kwargs={"user_id": user_id, "trigger": "manual"}, task_id=task_id)
    )
    return task_id
