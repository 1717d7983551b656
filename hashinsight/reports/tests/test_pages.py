"""The reports pages through Django's test client: who reaches which page, the request form (its refusals on the
form, nothing written), a job's row, downloads (another client's: 404) and the e-mailed link (its user only; expired:
403 with the date; tampered: 404), the schedules page's create, enable/disable and delete."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.test import Client

from hashinsight.reports import services
from hashinsight.reports.models import ReportJob, ReportSchedule
from hashinsight.reports.tests import factories_reports as fx

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


def as_user(farm, username) -> Client:
    c = Client()
    if username != "anonymous":
        c.force_login(farm.users[username])
    return c


@pytest.fixture
def statements(farm, django_capture_on_commit_callbacks):
    fx.site_month(farm)
    inv_x = fx.issued_invoice(farm)
    inv_y = fx.issued_invoice(farm, customer=farm.client_y, number="INV-Y")
    with django_capture_on_commit_callbacks(execute=True):
        x = services.report_request(user=farm.users["owner"], kind="client_statement", invoice=inv_x.pk,
                                    formats=["xlsx"])  # fmt: skip
        y = services.report_request(user=farm.users["owner"], kind="client_statement", invoice=inv_y.pk,
                                    formats=["xlsx"])  # fmt: skip
    return {"x": ReportJob.objects.get(pk=x.pk), "y": ReportJob.objects.get(pk=y.pk), "inv_x": inv_x}


# Expected status of each page per user, by hand: reports need REPORT READ (guest: none), schedules FULL.
PAGES = {
    "/reports/": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 200,
                  "customer": 200, "guest": 403, "anonymous": 302},
    "/reports/schedules/": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 403,
                            "customer": 403, "guest": 403, "anonymous": 302},
}  # fmt: skip


@pytest.mark.parametrize("path", list(PAGES))
@pytest.mark.parametrize("username", ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer",
                                      "guest", "anonymous"])  # fmt: skip
def test_who_reaches_the_pages(farm, path, username):
    assert as_user(farm, username).get(path).status_code == PAGES[path][username]


def test_a_client_sees_and_downloads_only_its_own(farm, statements):
    c = as_user(farm, "client_x")
    page = c.get("/reports/").content.decode()
    assert farm.client_x.company in page and farm.client_y.company not in page
    assert 'name="site"' not in page  # no site report for a client
    x, y = statements["x"], statements["y"]
    assert c.get(f"/reports/{x.pk}/files/xlsx/").status_code == 200
    assert c.get(f"/reports/{y.pk}/files/xlsx/").status_code == 404
    assert c.get(f"/reports/{y.pk}/row").status_code == 404
    assert c.get(f"/reports/{x.pk}/row").status_code == 200


def test_the_request_form(farm, statements, django_capture_on_commit_callbacks):
    c = as_user(farm, "siteowner_a")
    bad = c.post("/reports/", {"kind": "site_monthly", "site": farm.site_a.pk, "month": "2026-13",
                               "language": "en", "formats": ["pdf"]})  # fmt: skip
    assert bad.status_code == 400 and "YYYY-MM" in bad.content.decode()
    assert c.post("/reports/", {"kind": "site_monthly", "site": farm.site_b.pk, "month": "2026-09", "language": "en",
                                "formats": ["pdf"]}).status_code == 400  # not a choice of theirs  # fmt: skip
    assert ReportJob.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        ok = c.post("/reports/", {"kind": "site_monthly", "site": farm.site_a.pk, "month": "2026-09",
                                  "language": "zh-hans", "formats": ["pdf"]})  # fmt: skip
    assert ok.status_code == 302
    job = ReportJob.objects.latest("pk")
    assert (job.site_id, job.language, job.status) == (farm.site_a.pk, "zh-hans", "done")
    assert c.get(f"/reports/{job.pk}/files/pdf/").status_code == 200
    mine = as_user(farm, "client_x").post("/reports/", {"kind": "client_statement",
                                                       "invoice": statements["inv_x"].pk, "language": "en",
                                                       "formats": ["xlsx"]})  # fmt: skip
    assert mine.status_code == 302


def test_the_emailed_link(farm, statements):
    file = statements["x"].files.get()
    client_x = farm.users["client_x"]
    token = services.file_token(file, user_id=client_x.pk)
    url = f"/reports/link/{token}/"
    anonymous = as_user(farm, "anonymous").get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert as_user(farm, "client_x").get(url).status_code == 200
    assert as_user(farm, "client_y").get(url).status_code == 404  # forwarded to another client: nothing
    tampered = as_user(farm, "client_x").get(f"/reports/link/{token[:-3]}abc/")
    assert tampered.status_code == 404 and 'data-code="link_invalid"' in tampered.content.decode()
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 8 * 86400):
        old = services.file_token(file, user_id=client_x.pk)
    expired = as_user(farm, "client_x").get(f"/reports/link/{old}/")
    assert expired.status_code == 403 and "expired on" in expired.content.decode()
    bearer = services.file_token(file, user_id=None)
    assert as_user(farm, "anonymous").get(f"/reports/link/{bearer}/").status_code == 200


def test_schedules_page(farm):
    c = as_user(farm, "siteowner_a")
    bad = c.post("/reports/schedules/", {"kind": "site_monthly", "site": farm.site_a.pk, "language": "en",
                                         "formats": ["pdf"], "recipients": "nope", "day_of_month": 2})  # fmt: skip
    assert bad.status_code == 400 and not ReportSchedule.objects.exists()
    ok = c.post("/reports/schedules/", {"kind": "site_monthly", "site": farm.site_a.pk, "language": "en",
                                        "formats": ["pdf", "xlsx"], "recipients": "a@x.test, b@x.test",
                                        "day_of_month": 5})  # fmt: skip
    assert ok.status_code == 302
    row = ReportSchedule.objects.get()
    assert (row.recipients, row.day_of_month, row.formats) == (["a@x.test", "b@x.test"], 5, ["pdf", "xlsx"])
    assert c.post(f"/reports/schedules/{row.pk}/toggle/").status_code == 302
    row.refresh_from_db()
    assert row.enabled is False
    other = as_user(farm, "siteowner_b_ro")
    assert other.post(f"/reports/schedules/{row.pk}/delete/").status_code == 404
    assert c.post(f"/reports/schedules/{row.pk}/delete/").status_code == 302
    assert not ReportSchedule.objects.exists()
