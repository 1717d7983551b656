"""The reports API: every endpoint for every role (expectations written out by hand), client X never reaching client
Y's report or file (404), bad input answered 400 with a code and nothing written, the CSV export."""

from __future__ import annotations

import pytest

from hashinsight.reports import services
from hashinsight.reports.models import ReportJob, ReportSchedule
from hashinsight.reports.tests import factories_reports as fx

pytestmark = pytest.mark.django_db
USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "guest"]


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


@pytest.fixture
def jobs(farm, django_capture_on_commit_callbacks):
    """A rendered site report of site A (by the owner), of site B, and client X's and Y's statements."""
    fx.site_month(farm)
    inv_x = fx.issued_invoice(farm)
    inv_y = fx.issued_invoice(farm, customer=farm.client_y, number="INV-Y")
    owner = farm.users["owner"]
    with django_capture_on_commit_callbacks(execute=True):
        out = {
            "site_a": services.report_request(user=owner, kind="site_monthly", site=farm.site_a.pk, month="2026-09",
                                              formats=["xlsx"]),
            "site_b": services.report_request(user=owner, kind="site_monthly", site=farm.site_b.pk, month="2026-09",
                                              formats=["xlsx"]),
            "x": services.report_request(user=owner, kind="client_statement", invoice=inv_x.pk, formats=["xlsx"]),
            "y": services.report_request(user=owner, kind="client_statement", invoice=inv_y.pk, formats=["xlsx"]),
        }  # fmt: skip
    assert all(ReportJob.objects.get(pk=j.pk).status == "done" for j in out.values())
    return out


# What each user sees of the four jobs (by hand, from the matrix and the scope rules).
SEES = {
    "owner": {"site_a", "site_b", "x", "y"},
    "admin": {"site_a", "site_b", "x", "y"},
    "siteowner_a": {"site_a", "x", "y"},  # the statements are of invoices at site A
    "siteowner_b_ro": {"site_b"},
    "client_x": {"x"},
    "client_y": {"y"},
    "customer": set(),
    "guest": None,  # no REPORT access: 403
}


@pytest.mark.parametrize("username", USERS)
def test_list_detail_and_file_for_every_role(api, farm, jobs, username):
    user = farm.users[username]
    api.force_authenticate(user)
    listed = api.get("/api/v1/reports")
    if SEES[username] is None:
        assert listed.status_code == 403
        for job in jobs.values():
            assert api.get(f"/api/v1/reports/{job.pk}").status_code == 403
            assert api.get(f"/api/v1/reports/{job.pk}/files/xlsx").status_code == 403
        return
    assert listed.status_code == 200
    assert {r["id"] for r in listed.json()["results"]} == {jobs[k].pk for k in SEES[username]}
    for key, job in jobs.items():
        detail = api.get(f"/api/v1/reports/{job.pk}")
        file = api.get(f"/api/v1/reports/{job.pk}/files/xlsx")
        if key in SEES[username]:
            assert detail.status_code == 200 and detail.json()["progress_pct"] == 100
            assert detail.json()["files"][0]["url"] == f"/api/v1/reports/{job.pk}/files/xlsx"
            assert file.status_code == 200 and file["X-Content-SHA256"] == detail.json()["files"][0]["sha256"]
            assert file["Content-Disposition"].startswith("attachment;")
            assert b"".join(file.streaming_content)[:2] == b"PK"
        else:
            assert (detail.status_code, file.status_code) == (404, 404), (username, key)


def test_anonymous_gets_nothing(api, jobs):
    assert api.get("/api/v1/reports").status_code in (401, 403)
    assert api.get(f"/api/v1/reports/{jobs['x'].pk}/files/xlsx").status_code in (401, 403)
    assert api.get("/api/v1/report-schedules").status_code in (401, 403)


def test_a_missing_format_or_id_is_a_404(api, farm, jobs):
    api.force_authenticate(farm.users["owner"])
    assert api.get(f"/api/v1/reports/{jobs['x'].pk}/files/pdf").status_code == 404
    assert api.get(f"/api/v1/reports/{jobs['x'].pk}/files/exe").status_code == 404
    assert api.get("/api/v1/reports/99999999999999999999999").status_code == 404


