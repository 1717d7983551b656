"""Real-browser tests: Playwright driving Debian's Chromium against a live server."""

from __future__ import annotations

import os
import shutil

import pytest

from hashinsight.tests.factories import PASSWORD, MinerFactory, SiteFactory, ZoneFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("Debian's chromium is required in CI (scripts/ensure_chromium.sh installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_client_logs_in_and_sees_only_its_miners(page, live_server, farm):
    page.goto(f"{live_server.url}/miners/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "client_x")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/miners/")
    rows = page.locator("[data-testid=miner-row]")
    serials = {rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())}
    assert serials == {farm.miners[("site-a", "client-x")].serial, farm.miners[("site-b", "client-x")].serial}
    assert page.locator("[data-testid=whoami]").inner_text().startswith("client_x")
    # A site with none of its miners is not reachable by URL: the same 404 as a site that never existed.
    hidden = SiteFactory(slug="site-hidden", name="Hidden Ridge")
    MinerFactory(zone=ZoneFactory(site=hidden), site=hidden, customer=farm.client_y)
    assert page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/").status == 200
    hidden_site_response = page.goto(f"{live_server.url}/sites/{hidden.slug}/")
    assert hidden_site_response.status == 404
    assert "Hidden Ridge" not in page.content()
    assert page.goto(f"{live_server.url}/sites/does-not-exist/").status == 404


def test_guest_uses_calculator_and_switches_to_chinese(page, live_server, db):
    page.goto(f"{live_server.url}/calculator/")
    page.fill("#id_hashrate_ths", "100")
    page.fill("#id_power_w", "3000")
    page.fill("#id_btc_price_usd", "50000")
    page.fill("#id_difficulty", "100000000000000")
    page.fill("#id_fees_btc_per_block", "0.125")
    page.fill("#id_pool_fee_pct", "0")
    page.fill("#id_electricity_usd_per_kwh", "0.05")
    page.click("[data-testid=calculator-form] button[type=submit]")
    assert page.locator("[data-testid=revenue-day]").inner_text() == "3.27"
    assert page.locator("[data-testid=breakeven-power]").inner_text().startswith("0.0454")
    with page.expect_navigation():
        page.select_option("select[name=language]", "zh-hans")
    assert page.locator("h1").inner_text() == "挖矿收益计算器"
