"""The job figures of /metrics: runs per type and status, run time per type whatever the status,
only runs of the last 24 h."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hashinsight.events.models import JobRun
from hashinsight.observability.metrics import _database_figures

pytestmark = pytest.mark.django_db


def test_job_runs_counted_per_status_and_timed_per_type():
    JobRun.objects.create(job_type="cache_warming", status=JobRun.Status.SUCCESS, duration_ms=1200)
    JobRun.objects.create(job_type="cache_warming", status=JobRun.Status.SUCCESS, duration_ms=300)
    JobRun.objects.create(job_type="cache_warming", status=JobRun.Status.FAILED, duration_ms=250)
    JobRun.objects.create(job_type="cache_warming", status=JobRun.Status.RUNNING)  # no duration yet
    JobRun.objects.create(job_type="relay", status=JobRun.Status.SUCCESS, duration_ms=40)
    old = JobRun.objects.create(job_type="relay", status=JobRun.Status.SUCCESS, duration_ms=99_000)
    JobRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))

    figures = _database_figures()

    assert sorted(figures["runs"]) == [
        ("cache_warming", "failed", 1),
        ("cache_warming", "running", 1),
        ("cache_warming", "success", 2),
        ("relay", "success", 1),
    ]
    assert sorted(figures["durations"]) == [("cache_warming", 1.75), ("relay", 0.04)]
