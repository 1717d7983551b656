"""One event whose contract is gone (or whose payload no longer matches it) must not hold up the
other events of its batch: they finish, it retries and is then parked as an EventFailure."""

import pytest

from hashinsight.events import contracts
from hashinsight.events.models import EventFailure, OutboxEvent
from hashinsight.events.processing import process_many

pytestmark = pytest.mark.django_db


def _event(user_id: int, **fields) -> OutboxEvent:
    defaults = {"event_type": "portfolio.changed", "aggregate": f"user:{user_id}", "payload": {"user_id": user_id}}
    return OutboxEvent.objects.create(**(defaults | fields))


@pytest.mark.parametrize(
    "bad",
    [
        {"event_type": "portfolio.renamed"},  # no contract at all (removed by a deploy)
        {"schema_version": 9},  # a version this code does not know
        {"payload": {"user": 3}},  # the contract changed under a stored payload
    ],
)
def test_one_bad_event_fails_alone_and_is_parked(settings, bad):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    good = [_event(i) for i in range(1, 50)]
    broken = _event(99, **bad)
    # Tasks run inline here, so each retry is processed at once until the attempts are used up.
    outcomes = process_many([e.pk for e in [*good[:25], broken, *good[25:]]])
    assert outcomes[str(broken.pk)] == "retrying"  # this delivery's outcome; the retries ran inline
    assert {outcomes[str(e.pk)] for e in good} == {"done"}
    assert OutboxEvent.objects.filter(pk__in=[e.pk for e in good], status="done").count() == 49
    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.attempts == 3
    failure = EventFailure.objects.get(event=broken)
    assert failure.handler.startswith("contract:")
    assert failure.attempts == 3
    assert "portfolio" in failure.error or "user" in failure.error  # says what is wrong, not pydantic's URL


def test_a_contract_restored_by_a_later_deploy_lets_the_parked_event_be_replayed(settings, monkeypatch):
    from hashinsight.events.processing import replay

    settings.OUTBOX_MAX_ATTEMPTS = 1
    event = _event(7, event_type="portfolio.recalculated")
    assert process_many([event.pk])[str(event.pk)] == "failed"  # one attempt allowed: parked at once
    monkeypatch.setitem(contracts.REGISTRY, ("portfolio.recalculated", 1), contracts.PortfolioChanged)
    replay(EventFailure.objects.get(event=event))
    assert process_many([event.pk])[str(event.pk)] == "done"
    assert OutboxEvent.objects.get(pk=event.pk).status == "done"
