"""The anomaly scan's periodic jobs: thin Celery wrappers recorded as JobRuns (hashinsight/events/jobs.py) on the
``intelligence`` queue (settings.CELERY_TASK_ROUTES "intelligence.*"): the scan every 5 minutes (Beat), and the
hourly refresh of its baselines, queued by the first scan that finds the history past the next hour boundary."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from hashinsight.events.jobs import job
from intelligence import anomaly_scan

# Learning every chunk's baseline reads the whole long history (about the cost of the scan before its cache):
# minutes on a loaded box, with the rest of the hour before any scan needs them.
BASELINES_TIME_LIMIT_S = 1800


@job("intelligence_anomaly_scan")
def _anomaly_scan(ctx) -> dict:
    result = anomaly_scan.anomaly_scan()
    ctx.count(processed=result.miners, succeeded=result.miners)
    return result.as_dict()


@shared_task(name="intelligence.anomaly_scan", bind=True, acks_late=True, ignore_result=True)
def anomaly_scan_task(self, trigger: str = "schedule") -> dict:
    """Idempotent: a run with no new 5-minute window changes nothing, and a run while another is going is skipped
    (``busy``), so two never count onto the same alerts."""
    return _anomaly_scan(trigger=trigger, task_id=self.request.id or "")


@job("intelligence_anomaly_baselines")
def _anomaly_baselines(ctx, cutoff: str | None = None) -> dict:
    result = anomaly_scan.refresh_baselines(cutoff=None if cutoff is None else datetime.fromisoformat(cutoff))
    ctx.count(processed=result.get("miners", 0), succeeded=result.get("miners", 0))
    return result


@shared_task(
    name="intelligence.anomaly_baselines", bind=True, acks_late=True, ignore_result=True,
    soft_time_limit=BASELINES_TIME_LIMIT_S - 60, time_limit=BASELINES_TIME_LIMIT_S,
)  # fmt: skip
def anomaly_baselines_task(self, cutoff: str | None = None, trigger: str = "scan") -> dict:
    """Idempotent: chunks whose baseline for the hour is already stored are left as they are."""
    return _anomaly_baselines(cutoff, trigger=trigger, task_id=self.request.id or "")
