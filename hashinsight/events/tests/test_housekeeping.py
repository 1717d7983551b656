"""Periodic upkeep has a queue of its own (and every deployment consumes it); job runs left RUNNING
by a dead worker are closed by the housekeeping job."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from hashinsight.events.jobs import ABANDONED
from hashinsight.events.models import JobRun
from hashinsight.events.schedules import HOUSEKEEPING_QUEUE, SCHEDULES, move_to_housekeeping_queue, sync_schedules

ROOT = Path(settings.BASE_DIR)


# Upkeep runs on housekeeping; the telemetry rollups and the offline rule run beside ingest's own work.
UPKEEP = {"events.relay", "events.prune", "observability.worker_heartbeat", "core.warm_caches", "telemetry.retention"}
UPKEEP |= {"commands.expire"}
UPKEEP |= {"billing.check_chain_payments", "billing.mark_overdue_and_remind", "billing.close_proof_days"}
UPKEEP |= {"reports.run_schedules"}
TELEMETRY_JOBS = {"telemetry.rollup_5m", "telemetry.rollup_daily", "telemetry.evaluate_offline", "commands.verify"}
INTELLIGENCE_JOBS = {"intelligence.market_refresh", "intelligence.plan_tomorrow", "intelligence.forecast_refresh_all"}
INTELLIGENCE_JOBS |= {"intelligence.train_models", "intelligence.anomaly_scan"}
INTELLIGENCE_JOBS |= {"intelligence.respond_realtime", "intelligence.curtailment_event_tick"}
INTELLIGENCE_JOBS |= {"intelligence.power_prices_refresh"}
INTELLIGENCE_JOBS |= {
    "intelligence.revenue_refresh_all",
    "intelligence.smart_alerts",
    "intelligence.health_predict_all",
    "billing.build_monthly_invoices",
}


def test_every_periodic_job_is_scheduled_and_routed_to_the_queue_it_declares():
    from hashinsight.celery import app

    tasks = {task for _, task, *_ in SCHEDULES}
    assert tasks == UPKEEP | TELEMETRY_JOBS | INTELLIGENCE_JOBS
    for _, task, _, queue, _ in SCHEDULES:
        expected = "intelligence" if task in INTELLIGENCE_JOBS else "telemetry" if task in TELEMETRY_JOBS else None
        assert queue == (expected or HOUSEKEEPING_QUEUE), task
        assert app.amqp.router.route({}, task)["queue"].name == queue, task
    assert app.amqp.router.route({}, "events.process_events")["queue"].name == "default"


@pytest.mark.django_db
def test_existing_schedules_move_to_housekeeping_but_an_admins_own_queue_is_kept():
    PeriodicTask.objects.all().delete()
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.create(name="outbox relay", task="events.relay", interval=every, queue="default")
    PeriodicTask.objects.create(name="housekeeping", task="events.prune", interval=every, queue="special")
    assert move_to_housekeeping_queue(PeriodicTask) == 1
    assert PeriodicTask.objects.get(name="outbox relay").queue == HOUSEKEEPING_QUEUE
    assert PeriodicTask.objects.get(name="housekeeping").queue == "special"
    sync_schedules()
    assert PeriodicTask.objects.get(name="worker heartbeat").queue == HOUSEKEEPING_QUEUE


def test_every_deployment_runs_a_worker_on_the_housekeeping_queue():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumed = [" ".join(s.get("command", [])) for s in compose.values()]
    assert any("worker" in c and "-Q housekeeping" in c for c in consumed)
    procfile = (ROOT / "Procfile").read_text()
    assert any("worker" in line and "-Q housekeeping" in line for line in procfile.splitlines())
    embedded = (ROOT / "hashinsight/core/management/commands/run_embedded.py").read_text()
    assert '"housekeeping"' in embedded
    assert any("worker" in c and "telemetry" in c.split("-Q ")[-1].split()[0] for c in consumed if "-Q " in c)
    assert any("worker" in line and "telemetry" in line for line in procfile.splitlines())
    assert '"telemetry"' in embedded


@pytest.mark.django_db
def test_prune_closes_runs_their_worker_abandoned_and_leaves_live_ones(settings):
    from hashinsight.events.tasks import prune

    settings.CELERY_TASK_TIME_LIMIT = 180
    now = timezone.now()
    dead = JobRun.objects.create(job_type="cache_warming", status="running", started_at=now - timedelta(minutes=10))
    live = JobRun.objects.create(job_type="cache_warming", status="running", started_at=now - timedelta(seconds=30))
    result = prune.apply(kwargs={"trigger": "manual"}).get()
    assert result["job_runs_abandoned"] == 1
    dead.refresh_from_db()
    live.refresh_from_db()
    assert (dead.status, dead.error) == ("failed", ABANDONED)
    assert dead.finished_at is not None
    assert live.status == "running"


def test_the_embedded_broker_url_names_a_host_so_kombu_does_not_warn_at_every_start(caplog):
    from kombu import Connection

    if settings.REDIS_URL:
        pytest.skip("embedded mode's in-memory broker is only used without REDIS_URL")
    with caplog.at_level("WARNING", logger="kombu.connection"):
        Connection(settings.CELERY_BROKER_URL).info()
    assert "No hostname" not in caplog.text
