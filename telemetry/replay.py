"""What a reconnecting WebSocket client missed: alert events after the last one it saw, limited to
what the user may see now (``?after=<event id>`` on ``/ws/alerts/``).

Events are outbox rows, so they are kept until pruned (done events: 7 days). The cursor is the last
event the client received, ordered by ``(created_at, id)``. Events are pushed when their handler
runs, which under a backlog is not strictly in creation order, so events created shortly *before*
the cursor but finished after it (or not finished yet) were pushed after the client's last frame and
are replayed too. The consumer drops a later live copy of anything it replayed."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from hashinsight.events.models import OutboxEvent
from sites.selectors import Scope

ALERT_EVENTS = ("alert.raised", "alert.updated", "alert.resolved")
LIMIT = 1000
# How far before the cursor an event may have been created and still been pushed after it.
OUT_OF_ORDER = timedelta(minutes=5)
# A reconnect misses seconds or minutes; an older cursor replays only the last day, so a client
# cannot make every connect scan a week of outbox rows.
MAX_AGE = timedelta(hours=24)


def alert_frame(event_id, event_type: str, alert: dict) -> dict:
    """The one shape of an alert WebSocket frame, live or replayed (static/js/live.js reads it)."""
    return {"type": "alert", "id": str(event_id), "event_type": event_type, "alert": alert}


def missed_alert_frames(*, scope: Scope, after: str | None, limit: int = LIMIT) -> tuple[list[dict], bool]:
    """Frames of the alert events after event ``after`` that ``scope`` allows, oldest first, at most
    ``limit`` (the newest ones when more were missed, and none older than ``MAX_AGE``), and whether
    any were left out. An unknown, pruned or malformed ``after`` replays nothing. Two queries."""
    if not after or scope.kind == "none":
        return [], False
    try:
        after_id = uuid.UUID(str(after))
    except ValueError:
        return [], False
    cursor = OutboxEvent.objects.filter(pk=after_id).values("created_at", "finished_at").first()
    if cursor is None:
        return [], False
    at, finished = cursor["created_at"], cursor["finished_at"]
    later = Q(created_at__gt=at) | Q(created_at=at, pk__gt=after_id)
    pushed_after = Q(finished_at__isnull=True)
    if finished is not None:
        pushed_after |= Q(finished_at__gt=finished)
    overtaken = Q(created_at__gte=at - OUT_OF_ORDER, created_at__lt=at) & pushed_after
    qs = OutboxEvent.objects.filter(later | overtaken, event_type__in=ALERT_EVENTS).exclude(pk=after_id)
    qs = qs.filter(created_at__gte=timezone.now() - MAX_AGE)
    allowed = scope.q(prefix="payload__")
    if allowed is not None:
        qs = qs.filter(allowed)
    rows = list(qs.order_by("-created_at", "-pk").values_list("pk", "event_type", "payload")[: limit + 1])
    truncated = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return [alert_frame(pk, event_type, payload) for pk, event_type, payload in rows], truncated
