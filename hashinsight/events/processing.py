"""Applying events: every handler once per event, with retries, backoff and a failure record.

Events are processed in batches: one query loads the batch, one loads its receipts, batch handlers
apply a whole group in one transaction (with all its receipts), and one UPDATE marks the batch done.
If a batch handler fails, its events are retried one by one so a single bad event cannot hold up
the others."""

from __future__ import annotations

import logging
import traceback
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashinsight.events.contracts import REGISTRY
from hashinsight.events.models import EventFailure, HandlerReceipt, OutboxEvent
from hashinsight.events.registry import Handler, handlers_for

logger = logging.getLogger(__name__)
FINISHED = (OutboxEvent.Status.DONE, OutboxEvent.Status.FAILED)


def process(event_id) -> str:
    """Apply one event; returns its outcome (done, retrying, failed, missing or already finished)."""
    return process_many([event_id]).get(str(event_id), "missing")


def process_many(event_ids, *, worker: str = "") -> dict[str, str]:
    """Apply a batch of events. ``worker`` (the id of the worker doing it) is stamped on the rows
    first, so if this worker dies mid-batch the relay notices from its heartbeat and resends them."""
    ids = [str(i) for i in event_ids]
    events = {str(e.pk): e for e in OutboxEvent.objects.filter(pk__in=ids)}
    outcomes = {pk: events[pk].status if pk in events else "missing" for pk in ids}
    todo = [e for e in events.values() if e.status not in FINISHED]
    if not todo:
        return outcomes
    if worker:
        OutboxEvent.objects.filter(pk__in=[e.pk for e in todo], status=OutboxEvent.Status.DISPATCHED).update(
            worker=worker
        )
    receipts = {
        (str(event_id), handler)
        for event_id, handler in HandlerReceipt.objects.filter(event__in=todo).values_list("event_id", "handler")
    }
    failed: set[str] = set()
    by_type: dict[str, list[OutboxEvent]] = defaultdict(list)
    for event in todo:
        by_type[event.event_type].append(event)
    for event_type, group in by_type.items():
        pairs = []
        for event in group:
            try:
                pairs.append((_contract(event).model_validate(event.payload), event))
            except Exception as exc:
                # A contract removed or changed by a deploy fails this event only, never its batch:
                # it retries with backoff (the deploy that restores the contract may be minutes
                # away) and is then parked as an EventFailure, replayable once the code is fixed.
                failed.add(str(event.pk))
                name = f"contract:{event.event_type}:v{event.schema_version}"
                outcomes[str(event.pk)] = _failed(event, name, traceback.format_exc(), error=_summary(exc))
        for handler in handlers_for(event_type):
            pending = [
                (p, e) for p, e in pairs if (str(e.pk), handler.name) not in receipts and str(e.pk) not in failed
            ]
            if handler.batch and len(pending) > 1 and _apply_batch(handler, pending):
                continue
            for payload, event in pending:
                error = _apply_one(handler, payload, event)
                if error is not None:
                    failed.add(str(event.pk))
                    outcomes[str(event.pk)] = _failed(event, handler.name, error)
    done = [e.pk for e in todo if str(e.pk) not in failed]
    if done:
        OutboxEvent.objects.filter(pk__in=done).exclude(status__in=FINISHED).update(
            status=OutboxEvent.Status.DONE, finished_at=timezone.now(), last_error=""
        )
        outcomes.update({str(pk): "done" for pk in done})
    return outcomes


def _contract(event: OutboxEvent):
    contract = REGISTRY.get((event.event_type, event.schema_version))
    if contract is None:
        raise LookupError(f"no contract for {event.event_type} v{event.schema_version}")
    return contract


def _apply_batch(handler: Handler, pairs) -> bool:
    try:
        with transaction.atomic():
            handler.fn(pairs)
            HandlerReceipt.objects.bulk_create([HandlerReceipt(event=e, handler=handler.name) for _, e in pairs])
        return True
    except Exception:
        logger.info("batch handler failed; retrying its events one by one", extra={"handler": handler.name})
        return False


def _apply_one(handler: Handler, payload, event) -> str | None:
    """Apply one handler to one event with its receipt; returns the traceback if it failed."""
    try:
        with transaction.atomic():
            if handler.batch:
                handler.fn([(payload, event)])
            else:
                handler.fn(payload, event)
            HandlerReceipt.objects.create(event=event, handler=handler.name)
        return None
    except IntegrityError:
        # Another delivery of this event applied the handler at the same moment.
        if HandlerReceipt.objects.filter(event=event, handler=handler.name).exists():
            return None
        return traceback.format_exc()
    except Exception:
        return traceback.format_exc()


def _summary(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


def _failed(event: OutboxEvent, handler: str, tb: str, *, error: str = "") -> str:
    from hashinsight.events.outbox import dispatch, retry_delay

    error = error or tb.strip().splitlines()[-1][:500]
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
