"""Coalescing: many events asking for the same follow-up work (recalculate user 12) inside a short
window run it once. The request is a database row, so it survives a Redis or worker restart.

A row's life: requested (``requests`` counts the asks, ``due_at`` is when its run is scheduled) →
claimed by one run (``running_until``, a lease, so two deliveries of the key never overlap) →
deleted, or kept and scheduled again when requests arrived while it ran."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from hashinsight.events.models import CoalescedWork


def request_work_many(requests: list[tuple[str, str, list]], *, window_s: float | None = None) -> list[str]:
    """Record work requests (a few queries for any number); returns the keys that were new and are
    scheduled to run after the window. Repeats of a waiting key only raise its request count."""
    window = settings.COALESCE_WINDOW_S if window_s is None else window_s
    wanted = {key: (task, args) for key, task, args in requests}
    if not wanted:
        return []
    new: list[str] = []
    with transaction.atomic():
        due = timezone.now() + timedelta(seconds=window)
        remaining = dict(wanted)
        # Insert-if-missing, then lock and count. The lock matters: a run that finishes meanwhile
        # deletes its row only if the count is still what it saw, so a request counted here is
        # either seen by that delete (no delete: the work runs again) or lands on a fresh row.
        # A row deleted between our insert and our lock is simply inserted again on the next pass.
        for _ in range(3):
            CoalescedWork.objects.bulk_create(
                [CoalescedWork(key=k, task=t, args=a, due_at=due, requests=0) for k, (t, a) in remaining.items()],
                ignore_conflicts=True,
            )
            locked = dict(
                CoalescedWork.objects.select_for_update()
                .filter(key__in=remaining)
                .order_by("key")  # one lock order for every requester: no deadlocks
                .values_list("key", "requests")
            )
            CoalescedWork.objects.filter(key__in=locked).update(requests=F("requests") + 1)
            # A count of 0 is a row just inserted (ours: a racing requester's insert commits with
            # its own increment, so we would see 1): its run is ours to schedule.
            new += [key for key, count in locked.items() if count == 0]
            remaining = {k: v for k, v in remaining.items() if k not in locked}
            if not remaining:
                break
    for key in new:
        transaction.on_commit(lambda key=key: _schedule(key, window))
    return new


def _schedule(key: str, countdown: float) -> None:
    from hashinsight.events.tasks import run_coalesced

    with contextlib.suppress(OperationalError, OSError):  # broker down: sweep() reschedules it
        run_coalesced.apply_async(args=[key], countdown=countdown or None)


def _free(now) -> Q:
    return Q(running_until__isnull=True) | Q(running_until__lt=now)


def run(key: str) -> str:
    """Run the work for ``key`` and remove the request, unless more requests arrived meanwhile."""
    from celery import current_app

    now = timezone.now()
    # The lease outlives the task's hard time limit, so it only lapses if the worker died mid-run.
    lease = now + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 10)
    if not CoalescedWork.objects.filter(_free(now), key=key).update(running_until=lease):
        # Gone (an earlier delivery did the work) or running right now: the running one sees any
        # request counted after it started and schedules itself again, so nothing is lost.
        return "busy" if CoalescedWork.objects.filter(key=key).exists() else "nothing"
    row = CoalescedWork.objects.get(key=key)
    seen = row.requests
    try:
        current_app.loader.import_default_modules()  # task modules, when this runs outside a worker
        current_app.tasks[row.task].run(*row.args)
    except Exception:
        # Let the sweep try again later rather than leave the key leased until the lease lapses.
        CoalescedWork.objects.filter(pk=row.pk).update(running_until=None)
        raise
    # Requests that arrived while we ran need one more run; keep the row and schedule it.
    if CoalescedWork.objects.filter(pk=row.pk, requests=seen).delete()[0] == 0:
        due = timezone.now() + timedelta(seconds=settings.COALESCE_WINDOW_S)
        CoalescedWork.objects.filter(pk=row.pk).update(due_at=due, running_until=None)
        _schedule(key, settings.COALESCE_WINDOW_S)
        return "ran-again-pending"
    return "ran"


def sweep() -> int:
    """Reschedule requests whose message was lost (overdue by more than the relay grace).

    Each rescheduled row's ``due_at`` moves ``COALESCE_RESCHEDULE_S`` ahead in the same transaction
    that picks it, so a queue that is merely slow (its message is still waiting) gets at most one
    extra message per key per period, not one per relay tick, and two sweeps never pick one row."""
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.OUTBOX_RELAY_GRACE_S + settings.COALESCE_WINDOW_S)
    with transaction.atomic():
        keys = list(
            CoalescedWork.objects.select_for_update(skip_locked=True)
            .filter(_free(now), due_at__lte=overdue)
            .order_by("due_at")
            .values_list("key", flat=True)[:1000]
        )
        if keys:
            later = now + timedelta(seconds=settings.COALESCE_RESCHEDULE_S)
            CoalescedWork.objects.filter(key__in=keys).update(due_at=later)
    for key in keys:
        _schedule(key, 0)
    return len(keys)
