"""A site manager enrolls, rotates and revokes an edge device on the site page in a real browser;
the section fits a 390 px phone. Screenshots go to $EDGE_SCREENSHOT_DIR when it is set."""

from __future__ import annotations

import os
import re

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.tests.factories import PASSWORD
from telemetry import devices
from telemetry.models import EdgeDevice, EnrollmentCode

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(tab, name):
    folder = os.environ.get("EDGE_SCREENSHOT_DIR")
    if folder:
        tab.locator("[data-testid=edge-devices]").screenshot(path=os.path.join(folder, f"{name}.png"))


def test_site_manager_enrolls_rotates_and_revokes(page, live_server, farm):  # noqa: F811
    seen, token, _secret = devices.device_register(
        code=devices.enrollment_code_create(site=farm.site_a)[1], name="rack-row-3", version="1.4.2"
    )
    devices.device_report_health(
        device=seen, version="1.4.2",
        health={"spool_depth": 0, "miners_polled": 498, "miners_total": 500, "poll_errors": 2,
                "last_push_at": "2026-11-26T00:00:00+00:00"},
    )  # fmt: skip
    from telemetry.edge_auth import authenticate_device

    authenticate_device(token, ip="10.20.0.5")
    devices.device_register(code=devices.enrollment_code_create(site=farm.site_a)[1], name="spare", version="1.4.2")
    page.goto(f"{live_server.url}/accounts/login/?next=/sites/{farm.site_a.slug}/")
    page.fill("#id_username", "siteowner_a")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/sites/site-a/$"))
    section = page.locator("[data-testid=edge-devices]")
    assert section.locator("[data-testid=edge-device-row]").count() == 2
    assert "10.20.0.5" in section.inner_text() and "498 of 500 miners polled" in section.inner_text()
    _shot(page, "edge-devices-desktop")

    # New enrollment code: shown once, with its expiry.
    page.click("[data-testid=edge-enroll]")
    code = page.locator("[data-testid=edge-code]").input_value()
    assert re.fullmatch(r"[A-Z2-9]{5}(-[A-Z2-9]{5}){3}", code)
    assert "Valid until" in page.locator("[data-testid=edge-code-expiry]").inner_text()
    page.reload()
    assert page.locator("[data-testid=edge-credentials-gone]").is_visible()
    assert EnrollmentCode.objects.filter(used_at__isnull=True).count() == 1

    # Rotate asks first; dismissing changes nothing, accepting shows the new credentials once.
    page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/")
    row = page.locator(f"[data-testid=edge-device-row][data-device-id='{seen.pk}']")
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("[data-testid=edge-rotate]").click()
    assert EdgeDevice.objects.get(pk=seen.pk).rotated_at is None
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=edge-rotate]").click()
    new_token = page.locator("[data-testid=edge-token]").input_value()
    assert new_token.startswith("hie_") and new_token != token
    assert page.locator("[data-testid=edge-hmac-secret]").input_value()

    # Revoke asks too; the row then says so and loses its buttons.
    page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=edge-revoke]").click()
    page.wait_for_url(re.compile(r".*/sites/site-a/#edge-devices$"))
    assert row.locator("[data-testid=edge-status]").inner_text() == "Revoked"
    assert row.locator("[data-testid=edge-rotate]").count() == 0
    assert EdgeDevice.objects.get(pk=seen.pk).revoked_at is not None

    # 390 px: nothing pushes the page sideways (the table scrolls inside its own box; the wrapper is
    # positioned, so the visually-hidden column heading cannot escape it and widen the page).
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    _shot(page, "edge-devices-390")
