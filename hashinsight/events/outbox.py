"""Publishing and dispatching outbox events.

``publish`` is called by services inside their transaction; the row commits (or rolls back) with the
state change. After commit the event is handed to Celery; if that hand-off never happens (crash,
broker down) the relay finds the row still pending and sends it again.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError

from hashinsight.core.errors import DomainError
from hashinsight.events.contracts import REGISTRY, Contract
from hashinsight.events.models import OutboxEvent
from hashinsight.observability.context import current_request_id

logger = logging.getLogger(__name__)
_pending = threading.local()
UNFINISHED = (OutboxEvent.Status.PENDING, OutboxEvent.Status.DISPATCHED)


def validate_payload(event_type: str, version: int, payload: dict) -> Contract:
    contract = REGISTRY.get((event_type, version))
    if contract is None:
        raise DomainError("unknown_event_type", f"No contract for {event_type} v{version}.", status=500)
    try:
        return contract.model_validate(payload)
    except ValidationError as exc:
        raise DomainError(
            "invalid_event", f"Payload for {event_type} does not match its contract.", status=500,
            details={"errors": exc.errors(include_url=False, include_context=False)},
        ) from exc  # fmt: skip


def publish(event_type: str, *, aggregate: str, payload: dict, version: int = 1) -> OutboxEvent:
    """Append an event to the outbox in the caller's transaction; dispatched after it commits."""
    return publish_many(event_type, [(aggregate, payload)], version=version)[0]


def publish_many(event_type: str, items: list[tuple[str, dict]], *, version: int = 1) -> list[OutboxEvent]:
    """``publish`` for many events of one type (aggregate, payload pairs): one INSERT for all."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox.publish must run inside the transaction that changes state")
    request_id = current_request_id() or ""
    events = OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                event_type=event_type, schema_version=version, aggregate=aggregate, request_id=request_id,
                payload=validate_payload(event_type, version, payload).model_dump(mode="json"),
            )
            for aggregate, payload in items
        ]
    )  # fmt: skip
    for event in events:
        _after_commit(event.pk)
    return events


def _after_commit(event_id) -> None:
    """Queue the id for hand-off; the first callback to run after commit sends every queued id in
    one go, so a transaction publishing 500 events costs a few broker messages, not 500."""
    pending = _pending.__dict__.setdefault("ids", [])
    pending.append(event_id)
    transaction.on_commit(_flush_pending)


def _flush_pending() -> None:
    ids, _pending.ids = getattr(_pending, "ids", []), []
    # Ids from a rolled-back transaction may linger here; dispatch only claims rows that exist.
    dispatch(ids)


BATCH = 50  # events per task: a burst costs one broker round-trip per 50 events, not per event
# Set by run_embedded: this process runs a worker that consumes its in-memory broker.
LOCAL_WORKER = False


def _nobody_listens() -> bool:
    """True in a process (a management command) whose in-memory broker has no worker: what it sends
    there is lost, so it leaves events pending for the embedded server's relay instead."""
    from hashinsight.celery import app

    return app.conf.broker_url.startswith("memory") and not LOCAL_WORKER and not app.conf.task_always_eager


def dispatch(event_ids: Iterable, *, countdown: float = 0) -> int:
    """Mark events dispatched and send them to workers in batches. Marking first means a fast
    worker's 'done' is never overwritten; if sending fails the rows go back to pending for the relay."""
    from hashinsight.events.tasks import process_events

    ids = list(event_ids)
    if not ids or _nobody_listens():
        return 0
    claimed = _claim(ids, timezone.now() + timedelta(seconds=countdown))
    sent = 0
    for start in range(0, len(claimed), BATCH):
        batch = [str(pk) for pk in claimed[start : start + BATCH]]
        try:
            process_events.apply_async(args=[batch], countdown=countdown or None, queue=settings.OUTBOX_QUEUE)
            sent += len(batch)
        except Exception:  # the broker is down: the relay will send them later
            logger.warning("outbox hand-off failed; left for the relay", extra={"events": len(batch)}, exc_info=True)
            OutboxEvent.objects.filter(pk__in=batch, status=OutboxEvent.Status.DISPATCHED).update(
                status=OutboxEvent.Status.PENDING, next_attempt_at=timezone.now()
            )
    return sent


def _claim(ids: list, dispatched_at) -> list[str]:
    """Mark the unfinished ones among ``ids`` dispatched and return them, in one statement
    (UPDATE … RETURNING, on PostgreSQL and SQLite alike): this runs once per committed transaction."""
    pk = OutboxEvent._meta.pk
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    placeholders = ", ".join(["%s"] * len(ids))
    sql = (
        f"UPDATE {table} SET status = %s, dispatched_at = %s, worker = '' "  # noqa: S608 - only placeholders are interpolated
        f"WHERE id IN ({placeholders}) AND status IN (%s, %s) RETURNING id"
    )
    params = [
        OutboxEvent.Status.DISPATCHED,
        connection.ops.adapt_datetimefield_value(dispatched_at),
        *(pk.get_db_prep_value(pk.to_python(i), connection) for i in ids),
        *UNFINISHED,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [str(uuid.UUID(str(row[0]))) for row in cursor.fetchall()]


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full-range jitter (0.5×–1.5×), capped."""
    base = settings.OUTBOX_RETRY_BASE_S * (2 ** max(attempts - 1, 0))
    return min(base, settings.OUTBOX_RETRY_CAP_S) * random.uniform(0.5, 1.5)


def relay(limit: int = 1000) -> dict:
    """Re-send what the on-commit hand-off missed: pending rows past the grace period (or whose
    retry is due), dispatched rows whose worker died while applying them (seconds after its
    heartbeat stops), and dispatched rows that never finished (their message was lost in the
    broker: after the dispatch timeout). Returns counts for the job record."""
    from hashinsight.observability.heartbeat import live_workers

    now = timezone.now()
    grace = now - timedelta(seconds=settings.OUTBOX_RELAY_GRACE_S)
    stuck_since = now - timedelta(seconds=settings.OUTBOX_DISPATCH_TIMEOUT_S)
    dispatched = Q(status=OutboxEvent.Status.DISPATCHED)
    due = (
        (
            Q(status=OutboxEvent.Status.PENDING)
            & (Q(next_attempt_at__isnull=True, created_at__lte=grace) | Q(next_attempt_at__lte=now))
        )
        | (dispatched & Q(dispatched_at__lte=stuck_since))
        | (dispatched & ~Q(worker="") & ~Q(worker__in=live_workers()))
    )
    ids = list(OutboxEvent.objects.filter(due).order_by("created_at").values_list("pk", flat=True)[:limit])
    sent = dispatch(ids)
    from hashinsight.events.coalesce import sweep

    return {"resent": sent, "found": len(ids), "coalesced_rescheduled": sweep()}


def backlog() -> int:
    return OutboxEvent.objects.filter(status__in=UNFINISHED).count()
