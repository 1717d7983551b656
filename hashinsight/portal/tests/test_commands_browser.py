"""The commands pages in Chromium on the real ASGI app: propose with the live risk preview, a second user
approves, and the first user's list changes the row's status live (no reload); the pages at 390 px in
English and Chinese without sideways overflow or Content-Security-Policy violations (screenshots are kept
in $SCREENSHOT_DIR, default /tmp/commands-shots, for a person to look at)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from commands import services
from commands.models import Command, CommandStatus
from hashinsight.portal.tests.test_alerts_live_browser import in_thread
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from hashinsight.tests.factories import PASSWORD
from telemetry.tests.test_live_alerts_browser import asgi_server  # noqa: F401 - uvicorn in a thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/commands-shots"))


def sign_in(tab, base, username, next_url):
    tab.goto(f"{base}/accounts/login/?next={next_url}")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base}{next_url}")


def test_propose_with_the_live_preview_then_a_second_user_approves_and_the_list_follows(
    page,  # noqa: F811
    browser,  # noqa: F811
    asgi_server,  # noqa: F811
    farm,
):
    base = asgi_server
    serial = farm.miners[("site-a", "own")].serial
    sign_in(page, base, "siteowner_a", "/commands/new/")
    page.select_option("[data-field=site]", str(farm.site_a.pk))
    page.select_option("[data-field=type]", "MINER_RESTART")
    assert page.locator("[data-for-types=POOL_SET]").is_hidden()  # only the chosen type's fields
    page.fill("[data-field=serials]", serial)
    tier = page.locator("[data-testid=preview-tier]")
    tier.wait_for()
    page.locator("[data-testid=preview-tier][data-tier=MEDIUM]").wait_for()
    assert "One approver" in page.locator("[data-testid=preview-who]").inner_text()
    assert page.locator("[data-testid=preview-factor]").count() == 6
    assert float(page.locator("[data-testid=preview-score]").inner_text()) > 0

    # The preview follows the form: a stop is HIGH, two approvers; a bad fan value is explained, not sent.
    page.select_option("[data-field=type]", "HASHING_DISABLE")
    page.locator("[data-testid=preview-tier][data-tier=HIGH]").wait_for()
    assert "2 distinct approvers" in page.locator("[data-testid=preview-who]").inner_text()
    page.select_option("[data-field=type]", "SET_FAN")
    assert page.locator("[data-for-types=SET_FAN]").is_visible()
    page.fill("[data-field=fan_percent]", "300")
    page.locator("[data-testid=preview-error]").wait_for()
    assert "percent" in page.locator("[data-testid=preview-error]").inner_text()
    assert not Command.objects.exists()  # previews write nothing

    # A curtailment of the whole site: the preview shows the plan (power targets before stops) in kW.
    start = timezone.now() + timedelta(hours=1)
    page.select_option("[data-field=type]", "CURTAIL")
    page.select_option("[data-field=target_kind]", "site")
    assert page.locator("[data-for-targets=serials]").is_hidden()
    page.fill("[data-field=curtail_kw]", "3")
    page.fill("[data-field=curtail_start]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("[data-field=curtail_end]", (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("[data-testid=preview-plan]").wait_for()
    assert "requested 3.000 kW" in page.locator("[data-testid=preview-plan]").inner_text()
    page.select_option("[data-field=target_kind]", "serials")

    page.select_option("[data-field=type]", "MINER_RESTART")
    page.locator("[data-testid=preview-tier][data-tier=MEDIUM]").wait_for()
    page.click("[data-testid=propose-submit]")
    page.wait_for_url(re.compile(r".*/commands/\d+/$"))
    command = Command.objects.get()
    assert page.locator("[data-testid=command-status]").first.get_attribute("data-status") == "PENDING_APPROVAL"
    assert page.locator("[data-testid=approve-form]").count() == 0  # not on one's own command

    # The proposer watches the list; the owner approves in another browser.
    page.goto(f"{base}/commands/")
    page.locator("html[data-commands-live='1']").wait_for(state="attached")
    page.evaluate("window.__notReloaded = true")
    row = page.locator(f"tr[data-command-id='{command.pk}']")
    assert row.get_attribute("data-status") == "PENDING_APPROVAL"
    other = browser.new_context(locale="en-US")
    try:
        second = other.new_page()
        second.set_default_timeout(15_000)
        sign_in(second, base, "owner", f"/commands/{command.pk}/")
        second.fill("#approve-reason", "checked the rack")
        second.click("[data-testid=approve]")
        second.locator("[data-testid=command-status][data-status=APPROVED]").first.wait_for()
    finally:
        other.close()
    page.locator(f"tr[data-command-id='{command.pk}'][data-status=APPROVED]").wait_for()
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator(f"tr[data-command-id='{command.pk}'] [data-testid=command-approvals]").inner_text() == "1 / 1"

    # A command proposed elsewhere appears on top of the first page, live.
    newer = in_thread(
        lambda: services.command_propose(
            actor=farm.users["owner"], type="SET_FAN", params={"percent": 80},
            targets=[farm.miners[("site-a", "client-x")].pk],
        ).command
    )  # fmt: skip
    page.locator(f"tbody tr[data-command-id='{newer.pk}']").wait_for()
    assert page.locator("tbody tr").first.get_attribute("data-command-id") == str(newer.pk)
    assert page.evaluate("window.__notReloaded") is True


def test_the_detail_page_follows_its_command_live(page, asgi_server, farm):  # noqa: F811
    command = in_thread(
        lambda: (
            services.command_propose(
                actor=farm.users["siteowner_a"], type="MINER_RESTART", targets=[farm.miners[("site-a", "own")].pk]
            ).command
        )
    )
    sign_in(page, asgi_server, "owner", f"/commands/{command.pk}/")
    page.locator("html[data-commands-live='1']").wait_for(state="attached")
    page.evaluate("window.__notReloaded = true")
    page.fill("#deny-reason", "typing a reason")  # kept while the rest of the page follows
    in_thread(lambda: services.command_cancel(command=command, actor=farm.users["siteowner_a"], reason="changed plan"))
    page.locator("[data-testid=command-status][data-status=CANCELLED]").first.wait_for()
    assert page.evaluate("window.__notReloaded") is True
    assert "changed plan" in page.locator("[data-testid=status-reason]").inner_text()
    assert page.locator("#deny-reason").input_value() == "typing a reason"


def overflow(tab) -> int:
    return tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_pages_fit_390px_and_keep_the_policy(browser, asgi_server, farm, language):  # noqa: F811
    command = in_thread(
        lambda: services.command_propose(
            actor=farm.users["siteowner_a"], type="POOL_SET",
            params={"url": "stratum+tcp://pool.example.com:3333", "worker": "farm-a.rack-01-worker-with-a-long-name"},
            targets=[farm.miners[("site-a", "own")].pk, farm.miners[("site-a", "client-x")].pk],
        ).command
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    context.add_cookies([{"name": "django_language", "value": language, "url": asgi_server}])
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        sign_in(tab, asgi_server, "owner", "/commands/")
        SHOTS.mkdir(parents=True, exist_ok=True)
        found = {}
        for name, url in (
            ("list", "/commands/"),
            ("detail", f"/commands/{command.pk}/"),
            ("propose", "/commands/new/"),
        ):
            tab.goto(f"{asgi_server}{url}")
            tab.wait_for_load_state("networkidle")
            if name == "propose":
                tab.fill("[data-field=serials]", farm.miners[("site-a", "own")].serial)
                tab.locator("[data-testid=preview-tier]").wait_for()
            tab.screenshot(path=str(SHOTS / f"{name}-{language}-390.png"), full_page=True)
            problems = list(tab.evaluate("window.__csp"))
            if overflow(tab) > 0:
                problems.append(f"overflows by {overflow(tab)} px")
            if problems:
                found[url] = problems
        assert not found, found
        # And on a desktop, for the person looking at the screenshots.
        tab.set_viewport_size({"width": 1280, "height": 900})
        tab.goto(f"{asgi_server}/commands/{command.pk}/")
        tab.screenshot(path=str(SHOTS / f"detail-{language}-1280.png"), full_page=True)
        tab.goto(f"{asgi_server}/commands/new/")
        tab.fill("[data-field=serials]", farm.miners[("site-a", "own")].serial)
        tab.locator("[data-testid=preview-tier]").wait_for()
        tab.screenshot(path=str(SHOTS / f"propose-{language}-1280.png"), full_page=True)
    finally:
        context.close()
    assert Command.objects.filter(status=CommandStatus.PENDING_APPROVAL).count() == 1
