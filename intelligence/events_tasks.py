"""Celery jobs of curtailment events (recorded as JobRuns through ``@job``).

``intelligence.curtailment_event_tick`` (Beat, every 30 s): ``intelligence.curtailment_events.event_tick`` moves
every open event along (acknowledgements, telemetry confirmation, drift, staggered restore, settlement). Idempotent
(a second run changes nothing more) and safe to overlap: each event is locked with ``skip_locked``, so a run that
finds an event held by another leaves it for the next tick. Retried with backoff when the database is briefly
unavailable."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from hashinsight.events.jobs import job
from intelligence import curtailment_events as events


@job("curtailment_event_tick", priority=1)
def _tick(ctx) -> dict:
    counts = events.event_tick()
    ctx.count(processed=counts["events"], succeeded=counts["events"])
    return counts


@shared_task(
    name="intelligence.curtailment_event_tick", bind=True, acks_late=True, ignore_result=True,
    autoretry_for=(DatabaseError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=3,
)  # fmt: skip
def curtailment_event_tick(self, trigger: str = "schedule") -> dict:
    """Move every open curtailment event along."""
    return _tick(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries)
