"""Job records, /api/v1/jobs metrics, and pausing/resuming schedules."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from hashinsight.events.models import JobRun
from hashinsight.events.schedules import SCHEDULES
from hashinsight.events.tasks import prune, relay

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def schedules():
    # The migration creates them, but a transactional test elsewhere may have flushed the tables.
    from hashinsight.events.schedules import sync_schedules

    sync_schedules()


def test_every_declared_job_has_a_schedule():
    assert set(PeriodicTask.objects.values_list("task", flat=True)) >= {task for _, task, *_ in SCHEDULES}


def test_runs_leave_job_records_with_counts(farm):
    relay.run()
    prune.run(trigger="manual")
    from hashinsight.core.tasks import warm_caches

    warm_caches.run()
    runs = {r.job_type: r for r in JobRun.objects.all()}
    assert runs["outbox_relay"].status == "success" and runs["outbox_relay"].duration_ms is not None
    assert runs["housekeeping"].trigger == "manual"
    assert runs["cache_warming"].processed >= 2  # two sites in the farm, one customer with a portfolio
    assert runs["cache_warming"].succeeded == runs["cache_warming"].processed


def test_failed_run_is_recorded(monkeypatch):
    from hashinsight.events import outbox

    monkeypatch.setattr(outbox, "relay", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        relay.run()
    run = JobRun.objects.get(job_type="outbox_relay")
    assert run.status == "failed" and "ZeroDivisionError" in run.error


def test_jobs_api_lists_runs_and_metrics_for_system_roles(api, farm):
    relay.run()
    relay.run()
    api.force_authenticate(farm.users["admin"])
    listing = api.get("/api/v1/jobs", {"job_type": "outbox_relay"}).json()
    assert listing["count"] == 2
    metrics = api.get("/api/v1/jobs/metrics").json()["results"]
    row = next(r for r in metrics if r["job_type"] == "outbox_relay")
    assert row["runs"] == 2 and row["succeeded"] == 2 and row["failed"] == 0
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.get("/api/v1/jobs").status_code == 200  # SYSTEM READ
    api.force_authenticate(farm.users["client_x"])
    assert api.get("/api/v1/jobs").status_code == 403


def test_schedules_pause_resume_and_run_now(api, farm):
    task = PeriodicTask.objects.get(task="core.warm_caches")
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.post(f"/api/v1/schedules/{task.pk}/pause").status_code == 403  # SYSTEM READ only
    api.force_authenticate(farm.users["admin"])
    assert api.post(f"/api/v1/schedules/{task.pk}/pause").json()["enabled"] is False
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False
    assert api.post(f"/api/v1/schedules/{task.pk}/resume").json()["enabled"] is True
    response = api.post(f"/api/v1/schedules/{task.pk}/run")
    assert response.status_code == 202
    assert JobRun.objects.filter(job_type="cache_warming", trigger="manual").exists()


def test_sync_schedules_command_keeps_admin_edits():
    task = PeriodicTask.objects.get(task="events.relay")
    task.enabled = False
    task.save()
    call_command("sync_schedules")
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False


def test_a_run_is_found_by_the_task_id_a_queued_request_answered(api, farm):
    relay.run()
    relay.run()
    JobRun.objects.filter(pk=JobRun.objects.order_by("pk").first().pk).update(task_id="abc-123")
    api.force_authenticate(farm.users["admin"])
    listing = api.get("/api/v1/jobs", {"task_id": "abc-123"}).json()
    assert listing["count"] == 1 and listing["results"][0]["task_id"] == "abc-123"
