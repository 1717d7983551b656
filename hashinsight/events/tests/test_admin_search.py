"""Admin search and filters on job runs and event failures: what an operator pastes from a log
finds the row, and nothing else."""

import pytest

from hashinsight.accounts.roles import Role
from hashinsight.events.models import EventFailure, JobRun, OutboxEvent
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(role=Role.ADMIN))
    return client


@pytest.fixture
def runs():
    return {
        "relay": JobRun.objects.create(job_type="outbox.relay", status="success", task_id="task-aaa-111"),
        "forecast": JobRun.objects.create(
            job_type="forecast.refresh", status="failed", task_id="task-bbb-222", error="ConnectionRefusedError: redis"
        ),
    }


@pytest.fixture
def failures():
    def failure(event_type, handler, error):
        event = OutboxEvent.objects.create(event_type=event_type, aggregate="x:1", payload={}, status="failed")
        return EventFailure.objects.create(
            event=event, handler=handler, error=error, traceback="tb", payload={}, attempts=5
        )

    return {
        "alert": failure("alert.raised", "telemetry.handlers.push_alerts", "ChannelFull: group alerts"),
        "portfolio": failure("portfolio.changed", "miners.handlers.recalculate_portfolio", "OperationalError: locked"),
    }


def listed(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("query", "found", "absent"),
    [
        ("forecast.refresh", "task-bbb-222", "task-aaa-111"),  # job name
        ("task-aaa", "task-aaa-111", "task-bbb-222"),  # task id, as pasted from a worker log
        ("ConnectionRefused", "task-bbb-222", "task-aaa-111"),  # error text
        ("success", "task-aaa-111", "task-bbb-222"),  # status
    ],
)
def test_job_runs_are_searchable(admin_client, runs, query, found, absent):
    page = listed(admin_client, "/admin/events/jobrun/", q=query)
    assert change_link(runs, found) in page
    assert change_link(runs, absent) not in page


def change_link(runs, task_id) -> str:
    run = next(r for r in runs.values() if r.task_id == task_id)
    return f"/admin/events/jobrun/{run.pk}/change/"


def test_job_runs_filter_by_status(admin_client, runs):
    page = listed(admin_client, "/admin/events/jobrun/", status__exact="failed")
    assert change_link(runs, "task-bbb-222") in page and change_link(runs, "task-aaa-111") not in page


@pytest.mark.parametrize(
    ("query", "found", "absent"),
    [
        ("alert.raised", "ChannelFull", "OperationalError"),  # event type
        ("recalculate_portfolio", "OperationalError", "ChannelFull"),  # handler
        ("locked", "OperationalError", "ChannelFull"),  # error text
    ],
)
def test_event_failures_are_searchable(admin_client, failures, query, found, absent):
    page = listed(admin_client, "/admin/events/eventfailure/", q=query)
    assert found in page
    assert absent not in page


def test_event_failures_are_found_by_event_id(admin_client, failures):
    event_id = str(failures["alert"].event_id)
    page = listed(admin_client, "/admin/events/eventfailure/", q=event_id)
    assert "ChannelFull" in page and "OperationalError" not in page


def test_event_failures_filter_by_event_type_and_replay(admin_client, failures):
    page = listed(admin_client, "/admin/events/eventfailure/", event__event_type="portfolio.changed")
    assert "OperationalError" in page and "ChannelFull" not in page
    page = listed(admin_client, "/admin/events/eventfailure/", replayed_at__isnull="True")
    assert "OperationalError" in page and "ChannelFull" in page


def test_site_owners_can_neither_read_nor_replay_event_failures(client, failures):
    # Payloads are not scoped by site (an alert at a site they may not see): SYSTEM READ stops at
    # job runs; neither the list, its search nor the replay action opens for a site owner.
    client.force_login(UserFactory(role=Role.MINING_SITE_OWNER))
    response = client.get("/admin/events/eventfailure/", {"q": "ChannelFull"})
    assert response.status_code == 403
    assert b"result_list" not in response.content  # no changelist rendered
    response = client.post(
        "/admin/events/eventfailure/",
        {"action": "replay", "_selected_action": [failures["alert"].pk]},
    )
    assert response.status_code == 403
    failures["alert"].refresh_from_db()
    assert failures["alert"].replayed_at is None
