"""A worker that dies while applying events is noticed from its heartbeat: the relay sends its
events again within seconds, not after the dispatch timeout meant for messages lost in the broker.
A worker beats as soon as it is ready, so /api/health never calls a fresh worker stale."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from hashinsight.events.models import OutboxEvent
from hashinsight.events.outbox import relay
from hashinsight.events.processing import process_many
from hashinsight.observability import heartbeat
from hashinsight.observability.models import WorkerHeartbeat


def _dispatched(user_id: int, *, worker: str = "", age_s: float = 20) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="portfolio.changed", aggregate=f"user:{user_id}", payload={"user_id": user_id},
        status="dispatched", dispatched_at=timezone.now() - timedelta(seconds=age_s), worker=worker,
    )  # fmt: skip


@pytest.mark.django_db
def test_relay_resends_at_once_what_a_silent_worker_held_and_nothing_else(settings):
    settings.OUTBOX_DISPATCH_TIMEOUT_S = 300
    settings.WORKER_HEARTBEAT_S = 5
    WorkerHeartbeat.objects.create(hostname="events@a/dead", seen_at=timezone.now() - timedelta(seconds=16))
    WorkerHeartbeat.objects.create(hostname="events@b/live", seen_at=timezone.now() - timedelta(seconds=2))
    lost = _dispatched(1, worker="events@a/dead")
    never_beat = _dispatched(2, worker="events@c/unknown")  # died before its first beat was written
    busy = _dispatched(3, worker="events@b/live")  # a live worker is still applying it
    queued = _dispatched(4)  # still waiting in the broker's queue: only the dispatch timeout applies
    result = relay()
    assert result["found"] == 2
    assert OutboxEvent.objects.get(pk=lost.pk).status == "done"  # tasks run inline in tests
    assert OutboxEvent.objects.get(pk=never_beat.pk).status == "done"
    assert OutboxEvent.objects.get(pk=busy.pk).status == "dispatched"
    assert OutboxEvent.objects.get(pk=queued.pk).status == "dispatched"


@pytest.mark.django_db
def test_a_worker_stamps_the_events_it_applies_and_a_new_dispatch_clears_the_stamp(monkeypatch):
    from hashinsight.events import outbox

    seen = []
    monkeypatch.setattr(
        "hashinsight.events.processing.handlers_for",
        lambda event_type: [type("H", (), {"name": "spy", "batch": False, "fn": staticmethod(
            lambda payload, event: seen.append(OutboxEvent.objects.get(pk=event.pk).worker))})()],
    )  # fmt: skip
    event = _dispatched(5)
    assert process_many([event.pk], worker="events@a/1234") == {str(event.pk): "done"}
    assert seen == ["events@a/1234"]  # stamped before any handler ran
    event = _dispatched(6, worker="events@a/dead")
    monkeypatch.setattr(outbox, "_nobody_listens", lambda: False)
    monkeypatch.setattr("hashinsight.events.tasks.process_events.apply_async", lambda *a, **k: None)
    outbox.dispatch([event.pk])
    assert OutboxEvent.objects.get(pk=event.pk).worker == ""


@pytest.mark.django_db(transaction=True)
def test_a_ready_worker_beats_at_once_and_keeps_beating(settings):
    from hashinsight.celery import _name_worker, _start_heartbeat
    from hashinsight.observability.health import check_worker

    settings.WORKER_HEARTBEAT_S = 0.05
    assert check_worker()["ok"] is False  # no worker yet
    _name_worker(sender=type("W", (), {"hostname": "events@test"})())
    try:
        _start_heartbeat()
        seen = []
        assert _wait_for(lambda: seen.extend(_seen_at()) or bool(seen), 5)
        assert _wait_for(lambda: any(t > seen[0] for t in _seen_at()), 5)
        assert heartbeat.worker_id().startswith("events@test/")
        heartbeat.stop_beating()
        settings.WORKER_HEARTBEAT_S = 5
        assert _wait_for(lambda: check_worker()["ok"] is True, 5)
    finally:
        heartbeat.stop_beating()
        heartbeat._worker_id = ""


def _seen_at() -> list:
    return list(WorkerHeartbeat.objects.filter(hostname=heartbeat.worker_id()).values_list("seen_at", flat=True))


def _wait_for(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except OperationalError:
            # SQLite's shared in-memory test database locks a table while the heartbeat thread writes
            # it, and answers at once instead of waiting: not yet, look again.
            pass
        time.sleep(step)
    return False


# --- A real worker on Redis and PostgreSQL, killed with SIGKILL (fixtures of test_worker_kill) ---
from hashinsight.events.tests.test_worker_kill import (  # noqa: E402
    publish,
    started,
    wait_for,
    worker_env,  # noqa: F401 - a fixture
    worker_log,
)


@pytest.fixture
def fast_heartbeat(monkeypatch, settings):
    """Workers (and this process's relay) beat every second: set before worker_env copies the env."""
    monkeypatch.setenv("WORKER_HEARTBEAT_S", "1")
    settings.WORKER_HEARTBEAT_S = 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.real_worker
def test_killed_worker_is_noticed_from_its_heartbeat_and_recovered_in_seconds(fast_heartbeat, worker_env, settings):  # noqa: F811
    start, tmp = worker_env
    first = start()
    # A ready worker has beaten already: health does not wait for the first scheduled heartbeat.
    assert wait_for(lambda: WorkerHeartbeat.objects.filter(hostname__startswith="celery@").exists(), timeout=5)
    event = publish(3)
    assert wait_for(lambda: started(tmp, event)), worker_log(tmp)
    assert OutboxEvent.objects.get(pk=event.pk).worker.startswith("celery@")
    os.killpg(first.pid, signal.SIGKILL)  # main process and pool gone, mid-handler
    first.wait()
    killed_at = time.monotonic()
    start()
    # The dispatch timeout keeps its production value: only the heartbeat explains a fast recovery.
    assert settings.OUTBOX_DISPATCH_TIMEOUT_S >= 300
    assert wait_for(lambda: relay()["found"] >= 1, timeout=30, step=0.5), worker_log(tmp)
    assert time.monotonic() - killed_at < 30
    assert wait_for(lambda: OutboxEvent.objects.get(pk=event.pk).status == "done", timeout=60), worker_log(tmp)
    assert len(started(tmp, event)) == 2
