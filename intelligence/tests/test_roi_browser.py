"""The ROI waterfall in Chromium: the chart is drawn, the page keeps the Content-Security-Policy and fits 390 px
without sideways overflow, in English and Chinese (screenshots at 1280 and 390 px are kept in $SCREENSHOT_DIR,
default /tmp/roi-shots, for a person to look at)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hashinsight.portal.tests.test_browser import browser  # noqa: F401 - shared fixture
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD
from intelligence.tests.test_roi_api import REAL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/roi-shots"))


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_waterfall_draws_and_fits(browser, live_server, farm, language):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_server.url}/accounts/login/?next=/roi/")
        tab.fill("#id_username", "owner")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/roi/")
        tab.goto(f"{live_server.url}/roi/?{urlencode({**REAL, 'capex_usd': '40000'})}")
        tab.wait_for_load_state("networkidle")
        bars = tab.evaluate("Chart.getChart(document.getElementById('roi-waterfall')).data.datasets[0].data")
        assert len(bars) == 7
        assert bars[0][0] == 0 and bars[-1][0] == 0
        assert abs(bars[-2][1] - bars[-1][1]) < 0.01  # the last part lands on the profit after
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SHOTS / f"roi-{language}-1280.png"), full_page=True)
        tab.set_viewport_size({"width": 390, "height": 844})
        tab.reload()
        tab.wait_for_load_state("networkidle")
        tab.screenshot(path=str(SHOTS / f"roi-{language}-390.png"), full_page=True)
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"overflows by {overflow} px"
        assert tab.evaluate("window.__csp") == []
    finally:
        context.close()
