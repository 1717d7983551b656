"""Periodic telemetry jobs: thin Celery wrappers, each run recorded as a JobRun (hashinsight/events/jobs.py).
Scheduled in hashinsight/events/schedules.py; rollups on the ``telemetry`` queue, retention on
``housekeeping``."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job
from telemetry import partitions, rollups


@job("telemetry_rollup_5m")
def _rollup_5m(ctx) -> dict:
    result = rollups.rollup_pending_5m()
    ctx.count(processed=result["windows"], succeeded=result["windows"])
    return result


@shared_task(name="telemetry.rollup_5m", bind=True, acks_late=True, ignore_result=True)
def rollup_5m(self, trigger: str = "schedule") -> dict:
    return _rollup_5m(trigger=trigger, task_id=self.request.id or "")


@job("telemetry_rollup_daily")
def _rollup_daily(ctx) -> dict:
    result = rollups.rollup_pending_daily()
    days = len(result["days"]) + len(result["final_days"])
    ctx.count(processed=days, succeeded=days)
    return result


@shared_task(name="telemetry.rollup_daily", bind=True, acks_late=True, ignore_result=True)
def rollup_daily(self, trigger: str = "schedule") -> dict:
    return _rollup_daily(trigger=trigger, task_id=self.request.id or "")


@job("telemetry_retention", priority=1)
def _retention(ctx) -> dict:
    created = partitions.ensure_partitions()
    dropped = partitions.drop_expired_partitions()
    deleted = partitions.delete_expired()
    ctx.count(processed=len(created) + len(dropped) + sum(deleted.values()))
    return {"partitions_created": created, "partitions_dropped": dropped, "rows_deleted": deleted}


@shared_task(name="telemetry.retention", bind=True, acks_late=True, ignore_result=True)
def retention(self, trigger: str = "schedule") -> dict:
    return _retention(trigger=trigger, task_id=self.request.id or "")
