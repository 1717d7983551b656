"""Intelligence API: an id too long to exist (the schema fuzz test sent a 40-digit miner id) is a 404 in the error
shape on every id route, never a database overflow (a 500 on SQLite); and the responder's decision list answers
the page envelope its schema documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

import pytest
from rest_framework.test import APIClient
from schemathesis import checks

from hashinsight.accounts.services import api_token_create
from intelligence.models import ResponderDecision

pytestmark = pytest.mark.django_db
HUGE = "4181591007826960988072010190779847702306"  # the fuzzer's: 40 digits
PAST_BIGINT = str(2**63)  # 19 digits, one past the largest id

ROUTES = [
    ("get", "/api/v1/miner-health/{id}"),
    ("get", "/api/v1/sites/{id}/responder"),
    ("put", "/api/v1/sites/{id}/responder"),
    ("get", "/api/v1/sites/{id}/responder/decisions"),
    ("get", "/api/v1/curtailment/events/{id}"),
    ("post", "/api/v1/curtailment/events/{id}/end"),
    ("get", "/api/v1/curtailment/plans/{id}"),
    ("post", "/api/v1/curtailment/plans/{id}/send"),
    ("get", "/api/v1/curtailment/profiles/{id}"),
    ("post", "/api/v1/curtailment/profiles/{id}/default"),
    ("get", "/api/v1/curtailment/programs/{id}"),
    ("post", "/api/v1/curtailment/programs/{id}/rotate"),
    ("get", "/api/v1/forecasts/{id}"),
    ("get", "/api/v1/forecast-models/{id}"),
    ("post", "/api/v1/forecast-models/{id}/activate"),
    ("get", "/api/v1/sites/{id}/power-prices"),
    ("get", "/api/forecast/{id}"),
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # A real WSGI handler closes "old" database connections around each request, which on PostgreSQL closes the
    # test's own transaction; Django's test client switches this off the same way (as test_api_fuzz.py does).
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owner_api(farm):
    api = APIClient()
    api.force_authenticate(farm.users["owner"])
    return api


@pytest.mark.parametrize("method,route", ROUTES)
@pytest.mark.parametrize("pk", [HUGE, PAST_BIGINT])
def test_an_id_too_long_to_exist_is_a_404(owner_api, method, route, pk):
    response = getattr(owner_api, method)(route.format(id=pk), {}, format="json")
    assert response.status_code == 404, response.content[:300]
    assert response.json()["error_code"] == "not_found"


def test_the_largest_possible_id_still_reaches_the_view(owner_api):
    # 18 digits pass the route; the view answers its own 404 (no such miner), not the router's.
    assert owner_api.get("/api/v1/miner-health/999999999999999999").status_code == 404
    assert owner_api.get("/api/v1/sites/999999999999999999/responder").status_code == 404


def test_miner_health_filters_refuse_an_id_too_long_to_exist(owner_api):
    for name in ("site", "customer"):
        response = owner_api.get("/api/v1/miner-health", {name: HUGE})
        assert response.status_code == 400
        assert response.json()["details"]["field"] == name


@cache
def openapi():
    import schemathesis
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    return schemathesis.openapi.from_dict(json.loads(raw))


def test_responder_decisions_are_a_documented_page(farm):
    from django.core.handlers.wsgi import WSGIHandler

    site = farm.site_a
    for hour, actions in ((1, []), (2, [{"group": "S19", "from_on": 3, "to_on": 0, "reason": "price"}])):
        ResponderDecision.objects.create(
            site=site, interval_start=datetime(2026, 11, 1, hour, tzinfo=UTC), price_usd_per_mwh=Decimal("-12.50"),
            decided_price_usd_per_mwh=Decimal("140.00"), decision={"actions": actions, "power_kw": 10.5},
        )  # fmt: skip
    schema = openapi()
    schema.app = WSGIHandler()
    _, token = api_token_create(user=farm.users["owner"], name="schema check")
    case = schema["/api/v1/sites/{id}/responder/decisions/"]["GET"].Case(
        path_parameters={"id": str(site.pk)}, query={"limit": 1}
    )
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[checks.not_a_server_error, checks.response_schema_conformance])
    body = response.json()
    assert (response.status_code, body["count"], len(body["results"]), body["previous"]) == (200, 2, 1, None)
    assert body["next"].startswith("http")
    assert body["results"][0]["price_usd_per_mwh"] == "-12.50"
    assert body["results"][0]["interval_start"].startswith("2026-11-01T02:00")