@pytest.mark.parametrize(
    ("username", "body", "status"),
    [
        ("owner", {"kind": "site_monthly", "site": "A", "month": "2026-09"}, 202),
        ("siteowner_a", {"kind": "site_monthly", "site": "A", "month": "2026-09", "formats": ["pdf", "pptx"]}, 202),
        ("siteowner_a", {"kind": "site_monthly", "site": "B", "month": "2026-09"}, 404),
        ("siteowner_b_ro", {"kind": "site_monthly", "site": "B", "month": "2026-09"}, 202),
        ("client_x", {"kind": "site_monthly", "site": "A", "month": "2026-09"}, 403),
        ("client_x", {"kind": "client_statement", "invoice": "X", "language": "zh-hans"}, 202),
        ("client_x", {"kind": "client_statement", "invoice": "Y"}, 404),
        ("client_y", {"kind": "client_statement", "invoice": "X"}, 404),
        ("customer", {"kind": "client_statement", "invoice": "X"}, 404),
        ("guest", {"kind": "client_statement", "invoice": "X"}, 403),
    ],
)
def test_request_a_report(api, farm, username, body, status):
    fx.site_month(farm)
    invoices = {"X": fx.issued_invoice(farm).pk,
                "Y": fx.issued_invoice(farm, customer=farm.client_y, number="INV-Y").pk}  # fmt: skip
    sites = {"A": farm.site_a.pk, "B": farm.site_b.pk}
    body = {**body, **({"site": sites[body["site"]]} if "site" in body else {}),
            **({"invoice": invoices[body["invoice"]]} if "invoice" in body else {})}  # fmt: skip
    api.force_authenticate(farm.users[username])
    r = api.post("/api/v1/reports", body, format="json")
    assert r.status_code == status, r.content
    if status == 202:
        assert r.json()["status"] in ("queued", "done") and r.json()["kind"] == body["kind"]
    else:
        assert not ReportJob.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "invalid_body"),
        ({"kind": "site_monthly", "site": "S", "month": "2026-09", "colour": "red"}, "invalid_body"),
        ({"kind": "site_monthly", "site": "S", "month": "09/2026"}, "invalid_month"),
        ({"kind": "site_monthly", "site": "S", "month": "2026-09", "formats": "pdf,doc"}, "invalid_formats"),
        ({"kind": "site_monthly", "site": True, "month": "2026-09"}, "invalid"),
        ({"kind": "site_monthly", "site": "S", "month": "2026-09", "language": ["en"]}, "invalid_language"),
        ({"kind": None}, "invalid_kind"),
    ],
)
def test_bad_input_is_a_400_with_a_code(api, farm, body, code):
    if isinstance(body, dict) and body.get("site") == "S":
        body["site"] = farm.site_a.pk
    api.force_authenticate(farm.users["owner"])
    r = api.post("/api/v1/reports", body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error_code"] == code
    assert not ReportJob.objects.exists()


def test_list_filters_sort_and_csv(api, farm, jobs):
    api.force_authenticate(farm.users["owner"])
    r = api.get("/api/v1/reports", {"kind": "client_statement", "sort": "id"})
    assert [x["id"] for x in r.json()["results"]] == [jobs["x"].pk, jobs["y"].pk]
    assert api.get("/api/v1/reports", {"month": "2026-13"}).status_code == 400
    assert api.get("/api/v1/reports", {"sort": "nonsense"}).status_code == 400
    csv = api.get("/api/v1/reports", {"format": "csv", "customer": farm.client_x.pk})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    lines = b"".join(csv.streaming_content).decode().strip().splitlines()
    assert len(lines) == 2 and farm.client_x.company in lines[1]


def test_schedules_crud_is_for_full_access(api, farm):
    body = {"kind": "site_monthly", "site": farm.site_a.pk, "recipients": ["ops@example.test"], "formats": ["pdf"]}
    for username in ("client_x", "customer", "guest"):
        api.force_authenticate(farm.users[username])
        assert api.get("/api/v1/report-schedules").status_code == 403
        assert api.post("/api/v1/report-schedules", body, format="json").status_code == 403
    api.force_authenticate(farm.users["siteowner_a"])
    created = api.post("/api/v1/report-schedules", body, format="json")
    assert created.status_code == 201 and created.json()["day_of_month"] == 2
    sid = created.json()["id"]
    assert api.post("/api/v1/report-schedules", {**body, "site": farm.site_b.pk}, format="json").status_code == 404
    bad = api.post("/api/v1/report-schedules", {**body, "day_of_month": 31}, format="json")
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_day"
    assert api.patch(f"/api/v1/report-schedules/{sid}", {"enabled": False}, format="json").json()["enabled"] is False
    assert api.patch(f"/api/v1/report-schedules/{sid}", {"site": 1}, format="json").status_code == 400
    api.force_authenticate(farm.users["siteowner_b_ro"])  # another site's owner: not found
    assert api.get(f"/api/v1/report-schedules/{sid}").status_code == 404
    assert api.delete(f"/api/v1/report-schedules/{sid}").status_code == 404
    api.force_authenticate(farm.users["siteowner_a"])
    assert [s["id"] for s in api.get("/api/v1/report-schedules").json()["results"]] == [sid]
    assert api.delete(f"/api/v1/report-schedules/{sid}").status_code == 204
    assert not ReportSchedule.objects.exists()


def test_a_form_encoded_request_works_too(api, farm):
    api.force_authenticate(farm.users["owner"])
    body = {"kind": "site_monthly", "site": farm.site_a.pk, "month": "2026-09", "formats": ["xlsx", "pdf"]}
    r = api.post("/api/v1/reports", body, format="multipart")
    assert r.status_code == 202, r.content
    assert r.json()["formats"] == ["pdf", "xlsx"]


def test_the_list_costs_the_same_for_more_jobs(api, farm, jobs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def fresh():  # the user's grant ids are cached on the object: a new one reads them again, as a request does
        user = farm.users["siteowner_a"]
        return type(user).objects.get(pk=user.pk)

    api.force_authenticate(fresh())
    with CaptureQueriesContext(connection) as few:
        assert api.get("/api/v1/reports").status_code == 200
    for _ in range(6):
        ReportJob.objects.create(kind="site_monthly", site=farm.site_a, month=fx.MONTH, formats=["pdf"])
    api.force_authenticate(fresh())
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/api/v1/reports").json()["results"]) == 9
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_read_only_grant_cannot_write_the_sites_schedules(api, farm, client):
    """A schedule e-mails the site's report every month to the addresses it lists: siteowner_b_ro sees site B's
    schedule but may not add one, redirect it, switch it off or delete it (API and pages), and nothing changes."""
    schedule = services.schedule_create(
        user=farm.users["owner"], kind="site_monthly", site=farm.site_b.pk, recipients=["ops-b@example.test"]
    )
    body = {"kind": "site_monthly", "site": farm.site_b.pk, "recipients": ["elsewhere@example.test"]}
    api.force_authenticate(farm.users["siteowner_b_ro"])
    url = f"/api/v1/report-schedules/{schedule.pk}"
    assert api.get(url).status_code == 200
    refused = api.patch(url, {"recipients": ["elsewhere@example.test"]}, format="json")
    assert refused.status_code == 403 and refused.json()["error_code"] == "site_read_only"
    assert api.patch(url, {"enabled": False}, format="json").status_code == 403
    assert api.delete(url).status_code == 403
    assert api.post("/api/v1/report-schedules", body, format="json").status_code == 403
    client.force_login(farm.users["siteowner_b_ro"])
    assert client.post(f"/reports/schedules/{schedule.pk}/toggle/").status_code == 403
    assert client.post(f"/reports/schedules/{schedule.pk}/delete/").status_code == 403
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.recipients == ["ops-b@example.test"]
    assert ReportSchedule.objects.count() == 1
    # Client statements go to the client's billing contacts: only those who bill (finance FULL) schedule them.
    api.force_authenticate(farm.users["siteowner_a"])
    statement = {"kind": "client_statement", "customer": farm.client_x.pk, "recipients": ["x@example.test"]}
    assert api.post("/api/v1/report-schedules", statement, format="json").status_code == 403
    api.force_authenticate(farm.users["admin"])
    assert api.post("/api/v1/report-schedules", statement, format="json").status_code == 201
