"""A real Celery worker on the real Redis broker and PostgreSQL, killed with SIGKILL mid-task: the
event is delivered again and its effect lands exactly once. Needs Redis and PostgreSQL (CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone
from kombu import Exchange, Queue

from hashinsight.events import outbox
from hashinsight.events.models import JobRun, OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_worker]
ROOT = Path(django_settings.BASE_DIR)
QUEUE = "killtest"


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_env(on_postgres, redis_url, tmp_path, settings):
    from hashinsight.celery import app

    if not app.conf.broker_url.startswith("redis"):
        pytest.skip("the Celery broker is not Redis")
    settings.OUTBOX_QUEUE = QUEUE
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": app.conf.broker_url,
        "EVENT_HANDLER_MODULES": "hashinsight.events.tests.support",
        "OUTBOX_QUEUE": QUEUE,
        "KILLTEST_DIR": str(tmp_path),
        "KILLTEST_SLEEP_S": "3",
        "LOG_LEVEL": "WARNING",
    }
    # Declare the queue (and, on Redis, its exchange binding) before anything is published to it,
    # and start from an empty queue: nothing left over from an earlier run.
    with app.connection_for_write() as conn:
        Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)(conn.default_channel).declare()
        conn.default_channel.queue_purge(QUEUE)
    procs = []
    log = (tmp_path / "worker.log").open("ab")

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hashinsight", "worker", "-Q", QUEUE, "-c", "1",
             "--pool", "prefork", "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "INFO"],
            cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(proc)
        assert wait_for(lambda: b"ready." in (tmp_path / "worker.log").read_bytes(), timeout=60), worker_log(tmp_path)
        return proc

    yield start, tmp_path
    log.close()
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def publish(user_id: int) -> OutboxEvent:
    from hashinsight.celery import app

    assert not app.conf.task_always_eager
    with transaction.atomic():
        return outbox.publish("portfolio.changed", aggregate=f"user:{user_id}", payload={"user_id": user_id})


def wait_for(predicate, timeout=60.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def started(tmp: Path, event) -> list[str]:
    path = tmp / "started"
    return [ln for ln in path.read_text().splitlines() if ln.startswith(str(event.pk))] if path.exists() else []


def worker_log(tmp: Path) -> str:
    return "the worker's log:\n" + (tmp / "worker.log").read_text(errors="replace")[-3000:]


def test_killed_pool_process_task_is_redelivered_and_applied_once(worker_env):
    start, tmp = worker_env
    worker = start()
    event = publish(1)  # committed: the on-commit hand-off sends it to the worker's queue
    assert wait_for(lambda: started(tmp, event)), worker_log(tmp)
    pid = int(started(tmp, event)[0].split()[1])
    os.kill(pid, signal.SIGKILL)  # the process running the task dies mid-handler
    assert wait_for(lambda: OutboxEvent.objects.get(pk=event.pk).status == "done", timeout=90), worker_log(tmp)
    assert len(started(tmp, event)) == 2  # delivered again after the kill
    assert JobRun.objects.filter(job_type="killtest-effect", result__event=str(event.pk)).count() == 1
    assert worker.poll() is None


def test_killed_worker_is_recovered_by_the_relay_and_applied_once(worker_env, settings):
    from hashinsight.events.outbox import relay

    start, tmp = worker_env
    first = start()
    event = publish(2)
    assert wait_for(lambda: started(tmp, event)), worker_log(tmp)
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker, main process and pool, is gone
    first.wait()
    assert OutboxEvent.objects.get(pk=event.pk).status == "dispatched"
    start()
    # The dispatch timeout has passed, without sleeping through it: the event was handed out an hour ago.
    OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=timezone.now() - timedelta(hours=1))
    assert relay()["resent"] == 1
    assert wait_for(lambda: OutboxEvent.objects.get(pk=event.pk).status == "done", timeout=90), worker_log(tmp)
    assert JobRun.objects.filter(job_type="killtest-effect", result__event=str(event.pk)).count() == 1
