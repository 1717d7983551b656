"""Repeated events for the same user or site run one recalculation, not one per event."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import CoalescedWork, OutboxEvent
from hashinsight.tests.factories import PortfolioEntryFactory, UserFactory
from miners import services, summaries

pytestmark = pytest.mark.django_db


@pytest.fixture
def builds(monkeypatch):
    counts = {"user_portfolio": 0, "site_summary": 0}
    for name, real in (("user_portfolio", summaries.portfolio_summary), ("site_summary", summaries.site_summary)):

        def counting(*, id, _real=real, _name=name):
            counts[_name] += 1
            return _real(id=id)

        monkeypatch.setitem(cache_helper._BUILDERS, name, counting)
    return counts


def test_many_portfolio_changes_in_the_window_recalculate_once(builds, django_capture_on_commit_callbacks):
    user = UserFactory(role="CUSTOMER")
    entry = PortfolioEntryFactory(user=user)
    # Commits happen one by one; their hand-offs run, but the recalculation waits for the window.
    for quantity in range(1, 21):
        services.portfolio_entry_update(entry=entry, quantity=quantity)
    assert OutboxEvent.objects.filter(event_type="portfolio.changed").count() == 20
    from hashinsight.events.processing import process

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for event in OutboxEvent.objects.filter(status__in=["pending", "dispatched"]):
            process(event.pk)
    requests = dict(CoalescedWork.objects.values_list("key", "requests"))
    assert requests == {f"recalc:user:{user.pk}": 20, f"forecast:user:{user.pk}": 20}
    assert len(callbacks) == 2  # one scheduled run per follow-up (figures, forecast) for twenty requests
    for callback in callbacks:  # the window closes
        callback()
    assert builds["user_portfolio"] == 1
    assert not CoalescedWork.objects.exists()
    summary = cache_helper.get("user_portfolio", id=user.pk)
    assert summary.state == "hit"
    assert summary.value["hashrate_ths"] == "4000.00"  # 20 × 200 TH/s


def test_bulk_import_publishes_one_event_and_one_recalculation_per_site(
    api, farm, builds, django_capture_on_commit_callbacks
):
    api.force_authenticate(farm.users["owner"])
    rows = "serial,model,site,zone\n" + "".join(f"C{i},antminer-s21-200t,site-a,A1\n" for i in range(500))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.generic("POST", "/api/v1/miners/bulk", rows.encode(), content_type="text/csv")
    assert response.status_code == 201
    events = OutboxEvent.objects.filter(event_type="miners.bulk_imported")
    assert events.count() == 1
    assert events.get().payload["count"] == 500
    assert builds["site_summary"] == 1
    assert cache_helper.get("site_summary", id=farm.site_a.pk).value["by_status"]["active"] == 503


def test_work_whose_message_was_lost_is_run_by_the_sweep(builds, django_capture_on_commit_callbacks, settings):
    from hashinsight.events.coalesce import sweep
    from hashinsight.events.processing import process

    user = UserFactory(role="CUSTOMER")
    entry = PortfolioEntryFactory(user=user)
    services.portfolio_entry_update(entry=entry, quantity=3)
    with django_capture_on_commit_callbacks(execute=False):  # the scheduled run's message is lost
        for event in OutboxEvent.objects.filter(status__in=["pending", "dispatched"]):
            process(event.pk)
    key = f"recalc:user:{user.pk}"
    assert CoalescedWork.objects.filter(key=key).exists()

    assert sweep() == 0  # not overdue yet: its own message may still come
    assert builds["user_portfolio"] == 0
    assert CoalescedWork.objects.filter(key=key).exists()

    overdue = settings.OUTBOX_RELAY_GRACE_S + settings.COALESCE_WINDOW_S + 1
    CoalescedWork.objects.filter(key=key).update(due_at=timezone.now() - timedelta(seconds=overdue))
    assert sweep() == 1
    assert builds["user_portfolio"] == 1  # run inline (eager tasks), once
    assert not CoalescedWork.objects.filter(key=key).exists()
    assert cache_helper.get("user_portfolio", id=user.pk).value["hashrate_ths"] == "600.00"  # 3 × 200 TH/s
    assert sweep() == 0
