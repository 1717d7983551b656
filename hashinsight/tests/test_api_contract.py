"""The API's shared contract: error shape, request ids, pagination, schema, constant query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hashinsight.tests.factories import MinerFactory

pytestmark = pytest.mark.django_db


def test_errors_have_one_shape_and_carry_the_request_id(api, farm):
    response = api.get("/api/v1/miners")
    # Anonymous: 401 with the scheme to use (a token), not 403, which would mean "signed in, not allowed".
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert set(body) == {"error_code", "message", "request_id", "details"}
    assert body["request_id"] == response["X-Request-ID"]


def test_validation_errors_name_fields(api, farm):
    api.force_authenticate(farm.users["owner"])
    response = api.post(
        "/api/v1/sites", {"name": "", "slug": "bad slug", "timezone": "Mars/Base", "capacity_kw": "-1"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "validation_error"
    assert {"name", "slug", "capacity_kw"} <= set(body["details"])


def test_bad_timezone_is_refused_and_nothing_written(api, farm):
    api.force_authenticate(farm.users["owner"])
    response = api.post(
        "/api/v1/sites", {"name": "X", "slug": "x", "timezone": "Mars/Base", "capacity_kw": "1"}, format="json"
    )
    assert response.status_code == 400
    assert "timezone" in response.json()["details"]


def test_malformed_json_is_a_400(api, farm):
    api.force_authenticate(farm.users["owner"])
    response = api.generic("POST", "/api/v1/sites", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "malformed_request"


def test_caller_request_id_is_echoed_when_sane(api):
    assert api.get("/api/v1/me", HTTP_X_REQUEST_ID="abc12345-trace")["X-Request-ID"] == "abc12345-trace"
    assert api.get("/api/v1/me", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"] != "bad id\nwith newline"


def test_pagination_defaults_and_cap(api, farm):
    for _ in range(25):
        MinerFactory(zone=farm.zone_a, site=farm.site_a)
    api.force_authenticate(farm.users["owner"])
    page = api.get("/api/v1/miners").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert len(page["results"]) == 20 and page["count"] == 31
    assert len(api.get("/api/v1/miners", {"limit": 1000}).json()["results"]) == 31
    filtered = api.get("/api/v1/miners", {"site": farm.site_b.pk, "ordering": "-serial"}).json()
    assert filtered["count"] == 3
    assert [r["serial"] for r in filtered["results"]] == sorted(
        [r["serial"] for r in filtered["results"]], reverse=True
    )
    assert api.get("/api/v1/miners", {"search": farm.miners[("site-b", "own")].serial}).json()["count"] == 1


@pytest.mark.parametrize("username", ["owner", "siteowner_a", "client_x"])
def test_miner_list_query_count_is_constant(api, farm, username):
    from hashinsight.accounts.models import User

    # A fresh user object per request, as in production (grant ids are memoised per request only).
    api.force_authenticate(User.objects.get(username=username))
    with CaptureQueriesContext(connection) as small:
        assert api.get("/api/v1/miners", {"limit": 100}).status_code == 200
    for zone, site in ((farm.zone_a, farm.site_a), (farm.zone_b, farm.site_b)):
        for _ in range(30):
            MinerFactory(zone=zone, site=site, customer=farm.client_x)
    api.force_authenticate(User.objects.get(username=username))
    with CaptureQueriesContext(connection) as large:
        assert api.get("/api/v1/miners", {"limit": 100}).status_code == 200
    assert len(large) == len(small) <= 6


def test_openapi_schema_and_docs(api, farm):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/miners/bulk/" in schema.json()["paths"]
    assert "/api/miners/bulk" in schema.json()["paths"]
    api.force_authenticate(farm.users["owner"])
    assert api.get("/api/docs/").status_code == 200


def test_unexpected_errors_keep_the_shape_and_hide_internals(api, farm, monkeypatch):
    from sites import selectors

    def explode(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(selectors, "site_list", explode)
    api.force_authenticate(farm.users["owner"])
    api.raise_request_exception = False
    response = api.get("/api/v1/sites")
    assert response.status_code == 500
    body = response.json()
    assert body["error_code"] == "server_error"
    assert "hunter2" not in response.content.decode()
    assert body["request_id"] == response["X-Request-ID"]


def test_schema_generates_without_a_warning(tmp_path):
    """Every endpoint documents itself: a view the generator has to guess about, or two choice sets sharing
    one enum name, is a warning here, so the published schema never carries a guessed or renamed type."""
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "TelemetryScopeEnum" in text and "TokenScopeEnum" in text
