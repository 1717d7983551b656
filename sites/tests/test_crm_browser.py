"""The CRM pages in Chromium: a deal converted to a contract that is activated, and every page at 1280 and 390 px
without sideways scrolling or a Content-Security-Policy violation. Screenshots go to $CRM_SHOTS (default
/tmp/crm-shots) for a person to look at."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import DealFactory, HostingContractFactory
from intelligence.tests.test_plans_browser import login, no_sideways_scroll
from sites.models import HostingContract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("CRM_SHOTS", "/tmp/crm-shots"))


def test_convert_and_activate(page, live_server, farm):  # noqa: F811
    page.add_init_script(RECORD_VIOLATIONS)
    deal = DealFactory(customer=farm.client_x, site=farm.site_a, title="Hall 3 expansion", stage="negotiation",
                       owner=farm.users["admin"])  # fmt: skip
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/crm/deals/{deal.pk}/")
    page.fill("#cv-start", "2026-03-01")
    page.fill("#cv-rate", "0.061")
    page.click("[data-testid=convert-deal]")
    page.wait_for_url("**/crm/contracts/*/")
    contract = HostingContract.objects.get(deal=deal)
    assert page.locator("[data-testid=contract-status]").get_attribute("data-status") == "draft"
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=activate-contract]")
    page.wait_for_selector("[data-testid=contract-status][data-status=active]")
    contract.refresh_from_db()
    assert contract.status == "active" and contract.rate_per_kwh == Decimal("0.061")
    assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_and_obey_the_policy(page, live_server, farm, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    for i, (stage, mw, value) in enumerate([("lead", "1.5", "90000"), ("qualified", "12.25", "1250000"),
                                            ("proposal", "3", "240000"), ("won", "20", "2100000")]):  # fmt: skip
        DealFactory(customer=farm.client_x if i % 2 else None, prospect_company=f"Nordic Hashworks {i} AB",
                    site=farm.site_a, stage=stage, expected_mw=Decimal(mw), value=Decimal(value),
                    expected_miners=int(Decimal(mw) * 280), title=f"Containerised hydro block {i}")  # fmt: skip
    deal = DealFactory(customer=farm.client_x, site=farm.site_a, title="Hall 3 expansion", stage="negotiation")
    open_deal = DealFactory(customer=farm.client_x, site=farm.site_a, title="Hall 4 (no contract yet)", currency="EUR")
    contract = HostingContractFactory(
        customer=farm.client_x, site=farm.site_a, deal=deal, status="active", start_date=date(2026, 1, 1),
        tariff_kind="kwh_plus_fixed", fixed_fee_per_miner_month=Decimal("4.50"), curtailment_allowance_hours=20,
        curtailment_credit_kind="rate", curtailment_credit_per_miner_hour=Decimal("0.03"), sales_owner=deal.owner,
        commission_pct=Decimal("2.5"), signed_document_sha256="ab" * 32, signed_at=date(2025, 12, 20),
    )  # fmt: skip
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "owner")
    urls = {
        "deals": "/crm/deals/", "deal": f"/crm/deals/{deal.pk}/", "deal-new": "/crm/deals/new/",
        "deal-convert": f"/crm/deals/{open_deal.pk}/",
        "contracts": "/crm/contracts/", "contract": f"/crm/contracts/{contract.pk}/",
        "contract-new": "/crm/contracts/new/", "contract-miners": f"/crm/contracts/{contract.pk}/miners/",
    }  # fmt: skip
    for name, url in urls.items():
        assert page.goto(f"{live_server.url}{url}").status == 200, url
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert page.evaluate("window.__csp") == [], url
        assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
    # A site owner reads the same contract without a single button.
    page.context.clear_cookies()
    login(page, live_server, "siteowner_a")
    page.goto(f"{live_server.url}/crm/contracts/{contract.pk}/")
    assert page.locator("[data-testid=contract-actions]").count() == 0
    assert page.locator("[data-testid=document-form]").count() == 0
    assert no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"contract-siteowner-{width}.png"), full_page=True)
