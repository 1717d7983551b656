"""The finance pages in Chromium: a client opens its invoice, filters the statement to downtime and follows a
figure to the miner's telemetry; an operator issues a credit note from the invoice page; and every page of the part at
1280 and 390 px without sideways scrolling or a Content-Security-Policy violation. Screenshots go to
$FINANCE_SHOTS (default /tmp/finance-shots) for a person to look at."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from hashinsight.billing.models import CreditNote, Invoice
from hashinsight.billing.tests.test_statement_export_support import (
    add_credit_note,
    add_payment,
    make_command,
    make_invoice,
)
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence.tests.test_plans_browser import login, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("FINANCE_SHOTS", "/tmp/finance-shots"))


@pytest.fixture
def books(farm):
    command = make_command(farm.site_a)
    miners = [farm.miners[("site-a", "client-x")], farm.miners[("site-b", "client-x")]]
    x = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners, days=31, command_ids=[command.pk])
    Invoice.objects.filter(pk=x.pk).update(
        btc_address="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", usdt_address="TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"
    )
    add_credit_note(x, "2.00", reason="meter correction for 2026-01-02")
    add_payment(x, "40.00", reference="WIRE-2026-0001")
    draft = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners[:1], status=Invoice.Status.DRAFT,
                         period_start=date(2026, 2, 1))  # fmt: skip
    make_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    return {"x": x, "draft": draft, "command": command}


def test_client_reads_statement_and_follows_a_figure(page, live_server, farm, books):  # noqa: F811
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "client_x")
    page.goto(f"{live_server.url}/finance/")
    page.click(f"text={books['x'].number}")
    page.wait_for_url(f"**/finance/invoices/{books['x'].pk}/")
    assert page.locator("[data-testid=statement-row]").count() == 50
    page.check("[name=downtime]")
    page.click("[data-testid=statement-filter]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=statement-row]").count() == 1
    assert page.locator("[data-testid=row-command]").get_attribute("href") == (
        f"/finance/invoices/{books['x'].pk}/commands/{books['command'].pk}/"
    )
    page.click("[data-testid=row-telemetry]")
    page.wait_for_url("**/telemetry/?day=2026-01-02")
    assert page.evaluate("window.__csp") == []


def test_operator_issues_a_credit_note(page, live_server, farm, books):  # noqa: F811
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "owner")
    page.goto(f"{live_server.url}/finance/invoices/{books['x'].pk}/")
    page.fill("#cn-amount", "3.50")
    page.fill("#cn-reason", "goodwill")
    page.click("[data-testid=credit-note-submit]")
    page.wait_for_load_state()
    assert "Credit note" in page.inner_text("main")
    assert CreditNote.objects.filter(invoice=books["x"], reason="goodwill").exists()
    assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_and_obey_the_policy(page, live_server, farm, books, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    x = books["x"]
    for username, urls in (
        ("client_x", {"home": "/finance/", "list": "/finance/invoices/", "detail": f"/finance/invoices/{x.pk}/",
                      "command": f"/finance/invoices/{x.pk}/commands/{books['command'].pk}/"}),
        ("owner", {"list-owner": "/finance/invoices/", "detail-owner": f"/finance/invoices/{x.pk}/",
                   "draft-owner": f"/finance/invoices/{books['draft'].pk}/", "home-owner": "/finance/"}),
    ):  # fmt: skip
        page.context.clear_cookies()
        login(page, live_server, username)
        for name, url in urls.items():
            assert page.goto(f"{live_server.url}{url}").status == 200, url
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__csp") == [], url
            assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
