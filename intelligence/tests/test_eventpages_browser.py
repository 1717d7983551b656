"""The curtailment events pages in Chromium: preview → start → the event's page (kept short), and every page of the
part at 1280 and 390 px without sideways scrolling or a Content-Security-Policy violation. Screenshots go to
$EVENTS_SHOTS (default /tmp/events-shots) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence import curtailment_events as events
from intelligence import response_profiles as rp
from intelligence.models import CurtailmentEvent
from intelligence.tests.test_events_support import site  # noqa: F401 - fixture
from intelligence.tests.test_plans_browser import login, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("EVENTS_SHOTS", "/tmp/events-shots"))


def test_preview_start_detail(page, live_server, site):  # noqa: F811
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "siteowner_a")
    page.goto(f"{live_server.url}/curtailment/events/new/")
    page.select_option("[name=mode]", "kw_reduction")
    page.fill("[name=target_kw]", "3")
    page.click("[data-testid=preview-event]")
    page.wait_for_selector("[data-testid=event-preview]", timeout=45_000)  # a loaded CI box is slow to answer
    assert "kW" in page.inner_text("[data-testid=preview-kw]")
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=start-event]")
    page.wait_for_url("**/curtailment/events/*/", timeout=45_000)
    event = CurtailmentEvent.objects.get()
    assert page.locator("[data-testid=event-status]").get_attribute("data-status") == event.status
    assert page.locator("[data-testid=event-command-link]").count() == event.commands.count() >= 1
    assert page.locator("[data-live-event]").get_attribute("data-live") == "1"
    # Live: what the tick job settles shows up without a reload (the page re-reads itself every 5 s).
    CurtailmentEvent.objects.filter(pk=event.pk).update(energy_avoided_kwh="12.5", revenue_forgone_usd="3.21")
    expect(page.locator("[data-testid=event-energy]")).to_contain_text("12.5 kWh", timeout=30_000)
    assert "$3.21" in page.inner_text("[data-testid=event-revenue]")
    assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_and_obey_the_policy(page, live_server, site, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    owner = site.users["owner"]
    shed = {"site": site.site_a.pk, "name": "Shed 3 kW (utility)", "mode": "kw_reduction", "target_kw": "3"}
    profile = rp.profile_create(actor=owner, data={**shed, "is_default": True})
    rp.program_create(actor=owner, data={"site": site.site_a.pk, "name": "Grid operator emergency programme",
                                         "profile": profile.pk})  # fmt: skip
    one = {"kind": "miners", "ids": [site.s19s[0].serial]}  # the other miners stay free for the form's preview
    event = events.event_start(actor=owner, site_id=site.site_a.pk, mode="full_stop", scope=one, reason="price spike")
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "owner")
    urls = {
        "events": "/curtailment/events/", "new": "/curtailment/events/new/",
        "detail": f"/curtailment/events/{event.pk}/",
        "profiles": "/curtailment/profiles/", "profile-new": "/curtailment/profiles/new/",
        "programmes": "/curtailment/programmes/", "programme-new": "/curtailment/programmes/new/",
    }  # fmt: skip
    for name, url in urls.items():
        assert page.goto(f"{live_server.url}{url}").status == 200, url
        page.wait_for_load_state("networkidle")
        if name == "new":
            page.click("[data-testid=preview-event]")
            page.wait_for_selector("[data-testid=event-preview]", timeout=45_000)
        assert page.evaluate("window.__csp") == [], url
        assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
