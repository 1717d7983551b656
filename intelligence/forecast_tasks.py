"""Forecast jobs on the spine: thin Celery wrappers over ``intelligence.forecasting``, each recorded as a JobRun
(``@job``), idempotent (a refresh rebuilds the same entry; a training job skips models no longer TRAINING)."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.db import transaction

from hashinsight.core import cache as cache_helper
from hashinsight.events.jobs import job
from intelligence import forecasting
from intelligence.algorithms import backtest as bt
from intelligence.models import ForecastModel

log = logging.getLogger(__name__)
# Training fits Prophet and XGBoost a few times per model: longer than the default task limits.
TRAIN_SOFT_LIMIT_S, TRAIN_HARD_LIMIT_S = 900, 960


@job("intelligence.forecast_refresh")
def _refresh(ctx, user_id: int) -> dict:
    value = cache_helper.build_and_store("forecast", id=user_id)
    ctx.count(processed=1, succeeded=1)
    revenue = value["revenue"]
    log.info(
        "forecast refreshed",
        extra={"forecast_user_id": user_id, "job_run_id": ctx.run.pk,
               "fleet_hashrate_ths": revenue["fleet"]["hashrate_ths"],
               "revenue_usd_day1": revenue["points"][0]["yhat"] if revenue["points"] else None,
               "cache_key": cache_helper.cache_key("forecast", id=user_id)},
    )  # fmt: skip
    return {
        "user_id": user_id,
        "fleet_hashrate_ths": revenue["fleet"]["hashrate_ths"],
        "revenue_usd_day1": revenue["points"][0]["yhat"] if revenue["points"] else None,
        "algorithms": {k: value[k]["algorithm"] for k in ("price", "difficulty", "hashprice")},
        "fallbacks": {
            k: value[k]["fallback_reason"] for k in ("price", "difficulty", "hashprice") if value[k]["fallback_reason"]
        },
    }


@shared_task(name="intelligence.forecast_refresh", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3)  # fmt: skip
def forecast_refresh(self, user_id: int, trigger: str = "event") -> dict:
    """Rebuild ``forecast:{user_id}`` (network forecasts shared, the user's revenue) and announce it."""
    return _refresh(int(user_id), trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)


@job("intelligence.forecast_refresh_all", priority=1)
def _refresh_all(ctx, limit: int = 500) -> dict:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from intelligence.models import Forecast
    from miners.models import PortfolioEntry

    users = list(PortfolioEntry.objects.values_list("user_id", flat=True).distinct().order_by("user_id")[:limit])
    for user_id in users:
        try:
            cache_helper.build_and_store("forecast", id=user_id)
            ctx.count(processed=1, succeeded=1)
        except Exception:
            ctx.count(processed=1, failed=1)
    # Every refresh stores a revenue forecast per user (and the network's hourly): keep a month of them.
    keep = timedelta(days=getattr(settings, "FORECAST_KEEP_DAYS", 30))
    pruned, _ = Forecast.objects.filter(generated_at__lt=timezone.now() - keep).delete()
    return {"users": len(users), "forecasts_pruned": pruned}


@shared_task(name="intelligence.forecast_refresh_all", bind=True, acks_late=True, ignore_result=True)
def forecast_refresh_all(self, trigger: str = "schedule") -> dict:
    """Beat: every user with a portfolio gets a fresh ``forecast:{id}`` (the network fits are shared)."""
    return _refresh_all(trigger=trigger, task_id=self.request.id or "")


@job("intelligence.train_models", priority=1)
def _train(ctx, model_ids: list[int] | None = None, targets: list[str] | None = None, activate_best: bool = False):
    trained: list[ForecastModel] = []
    if model_ids:
        queue = list(ForecastModel.objects.filter(pk__in=model_ids).order_by("pk"))
    else:
        queue = [
            forecasting.model_register(target=t, algorithm=a)
            for t in (targets or forecasting.ALGORITHMS)
            for a in forecasting.ALGORITHMS[t]
            if a != ForecastModel.Algorithm.NAIVE
        ]
    for model in queue:
        model = forecasting.model_train(model=model)
        trained.append(model)
        ok = model.status == ForecastModel.Status.CANDIDATE
        ctx.count(processed=1, succeeded=int(ok), failed=int(not ok))
    activated = activate_winners(trained) if activate_best else []
    return {
        "models": [{"id": m.pk, "target": m.target, "algorithm": m.algorithm, "version": m.version,
                    "status": m.status} for m in trained],
        "activated": activated,
    }  # fmt: skip


def activate_winners(trained: list[ForecastModel]) -> list[int]:
    """Per target, the fresh candidate that beats naive by the most (``backtest.choose_active``) becomes active;
    when none beats naive the current active model stays, and the forecast service serves naive anyway."""
    from datetime import UTC, datetime

    activated = []
    for target in sorted({m.target for m in trained}):
        mine = [m for m in trained if m.target == target and m.status == ForecastModel.Status.CANDIDATE]
        if not mine:
            continue
        ref = forecasting.REFERENCE_HORIZON
        naive = next((forecasting._score(m.backtest, ref, bt.BASELINE) for m in mine), None)
        now = datetime.now(UTC)
        candidates = [bt.Candidate(m.algorithm, forecasting._score(m.backtest, ref), now) for m in mine]
        choice = bt.choose_active([*candidates, bt.Candidate(bt.BASELINE, naive, None)], now=now,
                                  max_age=forecasting.max_age())  # fmt: skip
        winner = next((m for m in mine if m.algorithm == choice.name), None)
        if winner is not None:
            forecasting.model_activate(model_id=winner.pk, actor=None, reason=f"scheduled training: {choice.reason}")
            activated.append(winner.pk)
    return activated


@shared_task(name="intelligence.train_models", bind=True, acks_late=True, ignore_result=True,
             soft_time_limit=TRAIN_SOFT_LIMIT_S, time_limit=TRAIN_HARD_LIMIT_S)  # fmt: skip
def train_models(self, model_ids=None, targets=None, activate_best: bool = True, trigger: str = "schedule") -> dict:
    """Beat (weekly): train every algorithm of every network target and activate the best that beats naive.
    Manual (``POST /api/v1/training-jobs``): train the queued ``model_ids`` only, activating nothing."""
    return _train(model_ids=model_ids, targets=targets, activate_best=activate_best and not model_ids,
                  trigger=trigger, task_id=self.request.id or "")  # fmt: skip


def training_request(*, target: str, algorithm: str = "", actor=None) -> tuple[ForecastModel, str]:
    """Register a TRAINING model and queue its training after the commit; returns at once with the model and the
    Celery task id (the JobRun of ``intelligence.train_models`` carries it)."""
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        model = forecasting.model_register(target=target, algorithm=algorithm)
        transaction.on_commit(
            lambda: train_models.apply_async(
                kwargs={"model_ids": [model.pk], "activate_best": False, "trigger": "manual"}, task_id=task_id
            )
        )
    return model, task_id


@job("intelligence.train_upload", priority=1)
def _train_upload(ctx, model_id: int) -> dict:
    from hashinsight.events.models import JobRun
    from intelligence.uploaded_series import upload_train

    def progress(done: int, total: int) -> None:
        # the run's row shows how far the backtest is while it runs (the wrapper saves the final counts)
        ctx.run.processed = done
        JobRun.objects.filter(pk=ctx.run.pk).update(processed=done, result={"progress": round(done / total, 3)})

    model = upload_train(model_id=model_id, progress=progress)
    ok = model.status == ForecastModel.Status.CANDIDATE
    ctx.count(succeeded=int(ok), failed=int(not ok))
    return {"model_id": model.pk, "subject": model.subject, "algorithm": model.algorithm, "status": model.status,
            "progress": 1.0, "error": model.error[:500]}  # fmt: skip


@shared_task(name="intelligence.train_upload", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3,
             soft_time_limit=TRAIN_SOFT_LIMIT_S, time_limit=TRAIN_HARD_LIMIT_S)  # fmt: skip
def train_upload(self, model_id: int, trigger: str = "manual") -> dict:
    """Train (backtest next to naive) a model registered on an uploaded series; a model no longer TRAINING is left
    as it is, so a redelivered job changes nothing."""
    return _train_upload(int(model_id), trigger=trigger, task_id=self.request.id or "",
                         retries=self.request.retries or 0)  # fmt: skip
