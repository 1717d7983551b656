"""The portal's Alert rules page and the admin for alert rules: managers save, readers read, hidden
sites are 404s, refused values show next to their field and change nothing; in a browser the page
does not scroll sideways at 390 px."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import PASSWORD
from telemetry import rules as R
from telemetry.models import AlertRule

pytestmark = pytest.mark.django_db


def page_url(site) -> str:
    return reverse("portal:site-alert-rules", kwargs={"slug": site.slug})


def form_data(**overrides) -> dict:
    data = {}
    for rule in R.default_rules():
        if rule.enabled:
            data[f"{rule.kind}-enabled"] = "on"
        data[f"{rule.kind}-threshold"] = str(rule.threshold)
        data[f"{rule.kind}-duration_minutes"] = str(rule.duration_minutes)
        data[f"{rule.kind}-severity"] = rule.severity
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def stored(site):
    return {
        r.kind: (r.enabled, r.threshold, r.duration_minutes, r.severity) for r in AlertRule.objects.filter(site=site)
    }


def test_a_manager_sees_the_five_rules_with_units_and_saves(client, farm):
    client.force_login(farm.users["siteowner_a"])
    response = client.get(page_url(farm.site_a))
    assert response.status_code == 200
    html = response.content.decode()
    for kind in R.KINDS:
        assert f'data-rule-kind="{kind}"' in html
    assert "°C" in html and 'data-testid="alert-rules-save"' in html
    assert 'name="offline_for-threshold"' not in html  # the offline rule has no threshold
    body = form_data(**{"chip_temp_above-threshold": "87.5", "power_deviation_pct-enabled": None})
    response = client.post(page_url(farm.site_a), body)
    assert response.status_code == 302 and response.url == page_url(farm.site_a)
    rules = stored(farm.site_a)
    assert rules[R.CHIP_TEMP_ABOVE] == (True, 87.5, 0, "critical")
    assert rules[R.POWER_DEVIATION_PCT][0] is False
    assert rules[R.OFFLINE_FOR] == (True, 0.0, 10, "warning")
    (event,) = OutboxEvent.objects.filter(event_type="alert_rules.changed")
    assert event.payload["kinds"] == [R.CHIP_TEMP_ABOVE, R.POWER_DEVIATION_PCT]
    assert "Alert rules saved." in client.get(page_url(farm.site_a)).content.decode()


def test_a_refused_value_is_shown_at_its_field_and_nothing_changes(client, farm):
    client.force_login(farm.users["owner"])
    client.get(page_url(farm.site_a))
    before = stored(farm.site_a)
    body = form_data(**{"hashrate_below_pct-threshold": "150", "chip_temp_above-threshold": "80"})
    response = client.post(page_url(farm.site_a), body)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Between 1 and 100 %." in html
    assert stored(farm.site_a) == before
    assert not OutboxEvent.objects.filter(event_type="alert_rules.changed").exists()
    response = client.post(page_url(farm.site_a), form_data(**{"offline_for-duration_minutes": "abc"}))
    assert response.status_code == 200 and 'data-testid="field-error"' in response.content.decode()
    assert stored(farm.site_a) == before


def test_a_reader_sees_them_read_only_and_may_not_post(client, farm):
    client.force_login(farm.users["siteowner_b_ro"])
    response = client.get(page_url(farm.site_b))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="rules-read-only"' in html and 'data-testid="alert-rules-save"' not in html
    assert html.count("disabled") >= 5 * 3
    assert client.post(page_url(farm.site_b), form_data(**{"chip_temp_above-threshold": "99"})).status_code == 403
    assert stored(farm.site_b)[R.CHIP_TEMP_ABOVE][1] == 90.0


@pytest.mark.parametrize(
    ("username", "site_key", "status"), [("siteowner_a", "site_b", 404), ("customer", "site_a", 403)]
)
def test_hidden_sites_and_roles_without_hosting(client, farm, username, site_key, status):
    client.force_login(farm.users[username])
    assert client.get(page_url(getattr(farm, site_key))).status_code == status


def test_the_site_page_links_to_its_rules(client, farm):
    client.force_login(farm.users["owner"])
    html = client.get(reverse("portal:site-detail", kwargs={"slug": farm.site_a.slug})).content.decode()
    assert f'href="{page_url(farm.site_a)}"' in html


def test_the_page_in_chinese(client, farm):
    client.force_login(farm.users["owner"])
    response = client.get(page_url(farm.site_a), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200  # strings are marked for translation; the lead fills the catalog


# --- admin ------------------------------------------------------------------------------------------


def test_admin_changes_a_rule_through_the_service(client, farm):
    client.force_login(farm.users["siteowner_a"])
    client.get(page_url(farm.site_a))
    rule = AlertRule.objects.get(site=farm.site_a, kind=R.HASHRATE_BELOW_PCT)
    change = reverse("admin:telemetry_alertrule_change", args=[rule.pk])
    body = {"enabled": "on", "threshold": "70", "duration_minutes": "20", "severity": "critical"}
    response = client.post(change, body)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert (rule.threshold, rule.duration_minutes, rule.severity, rule.updated_by) == (
        70.0, 20, "critical", farm.users["siteowner_a"],
    )  # fmt: skip
    assert OutboxEvent.objects.filter(event_type="alert_rules.changed").count() == 1
    body["threshold"] = "0.5"
    response = client.post(change, body)
    assert response.status_code == 200 and "Between 1 and 100 %." in response.content.decode()
    rule.refresh_from_db()
    assert rule.threshold == 70.0


def test_admin_lists_only_visible_sites_and_refuses_changes_on_read_only_ones(client, farm):
    client.force_login(farm.users["owner"])
    client.get(page_url(farm.site_a))
    client.get(page_url(farm.site_b))
    client.force_login(farm.users["siteowner_b_ro"])
    listing = client.get(reverse("admin:telemetry_alertrule_changelist"))
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 5  # site B's only
    rule = AlertRule.objects.get(site=farm.site_b, kind=R.CHIP_TEMP_ABOVE)
    change = reverse("admin:telemetry_alertrule_change", args=[rule.pk])
    client.post(change, {"enabled": "on", "threshold": "99", "duration_minutes": "0", "severity": "critical"})
    rule.refresh_from_db()
    assert rule.threshold == 90.0
    hidden = AlertRule.objects.get(site=farm.site_a, kind=R.CHIP_TEMP_ABOVE)
    assert client.get(reverse("admin:telemetry_alertrule_change", args=[hidden.pk])).status_code == 404


# --- in a browser -----------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_fits_390_px_and_saves(live_server, farm):
    from hashinsight.portal.tests.test_browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium not installed")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.set_default_timeout(15_000)
            path = page_url(farm.site_a)
            page.goto(f"{live_server.url}/accounts/login/?next={path}")
            page.fill("#id_username", "siteowner_a")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server.url}{path}")
            page.fill("#id_hashrate_below_pct-threshold", "150")
            with page.expect_navigation():
                page.click("[data-testid=alert-rules-save]")
            assert page.locator("[data-testid=field-error]").count() == 1
            width = page.evaluate("document.documentElement.scrollWidth")
            shots = os.environ.get("SCREENSHOT_DIR")
            if shots:
                page.screenshot(path=os.path.join(shots, "alert-rules-390.png"), full_page=True)
            assert width <= 390, f"the alert rules page scrolls sideways: {width} px"
            page.fill("#id_hashrate_below_pct-threshold", "75")
            with page.expect_navigation():
                page.click("[data-testid=alert-rules-save]")
            assert "Alert rules saved." in page.locator(".alert-success").inner_text()
            if shots:
                page.set_viewport_size({"width": 1200, "height": 900})
                page.screenshot(path=os.path.join(shots, "alert-rules-1200.png"), full_page=True)
            assert AlertRule.objects.get(site=farm.site_a, kind=R.HASHRATE_BELOW_PCT).threshold == 75.0
        finally:
            browser.close()
