"""List pages in a real browser: acknowledge an alert, sort and export a table, and no sideways
scrolling at 390 px."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.tests.factories import PASSWORD
from telemetry import services as alert_services
from telemetry.models import Alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def raise_alert(**kwargs):
    """Raise in a worker thread: Playwright's sync API keeps an event loop in the test's thread, where
    the alert handler's async_to_sync may not run (a Celery worker has no loop either)."""

    def work():
        try:
            return alert_services.alert_raise(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def log_in(page, live_server, username, next_url):  # noqa: F811
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_url}")


def test_site_owner_acknowledges_an_alert_with_a_note_in_the_page(page, live_server, farm):  # noqa: F811
    miner = farm.miners[("site-a", "client-x")]
    alert = raise_alert(site=miner.site, miner=miner, alert_type="fan", severity="critical", message="Fan 2")
    other = raise_alert(site=miner.site, alert_type="temp", severity="warning", message="Hot")
    log_in(page, live_server, "siteowner_a", "/alerts/?severity=critical")
    row = page.locator(f"tr[data-alert-id='{alert.pk}']")
    assert row.locator("[data-testid=alert-status]").inner_text() == "Open"
    page.fill("[data-testid=alert-note]", "Technician on site")
    with page.expect_navigation():
        row.locator("[data-testid=alert-acknowledge]").click()
    assert page.url == f"{live_server.url}/alerts/?severity=critical"  # filters kept
    assert "1 alert acknowledged." in page.locator(".alert-success").inner_text()
    row = page.locator(f"tr[data-alert-id='{alert.pk}']")
    assert row.locator("[data-testid=alert-status]").inner_text() == "Acknowledged"
    assert "Technician on site" in row.inner_text()
    assert row.locator("[data-testid=alert-acknowledge]").count() == 0
    saved = Alert.objects.get(pk=alert.pk)
    assert (saved.status, saved.ack_note) == ("acknowledged", "Technician on site")
    assert Alert.objects.get(pk=other.pk).status == "open"  # filtered out, untouched

    # Bulk: select all on the page, resolve.
    page.goto(f"{live_server.url}/alerts/")
    page.check("[data-testid=alert-select-all]")
    assert page.locator("[data-testid=alert-select]:checked").count() == 2
    with page.expect_navigation():
        page.click("[data-testid=bulk-resolve]")
    assert "2 alerts resolved." in page.locator(".alert-success").inner_text()
    assert page.locator("[data-testid=alert-row]").count() == 0
    assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}


def test_sort_a_table_by_clicking_its_header_and_export_what_is_filtered(page, live_server, farm):  # noqa: F811
    log_in(page, live_server, "owner", "/miners/")
    page.select_option("select[name=site]", str(farm.site_b.pk))
    with page.expect_navigation():
        page.click("[data-testid=table-filters] button[type=submit]")
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Serial")  # the default sort
    with page.expect_navigation():
        page.click("[data-testid=sort-status]")
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Status")
    with page.expect_navigation():
        page.click("[data-testid=sort-serial]")
    with page.expect_navigation():
        page.click("[data-testid=sort-serial]")  # the second click on the sorted column: descending
    assert "sort=-serial" in page.url and f"site={farm.site_b.pk}" in page.url
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Serial")
    shown = page.locator("[data-testid=miner-row] td:first-child").all_inner_texts()
    expected = sorted((m.serial for k, m in farm.miners.items() if k[0] == "site-b"), reverse=True)
    assert shown == expected
    with page.expect_download() as info:
        page.click("[data-testid=export-csv]")
    download = info.value
    assert download.suggested_filename.startswith("miners-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig") as fh:
        exported = list(csv.reader(io.StringIO(fh.read())))
    assert [r[0] for r in exported[1:]] == expected


@pytest.mark.parametrize("path", ["/sites/", "/miners/", "/alerts/", "/jobs/"])
def test_list_pages_do_not_scroll_sideways_at_390_px(browser, live_server, farm, path):  # noqa: F811
    miner = farm.miners[("site-a", "own")]
    raise_alert(
        site=miner.site, miner=miner, alert_type="miner_offline", severity="critical",
        message="Miner has not reported for 45 minutes; last share accepted by the pool at 21:05 local time.",
    )  # fmt: skip
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()  # noqa: F811
    page.set_default_timeout(15_000)
    try:
        log_in(page, live_server, "owner", f"{path}?sort=nonsense")  # with a message shown too
        assert page.locator("[data-testid=table-problem]").count() == 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways: {width} px"
    finally:
        context.close()
