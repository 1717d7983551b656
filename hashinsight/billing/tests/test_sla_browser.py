"""The SLA pages in Chromium: an operator declares a force-majeure window through the form, the SLA history lists
the certificates with their downloads, a certificate file is verified; every page keeps the Content-Security-Policy
and fits 390 px without sideways overflow (screenshots at 1280 and 390 px are kept in $SCREENSHOT_DIR, default
/tmp/sla-shots, for a person to look at)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.db import transaction

from hashinsight.billing import certificates
from hashinsight.billing.models import ForceMajeureWindow
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.portal.tests.test_browser import browser  # noqa: F401 - shared fixture
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD, HostingContractFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/sla-shots"))


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "sla.json")


def _shots(tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.set_viewport_size({"width": 1280, "height": 900})
    tab.reload()
    tab.wait_for_load_state("networkidle")
    tab.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    tab.set_viewport_size({"width": 390, "height": 844})
    tab.reload()
    tab.wait_for_load_state("networkidle")
    tab.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
    overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} overflows by {overflow} px"
    assert tab.evaluate("window.__csp") == []


def test_sla_pages_in_a_browser(browser, live_server, farm):  # noqa: F811
    c_x = HostingContractFactory(customer=farm.client_x, site=farm.site_a, number="HC-X-2026-001")
    c_y = HostingContractFactory(customer=farm.client_y, site=farm.site_b, number="HC-Y-2026-002")
    with transaction.atomic():
        cert = certificates.issue_certificate(issued_invoice(c_x, month=date(2026, 2, 1), number="INV-2026-0001"))
        certificates.issue_certificate(issued_invoice(c_y, month=date(2026, 2, 1), number="INV-2026-0002",
                                                      sla_uptime="95.120"))  # fmt: skip
    ForceMajeureWindow.objects.create(
        site=farm.site_b, start=datetime(2026, 2, 4, tzinfo=UTC), end=datetime(2026, 2, 5, 6, tzinfo=UTC),
        reason="Grid operator emergency notice 2026-114: feeder B tripped, restoration by the utility",
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_server.url}/accounts/login/?next=/sla/force-majeure/new/")
        tab.fill("#id_username", "owner")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/sla/force-majeure/new/")
        _shots(tab, "force-majeure-form")
        tab.set_viewport_size({"width": 1280, "height": 900})
        tab.select_option("#id_site", str(farm.site_a.pk))
        tab.fill("#id_start", "2026-03-03T06:00")
        tab.fill("#id_end", "2026-03-03T18:00")
        tab.fill("#id_reason", "Ice storm, site A evacuated")
        tab.click("[data-testid=save-window]")
        tab.wait_for_url(f"{live_server.url}/sla/force-majeure/")
        assert tab.locator("[data-testid=window-row]").count() == 2
        assert tab.locator("[data-testid=window-frozen]").count() == 1  # February at site B is invoiced
        assert "Ice storm, site A evacuated" in tab.locator("[data-testid=window-table]").inner_text()
        _shots(tab, "force-majeure-list")

        tab.goto(f"{live_server.url}/sla/")
        assert tab.locator("[data-testid=sla-row]").count() == 2
        assert tab.locator("[data-testid=sla-missed]").count() == 1
        _shots(tab, "sla-history")

        tab.set_viewport_size({"width": 1280, "height": 900})
        tab.goto(f"{live_server.url}/sla/verify/")
        tab.set_input_files("#id_file", files=[{"name": "c.json", "mimeType": "application/json",
                                                "buffer": certificates.document_bytes(cert.document)}])  # fmt: skip
        tab.click("[data-testid=verify-submit]")
        tab.wait_for_selector("[data-testid=verify-result]")
        assert tab.get_attribute("[data-testid=verify-result]", "data-valid") == "true"
        tab.screenshot(path=str(SHOTS / "sla-verify-1280.png"), full_page=True)
        tab.set_viewport_size({"width": 390, "height": 844})
        tab.screenshot(path=str(SHOTS / "sla-verify-390.png"), full_page=True)
        assert tab.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert tab.evaluate("window.__csp") == []
    finally:
        context.close()


def test_a_client_sees_only_its_history(browser, live_server, farm):  # noqa: F811
    c_x = HostingContractFactory(customer=farm.client_x, site=farm.site_a, number="HC-X-1")
    c_y = HostingContractFactory(customer=farm.client_y, site=farm.site_b, number="HC-Y-1")
    with transaction.atomic():
        certificates.issue_certificate(issued_invoice(c_x, month=date(2026, 2, 1), number="INV-X-1"))
        certificates.issue_certificate(issued_invoice(c_y, month=date(2026, 2, 1), number="INV-Y-1"))
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_server.url}/accounts/login/?next=/sla/")
        tab.fill("#id_username", "client_x")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/sla/")
        text = tab.locator("[data-testid=sla-table]").inner_text()
        assert "HC-X-1" in text and "HC-Y-1" not in text
        tab.screenshot(path=str(SHOTS / "sla-history-client-390.png"), full_page=True)
        assert tab.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    finally:
        context.close()
