"""The "Miner health" page in Chromium: it keeps the Content-Security-Policy and fits 390 px without sideways
overflow, in English and Chinese (screenshots at 1280 and 390 px are kept in $SCREENSHOT_DIR, default
/tmp/health-shots, for a person to look at)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils import timezone

from hashinsight.portal.tests.test_browser import browser  # noqa: F401 - shared fixture
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD
from intelligence.models import MinerHealth

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/health-shots"))
REASONS = [
    {"code": "temp_margin", "logit": 3.9, "text": "chip temperature 93 °C, 2 °C below its 95 °C limit",
     "params": {"temp_c": "93", "margin_c": "2", "limit_c": "95"}},
    {"code": "fan_drop", "logit": 3.2, "text": "slowest fan 50 % slower than at the same hours yesterday",
     "params": {"pct": "50"}},
]  # fmt: skip


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_health_page_fits_and_keeps_the_csp(browser, live_server, farm, language):  # noqa: F811
    for k, miner in enumerate(farm.miners.values()):
        tier = ("at_risk", "watch", "ok")[k % 3]
        MinerHealth.objects.create(miner=miner, score=(0.8, 0.3, 0.05)[k % 3], tier=tier,
                                   reasons=REASONS if tier != "ok" else [], features={},
                                   computed_at=timezone.now())  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(f"{live_server.url}/accounts/login/?next=/miner-health/")
        tab.fill("#id_username", "owner")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/miner-health/")
        tab.wait_for_load_state("networkidle")
        assert tab.locator("[data-testid=health-row]").count() == 6
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SHOTS / f"health-{language}-1280.png"), full_page=True)
        tab.set_viewport_size({"width": 390, "height": 844})
        tab.reload()
        tab.wait_for_load_state("networkidle")
        tab.screenshot(path=str(SHOTS / f"health-{language}-390.png"), full_page=True)
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"overflows by {overflow} px"
        assert tab.evaluate("window.__csp") == []
    finally:
        context.close()
