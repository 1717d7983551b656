"""The reports API answers what its OpenAPI schema says (the schema fuzz test found the lists documented as bare
arrays while they answer a page envelope), with real rows: nullable site/customer/invoice/times, files, schedules
with and without a last month sent; and an id too long to exist is a 404, not a database overflow."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache

import pytest
from django.core.files.base import ContentFile
from schemathesis import checks

from hashinsight.accounts.services import api_token_create
from hashinsight.reports.models import ReportFile, ReportJob, ReportSchedule

pytestmark = pytest.mark.django_db
HUGE_ID = "4181591007826960988072010190779847702306"  # the fuzzer's: 40 digits, far past 2**63


@cache
def openapi():
    import schemathesis
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    import json

    return schemathesis.openapi.from_dict(json.loads(raw))


def conforming(user, path: str, method: str = "GET", **case):
    """Call one operation as ``user`` through the Django test client's WSGI app and validate the answer."""
    from django.core.handlers.wsgi import WSGIHandler

    schema = openapi()
    schema.app = WSGIHandler()
    _, token = api_token_create(user=user, name="schema check")
    made = schema[path][method].Case(**case)
    response = made.call(headers={"Authorization": f"Bearer {token}"})
    made.validate_response(response, checks=[checks.not_a_server_error, checks.response_schema_conformance])
    return response.status_code, response.json()


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


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


@pytest.fixture
def rows(farm):
    queued = ReportJob.objects.create(kind="site_monthly", site=farm.site_a, month=date(2026, 9, 1), formats=["pdf"])
    done = ReportJob.objects.create(
        kind="client_statement", customer=farm.client_x, month=date(2026, 9, 1), formats=["xlsx", "pdf"],
        status="done", progress_pct=100, started_at=datetime(2026, 10, 1, 3, tzinfo=UTC),
        finished_at=datetime(2026, 10, 1, 3, 1, tzinfo=UTC),
    )  # fmt: skip
    for fmt in ("xlsx", "pdf"):
        f = ReportFile(job=done, format=fmt, size_bytes=3, sha256="0" * 64)
        f.file.save(f"statement.{fmt}", ContentFile(b"abc"), save=True)
    never = ReportSchedule.objects.create(kind="site_monthly", site=farm.site_a, recipients=["ops@example.com"])
    sent = ReportSchedule.objects.create(
        kind="client_statement", customer=farm.client_x, formats=["pdf"], recipients=[], day_of_month=5,
        enabled=False, last_month_sent=date(2026, 9, 1),
    )  # fmt: skip
    return {"queued": queued, "done": done, "never": never, "sent": sent}


def test_report_list_is_a_documented_page_of_jobs(farm, rows):
    status, body = conforming(farm.users["owner"], "/api/v1/reports/", query={"limit": 100})
    assert status == 200
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    by_id = {row["id"]: row for row in body["results"]}
    queued, done = by_id[rows["queued"].pk], by_id[rows["done"].pk]
    assert (queued["customer"], queued["customer_name"], queued["invoice"], queued["started_at"]) == (
        None, None, None, None,
    )  # fmt: skip
    assert (done["site"], done["site_name"]) == (None, None)
    assert [f["format"] for f in done["files"]] == ["pdf", "xlsx"]


def test_report_list_second_page_links_conform(farm, rows):
    status, body = conforming(farm.users["owner"], "/api/v1/reports/", query={"limit": 1, "offset": 1})
    assert (status, body["count"], len(body["results"]), body["next"]) == (200, 2, 1, None)
    assert body["previous"].startswith("http")


def test_report_detail_conforms(farm, rows):
    status, body = conforming(farm.users["owner"], "/api/v1/reports/{id}/", path_parameters={"id": rows["done"].pk})
    assert (status, body["status"], len(body["files"])) == (200, "done", 2)


def test_schedule_list_is_a_documented_page_of_schedules(farm, rows):
    status, body = conforming(farm.users["owner"], "/api/v1/report-schedules/")
    assert status == 200
    assert set(body) == {"count", "next", "previous", "results"}
    by_id = {row["id"]: row for row in body["results"]}
    assert by_id[rows["never"].pk]["last_month_sent"] is None
    assert by_id[rows["sent"].pk]["last_month_sent"] == "2026-09"
    assert (by_id[rows["sent"].pk]["site"], by_id[rows["never"].pk]["customer"]) == (None, None)


def test_schedule_detail_conforms(farm, rows):
    status, body = conforming(
        farm.users["owner"], "/api/v1/report-schedules/{id}/", path_parameters={"id": rows["sent"].pk}
    )
    assert (status, body["day_of_month"], body["enabled"]) == (200, 5, False)


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/reports/{HUGE_ID}",
        f"/api/v1/reports/{HUGE_ID}/files/pdf",
        f"/api/v1/report-schedules/{HUGE_ID}",
        "/api/v1/reports/9223372036854775808",  # 2**63: 19 digits
    ],
)
def test_an_id_too_long_to_exist_is_a_404_in_the_error_shape(farm, url):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(farm.users["owner"])
    response = api.get(url)
    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"


def test_schedule_list_offers_no_csv_it_cannot_give(farm, rows):
    # It used to claim text/csv and answer JSON; the portal's schedules page has the CSV.
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(farm.users["owner"])
    assert api.get("/api/v1/report-schedules", {"format": "csv"}).status_code == 404
    operation = openapi().raw_schema["paths"]["/api/v1/report-schedules/"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json"}
