"""The responder page in Chromium at 1280 and 390 px: it never scrolls sideways and never violates the
Content-Security-Policy; enable works from the button. Screenshots go to $RESPONDER_SHOTS (default
/tmp/responder-shots) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence.models import RealtimeResponder
from intelligence.tests.test_plans_browser import login, no_sideways_scroll
from intelligence.tests.test_responder_pages import decision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("RESPONDER_SHOTS", "/tmp/responder-shots"))


@pytest.mark.parametrize("width", [1280, 390])
def test_responder_page_fits_obeys_the_policy_and_enables(page, live_server, farm, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    for minute in (0, 15, 30):
        decision(farm.site_a, minute, acted=minute != 15)
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "siteowner_a")
    for name, url in (("sites", "/curtailment/responder/"), ("detail", f"/curtailment/responder/{farm.site_a.pk}/")):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], url
        assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.click("[data-testid=responder-enable]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=responder-disable]").count() == 1
    assert RealtimeResponder.objects.get(site=farm.site_a).enabled
