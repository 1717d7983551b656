"""The responder's site list in Chromium at 390 and 1280 px, with a long site name, settings, a decision and prices:
the page never scrolls sideways (the table scrolls in its card), breaks no Content-Security-Policy rule, and its
filters and export link are on the page. Screenshots go to $RESPONDER_SHOTS (default /tmp/shots) for a person."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence.tests.test_plans_browser import login, no_sideways_scroll
from intelligence.tests.test_responder_sites import set_up  # noqa: F401 - pytest fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("RESPONDER_SHOTS", "/tmp/shots"))


@pytest.mark.parametrize("width", [390, 1280])
def test_the_site_list_fits_and_obeys_the_policy(page, live_server, set_up, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    set_up.site_a.name = "Permian Basin West Texas Mining Campus, Building A North"
    set_up.site_a.save(update_fields=["name"])
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "siteowner_a")
    response = page.goto(f"{live_server.url}/curtailment/responder/?sort=-price")
    assert response.status == 200
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__csp") == []
    assert page.locator("[data-testid=responder-site-row]").count() == 1
    assert page.locator("[data-testid=table-filters]").is_visible()
    assert page.locator("a[href*='format=csv']").count() == 1
    assert no_sideways_scroll(page), f"the responder's site list scrolls sideways at {width} px"
    page.screenshot(path=str(SHOTS / f"responder-sites-{width}.png"), full_page=True)
    # The table scrolls inside its card: its far columns are reached there, not by moving the page.
    page.locator(".table-list-wrap").evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    assert no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"responder-sites-{width}-scrolled.png"), full_page=True)
