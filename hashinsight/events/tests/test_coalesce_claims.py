"""The coalescing sweep claims what it re-sends (moving ``due_at``) and a run holds a lease on its
key, so a slow queue is not flooded and one key's work never runs twice at once."""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from hashinsight.events import coalesce
from hashinsight.events.models import CoalescedWork

pytestmark = pytest.mark.django_db
TASK = "miners.recalculate_user_all"


@pytest.fixture
def runs(monkeypatch):
    """Replace the coalesced task's body with a recorder (``during`` runs inside it, if set)."""
    current_app.loader.import_default_modules()
    calls = {"n": 0, "during": None}

    def body(*args):
        calls["n"] += 1
        if calls["during"]:
            calls["during"]()

    monkeypatch.setattr(current_app.tasks[TASK], "run", body)
    return calls


@pytest.fixture
def scheduled(monkeypatch):
    sent = []
    monkeypatch.setattr(coalesce, "_schedule", lambda key, countdown: sent.append(key))
    return sent


def _row(key="recalc:user:1", *, due_s=-60.0, **fields) -> CoalescedWork:
    due = timezone.now() + timedelta(seconds=due_s)
    return CoalescedWork.objects.create(key=key, task=TASK, args=[1], due_at=due, **fields)


def test_sweep_moves_due_at_so_the_next_tick_does_not_send_again(settings, scheduled):
    settings.COALESCE_RESCHEDULE_S = 60
    row = _row()
    assert coalesce.sweep() == 1
    assert scheduled == [row.key]
    row.refresh_from_db()
    assert row.due_at > timezone.now() + timedelta(seconds=50)
    assert coalesce.sweep() == 0  # the next relay tick: still waiting in a slow queue, not re-sent
    assert scheduled == [row.key]


def test_sweep_leaves_running_keys_alone_but_takes_back_a_lapsed_lease(scheduled):
    _row("recalc:user:1", running_until=timezone.now() + timedelta(minutes=2))
    _row("recalc:user:2", running_until=timezone.now() - timedelta(seconds=1))  # its worker died
    assert coalesce.sweep() == 1
    assert scheduled == ["recalc:user:2"]


def test_a_second_delivery_while_the_work_runs_does_not_run_it_again(runs, scheduled):
    row = _row()
    inner = []
    runs["during"] = lambda: inner.append(coalesce.run(row.key))  # the duplicate arrives mid-run
    assert coalesce.run(row.key) == "ran"
    assert inner == ["busy"]
    assert runs["n"] == 1
    assert not CoalescedWork.objects.exists()
    assert coalesce.run(row.key) == "nothing"


def test_requests_during_a_run_keep_the_row_and_schedule_one_more_run(runs, scheduled, settings):
    row = _row()
    runs["during"] = lambda: coalesce.request_work_many([(row.key, TASK, [1])])
    assert coalesce.run(row.key) == "ran-again-pending"
    row.refresh_from_db()
    assert row.running_until is None  # the lease is released
    assert row.due_at > timezone.now()
    assert scheduled == [row.key]  # the follow-up run, not one per request
    runs["during"] = None
    assert coalesce.run(row.key) == "ran"
    assert runs["n"] == 2
    assert not CoalescedWork.objects.exists()


def test_a_failing_run_releases_its_lease_for_the_sweep(runs, scheduled):
    row = _row()

    def boom():
        raise RuntimeError("down")

    runs["during"] = boom
    with pytest.raises(RuntimeError):
        coalesce.run(row.key)
    row.refresh_from_db()
    assert row.running_until is None
    assert coalesce.sweep() == 1


def test_repeated_requests_count_on_one_row_and_schedule_once(scheduled, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = coalesce.request_work_many([("recalc:user:1", TASK, [1]), ("recalc:user:2", TASK, [2])])
        again = coalesce.request_work_many([("recalc:user:1", TASK, [1])])
    assert sorted(first) == ["recalc:user:1", "recalc:user:2"]
    assert again == []
    assert CoalescedWork.objects.get(key="recalc:user:1").requests == 2
    assert sorted(scheduled) == ["recalc:user:1", "recalc:user:2"]
