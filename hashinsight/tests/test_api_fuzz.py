"""Schema-driven fuzzing of the whole API (schemathesis): no 5xx, and every answer matches the
OpenAPI schema (documented status or the standard error shape, response body, content type).

Bounded in time: a few examples per operation (``FUZZ_EXAMPLES``, default 10), run in-process
through the WSGI handler, as an owner (sees everything) and, with fewer cases, as a hosting client,
each with a fresh read-write token per call.
Excluded: ``POST /schedules/{id}/run`` (it would run a real batch job inline)."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from hashinsight.accounts.models import User
from hashinsight.accounts.services import api_token_create

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
# Two checks judge the API by rules it does not follow, by design:
# - "schema-valid data is accepted": a well-formed id of a site that is missing or hidden is rightly
#   refused (400/404), and the schema cannot say which ids exist;
# - "schema-invalid data is refused": DRF ignores unknown query parameters and body fields and coerces
#   42 to "42" for a text field, as most APIs do.
# Invalid requests are still generated: they must get a 4xx in the error shape, never a 5xx.
EXCLUDED_CHECKS = [checks.positive_data_acceptance, checks.negative_data_rejection]


def _load_schema():
    # The generator that serves /api/schema/, run at collection (it needs no database).
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    config = schemathesis.Config()
    # The coverage phase ignores max_examples (hundreds of boundary cases per operation, minutes in
    # all); examples + fuzzing keep the run bounded.
    config.projects.default.phases.update(phases=["examples", "fuzzing"])
    loaded = schemathesis.openapi.from_dict(raw, config=config)
    loaded.app = WSGIHandler()
    return loaded.exclude(path_regex=r"/schedules/\{id\}/run/")


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # A real WSGI handler closes "old" database connections around each request, which on PostgreSQL
    # closes the test's own transaction; Django's test client switches this off the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    "derandomize": True,
    "database": None,
}


def call_as(case, user):
    # The fuzzer may revoke the token or disable the user it is using; each call starts afresh.
    User.objects.filter(pk=user.pk).update(is_active=True)
    _, token = api_token_create(user=user, name="fuzz")
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=EXCLUDED_CHECKS)


@schema.parametrize()
@settings(max_examples=EXAMPLES, **SETTINGS)
def test_api_answers_every_generated_request_within_its_schema(case, farm):
    call_as(case, farm.users["owner"])


@schema.parametrize()
@settings(max_examples=max(2, EXAMPLES // 4), **SETTINGS)
def test_api_answers_a_hosting_client_within_its_schema(case, farm):
    # Fewer cases: what differs for a client is the scoping (404s, 403s), not the input space.
    call_as(case, farm.users["client_x"])


# --- responses the outside test found disagreeing with the schema, checked one by one -------------------


def conforms(farm, path: str, method: str, **case):
    """Call one operation as the owner and validate the answer against the schema; return its JSON."""
    _, token = api_token_create(user=farm.users["owner"], name="schema check")
    made = schema[path][method].Case(**case)
    response = made.call(headers={"Authorization": f"Bearer {token}"})
    made.validate_response(response, checks=[checks.not_a_server_error, checks.response_schema_conformance])
    return response.status_code, response.json()


def test_miner_rows_without_a_client_conform(farm):
    status, body = conforms(farm, "/api/v1/miners/", "GET", query={"limit": 100})
    assert status == 200
    assert None in {row["customer_name"] for row in body["results"]}


def test_site_wide_alerts_conform(farm):
    from telemetry.services import alert_raise

    alert = alert_raise(site=farm.site_a, alert_type="power", severity="warning", message="feed A down")
    status, body = conforms(farm, "/api/v1/alerts/{id}/", "GET", path_parameters={"id": alert.pk})
    assert (status, body["miner_serial"]) == (200, None)


def test_crontab_schedules_conform(farm):
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    crontab = CrontabSchedule.objects.create(minute="0", hour="3")
    task = PeriodicTask.objects.create(name="fuzz nightly", task="hashinsight.core.tasks.noop", crontab=crontab)
    status, body = conforms(farm, "/api/v1/schedules/{id}/", "GET", path_parameters={"id": task.pk})
    assert (status, body["every_s"]) == (200, None)


def test_created_site_carries_its_miner_count(farm):
    body = {"name": "North", "slug": "north", "timezone": "UTC", "capacity_kw": "1000"}
    status, created = conforms(farm, "/api/v1/sites/", "POST", body=body, media_type="application/json")
    assert (status, created["miner_count"]) == (201, 0)


def test_updated_site_carries_its_miner_count(farm):
    status, updated = conforms(
        farm, "/api/v1/sites/{id}/", "PATCH", path_parameters={"id": farm.site_a.pk},
        body={"location": "Texas"}, media_type="application/json",
    )  # fmt: skip
    assert (status, updated["miner_count"]) == (200, 3)
