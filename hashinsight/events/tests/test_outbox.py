"""The outbox: publish in the transaction, hand off after commit, relay what was missed, apply each
handler once, retry with backoff, park failures and replay them."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox, registry
from hashinsight.events.models import EventFailure, HandlerReceipt, OutboxEvent
from hashinsight.events.tasks import relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """A handler for portfolio.changed that records its calls; fails while ``calls.fail`` is set."""

    class Recorder(list):
        fail = False

    recorder = Recorder()

    def handler(payload, event):
        if recorder.fail:
            raise RuntimeError("boom")
        recorder.append((str(event.pk), payload.user_id))

    monkeypatch.setitem(registry._HANDLERS, "portfolio.changed", [registry.Handler("test.recorder", handler, False)])
    return recorder


def publish_portfolio_changed(user_id=7):
    with transaction.atomic():
        return outbox.publish("portfolio.changed", aggregate=f"user:{user_id}", payload={"user_id": user_id})


def test_publish_then_commit_dispatches_and_applies(calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_portfolio_changed()
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DONE
    assert calls == [(str(event.pk), 7)]
    assert HandlerReceipt.objects.filter(event=event, handler="test.recorder").count() == 1


def test_rolled_back_transaction_publishes_nothing(calls, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.publish("portfolio.changed", aggregate="user:1", payload={"user_id": 1})
        raise RuntimeError("the state change failed")
    assert not OutboxEvent.objects.exists()
    assert callbacks == [] and calls == []


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox.publish("portfolio.changed", aggregate="user:1", payload={"user_id": 1})


MISMATCH = "Payload for portfolio.changed does not match its contract."


@pytest.mark.parametrize(
    ("event_type", "payload", "code", "message"),
    [
        ("portfolio.changed", {"user_id": "seven"}, "invalid_event", MISMATCH),
        ("portfolio.changed", {"user_id": 1, "extra": 1}, "invalid_event", MISMATCH),
        ("nope", {}, "unknown_event_type", "No contract for nope v1."),
    ],
)  # fmt: skip
def test_contracts_are_validated_on_publish(event_type, payload, code, message):
    with pytest.raises(DomainError) as refused, transaction.atomic():
        outbox.publish(event_type, aggregate="x", payload=payload)
    assert (refused.value.code, refused.value.message, refused.value.status) == (code, message, 500)
    if code == "invalid_event":
        assert [e["loc"] for e in refused.value.details["errors"]] in ([("user_id",)], [("extra",)])
    assert not OutboxEvent.objects.exists()


def test_a_version_without_a_contract_is_refused_though_its_type_has_one():
    with pytest.raises(DomainError) as refused, transaction.atomic():
        outbox.publish("portfolio.changed", aggregate="user:1", payload={"user_id": 1}, version=2)
    expected = ("unknown_event_type", "No contract for portfolio.changed v2.")
    assert (refused.value.code, refused.value.message) == expected
    assert not OutboxEvent.objects.exists()


def test_field_errors_name_the_field_and_problem_only():
    with pytest.raises(DomainError) as refused, transaction.atomic():
        outbox.publish("forecast.refreshed", aggregate="network", payload={
            "subject": "network", "horizon_days": 0, "generated_at": "2026-11-25T12:00:00Z",
        })  # fmt: skip
    (error,) = refused.value.details["errors"]
    # No documentation links or validator context: the details stay small and JSON-serialisable.
    assert set(error) == {"type", "loc", "msg", "input"}
    assert (error["loc"], error["input"]) == (("horizon_days",), 0)


def test_dates_and_decimals_are_stored_as_json(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        event = outbox.publish("curtailment.planned", aggregate="site:3", payload={
            "site_id": 3, "plan_date": date(2026, 11, 26), "expected_profit_usd": Decimal("12.50"),
        })  # fmt: skip
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert stored.payload == {"site_id": 3, "plan_date": "2026-11-26", "expected_profit_usd": "12.50"}


def test_an_event_published_outside_a_request_has_no_request_id(django_capture_on_commit_callbacks):
    from hashinsight.observability.context import request_id_var

    token = request_id_var.set(None)  # a task run earlier in this thread may have left its id
    try:
        with django_capture_on_commit_callbacks(execute=False):
            event = publish_portfolio_changed()
    finally:
        request_id_var.reset(token)
    assert OutboxEvent.objects.get(pk=event.pk).request_id == ""


def test_crash_between_commit_and_hand_off_is_recovered_by_the_relay(calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the process "dies" before on_commit runs
        event = publish_portfolio_changed()
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.PENDING
    relay.run()  # inside the grace period: left to its own hand-off
    assert calls == []
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    relay.run()
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.DONE
    assert len(calls) == 1


def test_dispatched_but_unfinished_events_are_sent_again(calls, django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=False):
        event = publish_portfolio_changed()
    # Handed to a worker that died: dispatched long ago, never finished.
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.DISPATCHED, dispatched_at=timezone.now() - timedelta(hours=1)
    )
    relay.run()
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.DONE
    assert len(calls) == 1


def test_redelivery_applies_each_handler_once(calls, django_capture_on_commit_callbacks):
    from hashinsight.events.processing import process

    with django_capture_on_commit_callbacks(execute=True):
        event = publish_portfolio_changed()
    OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.DISPATCHED)  # as if redelivered
    assert process(event.pk) == "done"
    assert len(calls) == 1


def test_failing_handler_retries_parks_the_event_and_replays(calls, django_capture_on_commit_callbacks, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    calls.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_portfolio_changed()
    event.refresh_from_db()
    # Eager mode runs each retry at once; in production they are 2 s, 4 s, 8 s … apart (with jitter).
    assert event.status == OutboxEvent.Status.FAILED
    assert event.attempts == 3
    failure = EventFailure.objects.get(event=event)
    assert "RuntimeError: boom" in failure.error and "Traceback" in failure.traceback
    assert failure.payload == {"user_id": 7}

    calls.fail = False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("replay_events")
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DONE
    assert len(calls) == 1
    assert EventFailure.objects.get(pk=failure.pk).replayed_at is not None


def test_retry_delay_backs_off_with_jitter(settings):
    settings.OUTBOX_RETRY_BASE_S = 2
    settings.OUTBOX_RETRY_CAP_S = 60
    for attempt, nominal in ((1, 2), (2, 4), (3, 8), (10, 60)):
        delays = {outbox.retry_delay(attempt) for _ in range(20)}
        assert all(0.5 * nominal <= d <= 1.5 * nominal for d in delays)
        assert len(delays) > 1  # jittered


def test_admin_replay_action(admin_client, calls, django_capture_on_commit_callbacks, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    calls.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_portfolio_changed()
    failure = EventFailure.objects.get(event=event)
    calls.fail = False
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/events/eventfailure/", {"action": "replay", "_selected_action": [failure.pk]}, follow=True
        )
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.DONE


def test_publish_many_dispatches_once_per_transaction(calls, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    from hashinsight.events.tasks import process_events

    real = process_events.apply_async
    monkeypatch.setattr(process_events, "apply_async", lambda *a, **kw: sent.append(kw["args"][0]) or real(*a, **kw))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.publish_many("portfolio.changed", [(f"user:{i}", {"user_id": i}) for i in range(120)])
        outbox.publish("portfolio.changed", aggregate="user:999", payload={"user_id": 999})
    assert [len(batch) for batch in sent] == [50, 50, 21]  # one hand-off, in batches of 50
    assert OutboxEvent.objects.filter(status="done").count() == 121
    assert len(calls) == 121


def test_a_process_without_a_worker_leaves_events_for_the_embedded_relay(calls, django_capture_on_commit_callbacks):
    from hashinsight.celery import app

    broker = app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = publish_portfolio_changed()
    finally:
        app.conf.task_always_eager, app.conf.broker_url = True, broker
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.PENDING  # not sent into the void
    assert calls == []


@pytest.fixture
def sent(monkeypatch):
    """Records each hand-off to the broker (batch and options) instead of running it."""
    from hashinsight.events.tasks import process_events

    calls = []
    monkeypatch.setattr(process_events, "apply_async", lambda *a, **kw: calls.append(kw))
    return calls


def test_publish_records_the_request_id_and_the_validated_payload(calls, django_capture_on_commit_callbacks):
    from hashinsight.observability.context import request_id_var

    token = request_id_var.set("req-123")
    try:
        with django_capture_on_commit_callbacks(execute=False):
            event = publish_portfolio_changed(user_id=5)
    finally:
        request_id_var.reset(token)
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert (stored.event_type, stored.schema_version, stored.aggregate) == ("portfolio.changed", 1, "user:5")
    assert (stored.request_id, stored.payload, stored.status) == ("req-123", {"user_id": 5}, OutboxEvent.Status.PENDING)


def test_broker_down_leaves_events_pending_for_the_relay(calls, django_capture_on_commit_callbacks, monkeypatch):
    from hashinsight.events.tasks import process_events

    real = process_events.apply_async
    broker = {"up": False}

    def send(*args, **kwargs):
        if not broker["up"]:
            raise ConnectionError("broker unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(process_events, "apply_async", send)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_portfolio_changed()
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert stored.status == OutboxEvent.Status.PENDING
    assert stored.next_attempt_at is not None and stored.next_attempt_at <= timezone.now()
    assert calls == []
    broker["up"] = True
    assert outbox.relay()["resent"] == 1  # due at once: the relay does not wait out the grace period
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.DONE
    assert len(calls) == 1


def test_dispatch_claims_only_unfinished_events_and_batches_them(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        events = outbox.publish_many("portfolio.changed", [(f"user:{i}", {"user_id": i}) for i in range(51)])
    OutboxEvent.objects.filter(pk=events[0].pk).update(status=OutboxEvent.Status.DONE)
    assert outbox.dispatch([e.pk for e in events]) == 50
    assert [len(call["args"][0]) for call in sent] == [50]
    assert str(events[0].pk) not in sent[0]["args"][0]
    assert OutboxEvent.objects.get(pk=events[0].pk).status == OutboxEvent.Status.DONE
    assert OutboxEvent.objects.filter(status=OutboxEvent.Status.DISPATCHED).count() == 50
    assert outbox.dispatch([]) == 0


def test_dispatch_with_a_countdown_marks_the_time_it_is_due(sent, django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=False):
        event = publish_portfolio_changed()
    before = timezone.now()
    assert outbox.dispatch([event.pk], countdown=30) == 1
    assert sent[0]["countdown"] == 30
    assert sent[0]["queue"] == settings.OUTBOX_QUEUE
    dispatched_at = OutboxEvent.objects.get(pk=event.pk).dispatched_at
    assert before + timedelta(seconds=29) < dispatched_at < timezone.now() + timedelta(seconds=31)
    outbox.dispatch([event.pk])
    assert sent[1]["countdown"] is None


def test_relay_leaves_events_that_are_on_their_way(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        _fresh, retry_later, running, done = (publish_portfolio_changed(user_id=i) for i in range(4))
    long_ago = timezone.now() - timedelta(hours=1)
    OutboxEvent.objects.filter(pk__in=[retry_later.pk, running.pk, done.pk]).update(created_at=long_ago)
    OutboxEvent.objects.filter(pk=retry_later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    OutboxEvent.objects.filter(pk=running.pk).update(status=OutboxEvent.Status.DISPATCHED, dispatched_at=timezone.now())
    OutboxEvent.objects.filter(pk=done.pk).update(status=OutboxEvent.Status.DONE)
    assert outbox.relay()["found"] == 0
    assert sent == []
    OutboxEvent.objects.filter(pk=retry_later.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert outbox.relay() == {"resent": 1, "found": 1, "coalesced_rescheduled": 0}
    assert sent[0]["args"][0] == [str(retry_later.pk)]


def test_relay_sends_the_oldest_first_up_to_its_limit(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        events = [publish_portfolio_changed(user_id=i) for i in range(3)]
    for age, event in zip((3, 1, 2), events, strict=True):
        OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=age))
    result = outbox.relay(limit=2)
    assert (result["found"], result["resent"]) == (2, 2)
    assert sent[0]["args"][0] == [str(events[0].pk), str(events[2].pk)]


def test_backlog_counts_what_is_not_finished(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        events = [publish_portfolio_changed(user_id=i) for i in range(4)]
    OutboxEvent.objects.filter(pk=events[1].pk).update(status=OutboxEvent.Status.DISPATCHED)
    OutboxEvent.objects.filter(pk=events[2].pk).update(status=OutboxEvent.Status.DONE)
    OutboxEvent.objects.filter(pk=events[3].pk).update(status=OutboxEvent.Status.FAILED)
    assert outbox.backlog() == 2


def test_retry_delay_is_capped(settings):
    settings.OUTBOX_RETRY_BASE_S = 2
    settings.OUTBOX_RETRY_CAP_S = 10
    assert all(5 <= outbox.retry_delay(30) <= 15 for _ in range(20))
    assert all(1 <= outbox.retry_delay(0) <= 3 for _ in range(20))  # a first attempt waits the base


def test_a_failed_hand_off_puts_back_only_its_own_unfinished_events(
    calls, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from hashinsight.events.tasks import process_events

    with django_capture_on_commit_callbacks(execute=False):
        in_flight, finished_meanwhile, failing = (publish_portfolio_changed(user_id=i) for i in range(3))
    OutboxEvent.objects.filter(pk=in_flight.pk).update(
        status=OutboxEvent.Status.DISPATCHED, dispatched_at=timezone.now()
    )  # another hand-off's event, on its way to a worker

    def fail_after_a_fast_worker(*args, **kwargs):
        # A worker took the message and finished one event before the broker reported the error.
        OutboxEvent.objects.filter(pk=finished_meanwhile.pk).update(status=OutboxEvent.Status.DONE)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(process_events, "apply_async", fail_after_a_fast_worker)
    with caplog.at_level("WARNING", logger="hashinsight.events.outbox"):
        assert outbox.dispatch([finished_meanwhile.pk, failing.pk]) == 0
    status = dict(OutboxEvent.objects.values_list("pk", "status"))
    assert status[in_flight.pk] == OutboxEvent.Status.DISPATCHED
    assert status[finished_meanwhile.pk] == OutboxEvent.Status.DONE
    assert status[failing.pk] == OutboxEvent.Status.PENDING
    (record,) = [r for r in caplog.records if r.name == "hashinsight.events.outbox"]
    assert record.getMessage() == "outbox hand-off failed; left for the relay"
    assert record.events == 2
    assert record.exc_info and record.exc_info[0] is ConnectionError  # the traceback is logged


def test_dispatch_counts_every_batch_it_sent(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        events = outbox.publish_many("portfolio.changed", [(f"user:{i}", {"user_id": i}) for i in range(120)])
    assert outbox.dispatch([e.pk for e in events]) == 120
    assert [len(call["args"][0]) for call in sent] == [50, 50, 20]
