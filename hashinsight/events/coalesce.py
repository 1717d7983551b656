"""Coalescing: many events asking for the same follow-up work (recalculate user 12) inside a short
window run it once. The request is a database row, so it survives a Redis or worker restart."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from hashinsight.events.models import CoalescedWork


def request_work(key: str, task_name: str, args: list, *, window_s: float | None = None) -> bool:
    """Ask for ``task_name(*args)`` to run once after the window; True if this was the first request."""
    return bool(request_work_many([(key, task_name, args)], window_s=window_s))


def request_work_many(requests: list[tuple[str, str, list]], *, window_s: float | None = None) -> list[str]:
    """Record work requests (a few queries for any number); returns the keys that were new and are
    scheduled to run after the window. Repeats of a waiting key only raise its request count."""
    window = settings.COALESCE_WINDOW_S if window_s is None else window_s
    wanted = {key: (task, args) for key, task, args in requests}
    if not wanted:
        return []
    with transaction.atomic():
        existing = set(CoalescedWork.objects.filter(key__in=wanted).values_list("key", flat=True))
        if existing:
            CoalescedWork.objects.filter(key__in=existing).update(requests=F("requests") + 1)
        due = timezone.now() + timedelta(seconds=window)
        new = [
            CoalescedWork(key=key, task=task, args=args, due_at=due)
            for key, (task, args) in wanted.items()
            if key not in existing
        ]
        # A concurrent request may create the same key first: ignore it; its creator schedules the run.
        CoalescedWork.objects.bulk_create(new, ignore_conflicts=True)
    keys = [w.key for w in new]
    for key in keys:
        transaction.on_commit(lambda key=key: _schedule(key, window))
    return keys


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
