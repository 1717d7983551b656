"""The anomaly scan's periodic job: a thin Celery wrapper recorded as a JobRun (hashinsight/events/jobs.py),
scheduled every 5 minutes on the ``intelligence`` queue (settings.CELERY_TASK_ROUTES "intelligence.*")."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job
from intelligence import anomaly_scan


@job("intelligence_anomaly_scan")
def _anomaly_scan(ctx) -> dict:
    result = anomaly_scan.anomaly_scan()
    ctx.count(processed=result.miners, succeeded=result.miners)
    return result.as_dict()


@shared_task(name="intelligence.anomaly_scan", bind=True, acks_late=True, ignore_result=True)
def anomaly_scan_task(self, trigger: str = "schedule") -> dict:
    """Idempotent: a run with no new 5-minute window changes nothing; a repeat over the same windows only counts
    onto the alerts already open."""
    return _anomaly_scan(trigger=trigger, task_id=self.request.id or "")
