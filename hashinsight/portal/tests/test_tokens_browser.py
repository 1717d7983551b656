"""The API tokens page in Chromium: create a token, copy it, use it, revoke it; and its layout at 390 px."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from hashinsight.accounts.models import ApiToken
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_calculator import _s21
from hashinsight.portal.tests.test_csp import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")  # set to keep PNGs of the page for a human look


def _no_sideways_scroll(tab) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_create_copy_use_and_revoke_a_token(page, live_server, farm):  # noqa: F811 - the fixture above
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, "client_x")
    page.click("[data-testid=account-menu]")  # the account's pages sit in its menu
    page.click("text=API tokens")
    page.wait_for_url(f"{live_server.url}/tokens/")
    assert page.locator("[data-expiry-date]").is_hidden()  # shown only for "On a date"
    page.select_option("#id_expiry", "date")
    assert page.locator("[data-expiry-date]").is_visible()
    page.select_option("#id_expiry", "30")

    page.fill("#id_name", "Grafana")
    page.check("input[name=scope][value=read]")
    page.click("[data-testid=token-create]")
    page.wait_for_selector("[data-testid=token-created]")
    secret = page.input_value("[data-testid=token-secret]")
    token = ApiToken.objects.get(user=farm.users["client_x"])
    assert secret.startswith(f"hi_{token.prefix}_") and token.scope == ApiToken.Scope.READ

    page.click("[data-testid=copy-token]")
    page.wait_for_selector("[data-testid=copy-token][data-copied=yes]")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert page.inner_text("[data-testid=copy-token]") == "Copied"

    api = APIClient()
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

    if SCREENSHOTS:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.screenshot(path=f"{SCREENSHOTS}/tokens-1366.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{SCREENSHOTS}/tokens-390.png", full_page=True)

    page.reload()  # the secret is gone for good
    assert page.locator("[data-testid=token-created]").count() == 0
    assert secret not in page.content()
    row = page.locator(f"[data-testid=token-row][data-prefix='{token.prefix}']")
    assert row.locator("[data-testid=token-status]").inner_text() == "Active"

    page.set_viewport_size({"width": 390, "height": 844})
    assert _no_sideways_scroll(page)

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=token-revoke]").click()
    page.wait_for_selector(".alert-success")
    assert row.locator("[data-testid=token-status]").inner_text() == "Revoked"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_dismissing_the_confirmation_keeps_the_token(page, live_server, farm):  # noqa: F811
    from hashinsight.accounts.services import api_token_create

    token, _ = api_token_create(user=farm.users["client_x"], name="keep me")
    sign_in(page, live_server, "client_x")
    page.goto(f"{live_server.url}/tokens/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("[data-testid=token-revoke]")
    page.wait_for_load_state("networkidle")
    token.refresh_from_db()
    assert token.revoked_at is None


def test_calculator_layout(page, live_server, db):  # noqa: F811
    model = _s21()
    page.goto(f"{live_server.url}/calculator/")
    page.wait_for_selector("[data-testid=calculator-result]")  # a result at once, no click needed
    assert page.locator("#id_model").input_value() == str(model.pk)
    assert page.get_attribute("#id_hashrate_ths", "placeholder") == "200 (nominal)"
    page.goto(f"{live_server.url}/calculator/?quantity=10&hashrate_ths=210")
    page.wait_for_selector("[data-testid=calculator-result]")
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert _no_sideways_scroll(page), width
        if SCREENSHOTS:
            page.screenshot(path=f"{SCREENSHOTS}/calculator-{width}.png", full_page=True)
