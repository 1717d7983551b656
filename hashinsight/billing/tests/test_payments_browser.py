"""The payments pages in Chromium: record a payment, confirm it, import addresses, propose a hold; no sideways
scroll at 390 px (owner: payments). ``SCREENSHOT_DIR`` keeps PNGs for a human look."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from commands.models import Command
from hashinsight.billing.models import InvoiceStatus, Payment, PaymentAddress
from hashinsight.billing.tests.factories_payments import issued_invoice, tron_address
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS, sign_in
from hashinsight.tests.factories import HostingContractFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")


def _no_sideways_scroll(tab) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def _shots(tab, name: str) -> None:
    assert tab.evaluate("window.__csp") == [], name  # no Content-Security-Policy violation on the page
    for width in (390, 1280):
        tab.set_viewport_size({"width": width, "height": 900})
        assert _no_sideways_scroll(tab), (name, width)
        if SCREENSHOTS:
            tab.screenshot(path=f"{SCREENSHOTS}/{name}-{width}.png", full_page=True)


def test_record_confirm_import_and_hold(page, live_server, farm):  # noqa: F811 - the fixture above
    invoice = issued_invoice(
        contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a), total="1234.50",
        status=InvoiceStatus.OVERDUE, due_date=timezone.now().date() - timedelta(days=8),
    )  # fmt: skip
    page.context.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/payments/")
    page.click("[data-testid=record-payment] summary")
    page.select_option("[data-testid=record-invoice]", str(invoice.pk))
    page.select_option("[data-testid=record-method]", "btc")
    page.fill("[data-testid=record-amount]", "1234.50")
    page.fill("[data-testid=record-txid]", "ab" * 32)
    page.click("[data-testid=record-submit]")
    page.wait_for_selector(".alert-success")
    assert page.inner_text("[data-testid=payment-status]") == "Waiting for confirmations"
    _shots(page, "payments")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("[data-testid=confirm-payment]")
    page.wait_for_selector(".alert-success")
    assert page.inner_text("[data-testid=payment-status]") == "Confirmed"
    assert Payment.objects.get().chain_status == "confirmed"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID

    page.goto(f"{live_server.url}/payments/addresses/")
    page.click("[data-testid=import-addresses] summary")
    page.select_option("[data-testid=import-network]", "usdt")
    page.fill("[data-testid=import-text]", f"{tron_address(1)}\n{tron_address(2)}")
    page.click("[data-testid=import-submit]")
    page.wait_for_selector(".alert-success")
    assert PaymentAddress.objects.count() == 2
    _shots(page, "payment-addresses")

    issued_invoice(
        contract=HostingContractFactory(customer=farm.client_y, site=farm.site_b), total="99.00",
        status=InvoiceStatus.OVERDUE, due_date=timezone.now().date() - timedelta(days=2),
    )  # fmt: skip
    page.goto(f"{live_server.url}/payments/holds/")
    row = page.locator(
        f"[data-testid=hold-row][data-customer-id='{farm.client_y.pk}'][data-site-id='{farm.site_b.pk}']"
    )
    row.locator("[data-testid=hold-reason]").fill("Two days late")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=hold-propose]").click()
    page.wait_for_selector(".alert-success")
    command = Command.objects.get()
    assert command.command_type == "HASHING_DISABLE" and command.status == "PENDING_APPROVAL"
    assert row.locator("[data-testid=hold-command]").get_attribute("href") == f"/commands/{command.pk}/"
    _shots(page, "payment-holds")

    page.goto(f"{live_server.url}/payments/commissions/")
    _shots(page, "commissions")
