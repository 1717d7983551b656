"""Applying one event: every handler once, with retries, backoff and a failure record at the end."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashinsight.events.contracts import REGISTRY
from hashinsight.events.models import EventFailure, HandlerReceipt, OutboxEvent
from hashinsight.events.registry import handlers_for

logger = logging.getLogger(__name__)


def process(event_id) -> str:
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if event is None:
        return "missing"
    if event.status in (OutboxEvent.Status.DONE, OutboxEvent.Status.FAILED):
        return event.status  # a redelivery after the work was finished
    payload = REGISTRY[(event.event_type, event.schema_version)].model_validate(event.payload)
    done = set(HandlerReceipt.objects.filter(event=event).values_list("handler", flat=True))
    for name, handler in handlers_for(event.event_type):
        if name in done:
            continue
        try:
            with transaction.atomic():
                handler(payload, event)
                HandlerReceipt.objects.create(event=event, handler=name)
        except IntegrityError:
            # Another delivery of this event applied the handler at the same moment.
            if HandlerReceipt.objects.filter(event=event, handler=name).exists():
                continue
            return _failed(event, name)
        except Exception:
            return _failed(event, name)
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.DONE, finished_at=timezone.now(), last_error="", attempts=event.attempts + 1
    )
    return "done"


def _failed(event: OutboxEvent, handler: str) -> str:
    from hashinsight.events.outbox import dispatch, retry_delay

    tb = traceback.format_exc()
    error = tb.strip().splitlines()[-1][:500]
    attempts = event.attempts + 1
    logger.warning(
        "event handler failed",
        extra={"event_id": str(event.pk), "handler": handler, "attempt": attempts, "error": error},
    )
    if attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        with transaction.atomic():
            OutboxEvent.objects.filter(pk=event.pk).update(
                status=OutboxEvent.Status.FAILED, attempts=attempts, last_error=error, finished_at=timezone.now()
            )
            EventFailure.objects.create(
                event=event, handler=handler, error=error, traceback=tb, payload=event.payload, attempts=attempts
            )
        return "failed"
    delay = retry_delay(attempts)
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.PENDING, attempts=attempts, last_error=error,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )  # fmt: skip
    dispatch([event.pk], countdown=delay)
    return "retrying"


@transaction.atomic
def replay(failure: EventFailure) -> OutboxEvent:
    """Send a failed event through its handlers again (those that succeeded keep their receipts)."""
    event = OutboxEvent.objects.select_for_update().get(pk=failure.event_id)
    event.status = OutboxEvent.Status.PENDING
    event.attempts = 0
    event.next_attempt_at = None
    event.finished_at = None
    event.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at"])
    EventFailure.objects.filter(event=event, replayed_at__isnull=True).update(replayed_at=timezone.now())
    from hashinsight.events.outbox import dispatch

    transaction.on_commit(lambda: dispatch([event.pk]))
    return event
