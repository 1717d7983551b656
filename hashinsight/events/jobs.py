"""Job records: every scheduled or manual batch run leaves a JobRun row."""

from __future__ import annotations

import functools
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from hashinsight.events.models import JobRun


class JobContext:
    def __init__(self, run: JobRun):
        self.run = run

    def count(self, *, processed: int = 0, succeeded: int = 0, failed: int = 0) -> None:
        self.run.processed += processed
        self.run.succeeded += succeeded
        self.run.failed += failed


def job(job_type: str, *, priority: int = JobRun.Priority.NORMAL):
    """Wrap a task body so its run is recorded. The body takes ``ctx`` and returns a result dict."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, trigger: str = "schedule", task_id: str = "", retries: int = 0, **kwargs):
            run = JobRun.objects.create(
                job_type=job_type, priority=priority, status=JobRun.Status.RUNNING, trigger=trigger,
                started_at=timezone.now(), task_id=task_id, retries=retries,
            )  # fmt: skip
            ctx = JobContext(run)
            start = time.perf_counter()
            try:
                result = fn(ctx, *args, **kwargs) or {}
            except Exception as exc:
                run.status, run.error = JobRun.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
                raise
            else:
                run.status, run.result = JobRun.Status.SUCCESS, result
                return result
            finally:
                run.finished_at = timezone.now()
                run.duration_ms = int((time.perf_counter() - start) * 1000)
                run.save()

        return wrapper

    return decorator


ABANDONED = "Abandoned: its worker stopped before the run finished."


def abandon_stale_runs() -> int:
    """Mark failed the runs still RUNNING past the task hard time limit: no live worker can still be
    inside them (Celery kills a task at that limit), so their worker died without recording the end."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    return JobRun.objects.filter(status=JobRun.Status.RUNNING, started_at__lt=cutoff).update(
        status=JobRun.Status.FAILED, finished_at=now, error=ABANDONED
    )
