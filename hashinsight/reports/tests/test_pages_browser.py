"""The reports pages in Chromium: ask for a report and download it, a running job's row moving to done without a
reload (the page polls every 2 s), the client's view, and every page at 1280 and 390 px without sideways scrolling or
a Content-Security-Policy violation. Screenshots go to $REPORTS_SHOTS (default /tmp/reports-shots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.reports import services
from hashinsight.reports.models import ReportFile, ReportJob
from hashinsight.reports.tests import factories_reports as fx
from intelligence.tests.test_plans_browser import login, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("REPORTS_SHOTS", "/tmp/reports-shots"))


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


def test_request_download_and_live_progress(page, live_server, farm):  # noqa: F811
    fx.site_month(farm)
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "siteowner_a")
    page.goto(f"{live_server.url}/reports/")
    assert page.locator("[data-field=invoice]").is_hidden()  # a site report needs a site and a month
    page.select_option("[name=site]", str(farm.site_a.pk))
    page.fill("[name=month]", "2026-09")
    page.check("input[name=formats][value=xlsx]")
    page.click("[data-testid=report-submit]")
    page.wait_for_url(f"{live_server.url}/reports/")
    row = page.locator("[data-testid=report-row]").first
    expect(row.locator("[data-testid=report-status]")).to_contain_text("Done")
    with page.expect_download() as download:
        row.locator("[data-testid=report-download-pdf]").click()
    assert download.value.suggested_filename.endswith(".pdf")
    # A job still running: its row shows the progress and turns into "Done" with its button, no reload.
    job = ReportJob.objects.create(
        kind="site_monthly",
        site=farm.site_a,
        month=fx.MONTH,
        formats=["xlsx"],
        status="running",
        progress_pct=35,
        requested_by=farm.users["siteowner_a"],
    )
    page.reload()
    live = page.locator(f"[data-job-id='{job.pk}']")
    expect(live.locator(".progress-bar")).to_have_text("35 %")
    assert live.locator(".progress-bar").evaluate("b => b.style.width") == "35%"
    f = ReportFile(job=job, format="xlsx", size_bytes=2, sha256="0" * 64)
    f.file.save("reports/x.xlsx", ContentFile(b"PK"), save=True)
    ReportJob.objects.filter(pk=job.pk).update(status="done", progress_pct=100)
    status = page.locator(f"[data-job-id='{job.pk}'] [data-testid=report-status]")
    expect(status).to_contain_text("Done", timeout=10_000)
    expect(page.locator(f"[data-job-id='{job.pk}'] [data-testid=report-download-xlsx]")).to_be_visible()
    assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_and_obey_the_policy(page, live_server, farm, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    fx.site_month(farm)
    inv = fx.issued_invoice(farm)
    owner = farm.users["owner"]
    services.report_request(user=owner, kind="site_monthly", site=farm.site_a.pk, month="2026-09",
                            formats=["pdf", "xlsx", "pptx"])  # fmt: skip
    services.report_request(user=owner, kind="client_statement", invoice=inv.pk, language="zh-hans")
    ReportJob.objects.create(kind="site_monthly", site=farm.site_b, month=fx.MONTH, formats=["pdf"], status="failed",
                             message="ValueError: the site no longer exists")  # fmt: skip
    services.schedule_create(user=owner, kind="site_monthly", site=farm.site_a.pk, recipients=["ops@example.test",
                             "finance-team@example.test"], formats=["pdf", "xlsx"])  # fmt: skip
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    for username, paths in (("owner", ("/reports/", "/reports/schedules/")), ("client_x", ("/reports/",))):
        login(page, live_server, username)
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            name = f"{username}-{path.strip('/').replace('/', '-')}-{width}.png"
            page.screenshot(path=str(SHOTS / name), full_page=True)
            assert no_sideways_scroll(page), (username, path, width)
        page.context.clear_cookies()
    assert page.evaluate("window.__csp") == []
