"""Celery jobs of the real-time responder (recorded as JobRuns through ``@job``).

``intelligence.respond_realtime`` (Beat, every minute): ``responder.respond_all``. It acts once per new real-time
price interval per enabled site (``RealtimeResponder.last_interval_start`` and the unique ``ResponderDecision``
per site and interval), so running it every minute, twice, or after a worker restart changes nothing for an
interval already handled; a minute is the feed's finest step's third, so a 5-minute price is acted on within a
minute of its publication."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job
from intelligence import responder


@job("realtime_responder", priority=1)
def _respond(ctx) -> dict:
    outcomes = [o.as_dict() for o in responder.respond_all()]
    decided = sum(1 for o in outcomes if o["result"] == "decided")
    failed = sum(1 for o in outcomes if o["result"] == "error")
    ctx.count(processed=len(outcomes), succeeded=len(outcomes) - failed, failed=failed)
    return {"sites": outcomes, "decided": decided}


@shared_task(name="intelligence.respond_realtime", bind=True, acks_late=True, ignore_result=True)
def respond_realtime(self, trigger: str = "schedule") -> dict:
    """Curtail or restore on each site's new real-time price interval (see ``intelligence.responder``)."""
    return _respond(trigger=trigger, task_id=self.request.id or "")
