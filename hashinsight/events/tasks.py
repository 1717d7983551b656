"""Thin Celery wrappers over the outbox services. All are idempotent, so acks_late is safe."""

from __future__ import annotations

from collections import Counter

from celery import shared_task

from hashinsight.events import coalesce, outbox, processing
from hashinsight.events.jobs import abandon_stale_runs, job


@shared_task(name="events.process_events", acks_late=True, ignore_result=True)
def process_events(event_ids: list[str]) -> dict:
    """Apply a batch of events. Redelivered after a crash, finished events are skipped quickly."""
    from hashinsight.observability.heartbeat import worker_id

    return dict(Counter(processing.process_many(event_ids, worker=worker_id()).values()))


@shared_task(name="events.run_coalesced", acks_late=True, ignore_result=True)
def run_coalesced(key: str) -> str:
    return coalesce.run(key)


@job("outbox_relay")
def _relay(ctx):
    result = outbox.relay()
    ctx.count(processed=result["found"], succeeded=result["resent"], failed=result["found"] - result["resent"])
    return result


@shared_task(name="events.relay", bind=True, acks_late=True, ignore_result=True)
def relay(self, trigger: str = "schedule") -> dict:
    return _relay(trigger=trigger, task_id=self.request.id or "")


@job("housekeeping", priority=1)
def _prune(ctx):
    from datetime import timedelta

    from django.utils import timezone

    from hashinsight.events.models import JobRun, OutboxEvent
    from hashinsight.observability.models import WorkerHeartbeat

    now = timezone.now()
    events, _ = OutboxEvent.objects.filter(
        status=OutboxEvent.Status.DONE, finished_at__lt=now - timedelta(days=7)
    ).delete()
    runs, _ = JobRun.objects.filter(created_at__lt=now - timedelta(days=30)).delete()
    abandoned = abandon_stale_runs()
    # One heartbeat row per worker start: those of long-gone starts only clutter the admin.
    workers, _ = WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    ctx.count(processed=events + runs + abandoned, succeeded=events + runs + abandoned)
    return {"outbox_deleted": events, "job_runs_deleted": runs, "job_runs_abandoned": abandoned,
            "heartbeats_deleted": workers}  # fmt: skip


@shared_task(name="events.prune", bind=True, acks_late=True, ignore_result=True)
def prune(self, trigger: str = "schedule") -> dict:
    return _prune(trigger=trigger, task_id=self.request.id or "")
