"""The forecasts page in Chromium at 1280 and 390 px: the chart draws its history, forecast and both bands, the
page never scrolls sideways, the Content-Security-Policy is never violated, and an owner activates a model with
the registry's button. Screenshots go to $FORECAST_SHOTS (default /tmp/forecast-shots) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD
from intelligence.models import ForecastModel
from intelligence.tests.forecastreg_support import market_days, registry_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("FORECAST_SHOTS", "/tmp/forecast-shots"))


def login(pg, live_server, username):
    pg.goto(f"{live_server.url}/accounts/login/")
    pg.fill("#id_username", username)
    pg.fill("#id_password", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_load_state()


def no_sideways_scroll(pg) -> bool:
    return pg.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("width", [1280, 390])
def test_forecasts_page_draws_fits_and_obeys_the_policy(page, live_server, farm, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    last = market_days()
    lost = registry_model(target="hashprice", algorithm="xgboost", status=ForecastModel.Status.ACTIVE,
                          data_until=last, mape=9.1, naive_mape=5.2)  # fmt: skip
    candidate = registry_model(target="hashprice", algorithm="hashprice_composite", data_until=last, mape=3.4)
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    for user, pages in (("customer", ("revenue", "btc_price")), ("owner", ("hashprice",))):
        login(page, live_server, user)
        for target in pages:
            response = page.goto(f"{live_server.url}/forecasts/?target={target}")
            assert response.status == 200
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__csp") == [], target
            assert no_sideways_scroll(page), f"{target} scrolls sideways at {width} px"
            drawn = page.evaluate(
                """() => { const c = document.getElementById('forecast-chart'); const chart = Chart.getChart(c);
                return chart && chart.data.datasets.length === 6 && c.width > 0; }"""
            )
            assert drawn
            page.screenshot(path=str(SHOTS / f"{user}-{target}-{width}.png"), full_page=True)
        page.context.clear_cookies()
    if width == 1280:
        login(page, live_server, "owner")
        page.goto(f"{live_server.url}/forecasts/?target=hashprice")
        page.on("dialog", lambda dialog: dialog.accept())
        page.click(f"[data-testid=activate-{candidate.pk}]")
        page.wait_for_load_state()
        candidate.refresh_from_db()
        lost.refresh_from_db()
        assert (candidate.status, lost.status) == ("active", "retired")
        assert page.locator(f"[data-testid=rollback-{candidate.pk}]").count() == 1
        # the page shows what now serves: the composite beats naive (3.4 against 5.0), so no fallback
        assert page.locator("[data-testid=fallback-reason]").count() == 0
        page.screenshot(path=str(SHOTS / f"owner-after-activate-{width}.png"), full_page=True)
