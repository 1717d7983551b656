"""The forecasts page's revenue subjects in Chromium at 1280 and 390 px: a site owner picks its site in the subject
picker (the page reloads on it), a hosting client sees only itself; the chart draws, the page never scrolls
sideways, the Content-Security-Policy holds. Screenshots go to $FORECAST_SHOTS (default /tmp/forecast-shots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence.tests.forecastreg_support import market_days
from intelligence.tests.test_forecastreg_browser import login, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("FORECAST_SHOTS", "/tmp/forecast-shots"))


@pytest.mark.parametrize("width", [1280, 390])
def test_revenue_subject_picker(page, live_server, farm, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    market_days()
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)

    login(page, live_server, "siteowner_a")
    page.goto(f"{live_server.url}/forecasts/?target=revenue")
    options = page.eval_on_selector_all("[data-testid=subject-select] option", "os => os.map(o => o.value)")
    assert options == [
        f"user:{farm.users['siteowner_a'].pk}", f"site:{farm.site_a.pk}",
        f"customer:{farm.client_x.pk}", f"customer:{farm.client_y.pk}",
    ]  # fmt: skip
    with page.expect_navigation():
        page.select_option("[data-testid=subject-select]", f"site:{farm.site_a.pk}")
    page.wait_for_load_state("networkidle")
    assert f"subject=site%3A{farm.site_a.pk}" in page.url or f"subject=site:{farm.site_a.pk}" in page.url
    assert "600.00 TH/s" in page.inner_text("[data-testid=revenue-basis]")
    assert page.evaluate("window.__csp") == []
    assert no_sideways_scroll(page), f"site revenue scrolls sideways at {width} px"
    assert page.evaluate("() => { const c = document.getElementById('forecast-chart'); return !!Chart.getChart(c); }")
    page.screenshot(path=str(SHOTS / f"siteowner-site-revenue-{width}.png"), full_page=True)
    page.context.clear_cookies()

    login(page, live_server, "client_x")
    page.goto(f"{live_server.url}/forecasts/?target=revenue&subject=customer:{farm.client_x.pk}")
    page.wait_for_load_state("networkidle")
    options = page.eval_on_selector_all("[data-testid=subject-select] option", "os => os.map(o => o.value)")
    assert options == [f"user:{farm.users['client_x'].pk}", f"customer:{farm.client_x.pk}"]
    assert "400.00 TH/s" in page.inner_text("[data-testid=revenue-basis]")
    assert page.evaluate("window.__csp") == []
    assert no_sideways_scroll(page), f"client revenue scrolls sideways at {width} px"
    page.screenshot(path=str(SHOTS / f"client-revenue-{width}.png"), full_page=True)
