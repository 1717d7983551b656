"""Coalescing: many events asking for the same follow-up work (recalculate user 12) inside a short
window run it once. The request is a database row, so it survives a Redis or worker restart."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from hashinsight.events.models import CoalescedWork


def request_work(key: str, task_name: str, args: list, *, window_s: float | None = None) -> bool:
    """Ask for ``task_name(*args)`` to run once after the window; returns True for the first request."""
    window = settings.COALESCE_WINDOW_S if window_s is None else window_s
    try:
        with transaction.atomic():
            CoalescedWork.objects.create(
                key=key, task=task_name, args=args, due_at=timezone.now() + timedelta(seconds=window)
            )
    except IntegrityError:
        CoalescedWork.objects.filter(key=key).update(requests=F("requests") + 1)
        return False
    transaction.on_commit(lambda: _schedule(key, window))
    return True


def _schedule(key: str, countdown: float) -> None:
    from hashinsight.events.tasks import run_coalesced

    with contextlib.suppress(OperationalError, OSError):  # broker down: sweep() reschedules it
        run_coalesced.apply_async(args=[key], countdown=countdown or None)


def run(key: str) -> str:
    """Run the work for ``key`` and remove the request, unless more requests arrived meanwhile."""
    from celery import current_app

    row = CoalescedWork.objects.filter(key=key).first()
    if row is None:
        return "nothing"
    seen = row.requests
    current_app.loader.import_default_modules()  # task modules, when this runs outside a worker
    current_app.tasks[row.task].run(*row.args)
    # Requests that arrived while we ran need one more run; keep the row and schedule it.
    if CoalescedWork.objects.filter(pk=row.pk, requests=seen).delete()[0] == 0:
        CoalescedWork.objects.filter(pk=row.pk).update(requests=0, due_at=timezone.now())
        _schedule(key, settings.COALESCE_WINDOW_S)
        return "ran-again-pending"
    return "ran"


def sweep() -> int:
    """Reschedule requests whose message was lost (overdue by more than the relay grace)."""
    overdue = timezone.now() - timedelta(seconds=settings.OUTBOX_RELAY_GRACE_S + settings.COALESCE_WINDOW_S)
    keys = list(CoalescedWork.objects.filter(due_at__lte=overdue).values_list("key", flat=True)[:1000])
    for key in keys:
        _schedule(key, 0)
    return len(keys)
