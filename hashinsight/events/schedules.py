"""The periodic jobs, declared in one place. ``sync_schedules`` (run by a migration and by
``manage.py sync_schedules``) creates missing ones; admins edit, pause and resume them in admin
(django-celery-beat) or through /api/v1/schedules, and those edits are kept."""

from __future__ import annotations

SCHEDULES = [
    # name, task, every (seconds), queue, description
    ("outbox relay", "events.relay", 10, "default",
     "Re-send outbox events whose hand-off was missed or whose worker died."),
    ("worker heartbeat", "observability.worker_heartbeat", 30, "default",
     "Proves a worker is consuming; read by /api/health."),
    ("cache warming", "core.warm_caches", 300, "default",
     "Pre-computes portfolio and site figures, most active first."),
    ("housekeeping", "events.prune", 3600, "default",
     "Deletes finished outbox rows after 7 days and job runs after 30."),
]  # fmt: skip


def sync_schedules(IntervalSchedule=None, PeriodicTask=None) -> int:
    if IntervalSchedule is None:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask
    created = 0
    for name, task, seconds, queue, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        _, was_created = PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "queue": queue, "description": description}
        )
        created += was_created
    return created
