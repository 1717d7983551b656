"""The Content-Security-Policy: sent on every page, and no page breaks it in a real browser.

The header test is plain Django; the browser test loads every portal page (and the API docs, the
login page and the admin) in Chromium and fails on any ``securitypolicyviolation`` event or console
message about the policy, naming the page and the blocked thing."""

from __future__ import annotations

import pytest

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.tests.factories import PASSWORD

# Listens before any page script runs (added through the DevTools protocol, which the policy does not
# govern), so even a violation during parsing is recorded.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def owner_pages(farm) -> list[str]:
    site, client = farm.site_a.pk, farm.client_x.pk
    return [
        "/",
        "/sites/",
        "/sites/site-a/",
        "/miners/",
        "/alerts/",
        "/commands/",
        "/commands/new/",
        "/roi/",
        "/forecasts/",
        "/forecasts/?target=revenue",
        "/market/",
        "/sites/site-a/power-prices/",
        "/curtailment/plans/",
        "/curtailment/planner/",
        "/curtailment/events/",
        "/curtailment/events/new/",
        "/curtailment/profiles/",
        "/curtailment/profiles/new/",
        "/curtailment/programmes/",
        "/curtailment/programmes/new/",
        "/curtailment/responder/",
        f"/curtailment/responder/{site}/",
        "/miner-health/",
        f"/forecasts/?target=revenue&subject=site:{site}",
        f"/forecasts/?target=revenue&subject=customer:{client}",
        "/edge-devices/",
        "/jobs/",
        "/calculator/",
        "/tokens/",
        "/api/docs/",
        "/api/redoc/",
        "/admin/",
        "/admin/miners/miner/",
        f"/admin/sites/site/{site}/change/",
        f"/admin/sites/site/{site}/permissions/",
        f"/admin/sites/customer/{client}/permissions/",
        "/admin/accounts/user/add/",
        "/admin/django_celery_beat/periodictask/add/",
        *admin_changelists(),
    ]


def admin_changelists() -> list[str]:
    """Every model's list in the admin, so a new admin page is checked without being listed here."""
    from django.contrib import admin
    from django.urls import reverse

    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    )


def customer_pages(farm) -> list[str]:
    entry = farm.portfolio["customer"].pk
    return ["/", "/portfolio/add/", f"/portfolio/{entry}/edit/", f"/portfolio/{entry}/delete/", "/tokens/"]


# Blocks that are the policy doing its job, not a page breaking it: ReDoc's "API docs by Redocly" footer
# asks for its logo from cdn.redoc.ly (nothing may load from a CDN); ReDoc hides the image when it fails.
EXPECTED_BLOCKS = {"/api/redoc/": ("https://cdn.redoc.ly/",)}

# Pages drawn by their scripts: this element exists only once the (local, policy-abiding) script ran.
RENDERED = {"/api/docs/": ".swagger-ui .info .title", "/api/redoc/": ".api-info h1"}


def test_every_page_sends_the_strict_policy(client, farm):
    client.force_login(farm.users["owner"])
    for url in ["/", "/calculator/", "/tokens/", "/api/docs/", "/accounts/login/"]:
        policy = client.get(url).headers.get("Content-Security-Policy", "")
        directives = {d.strip().split(" ", 1)[0]: d.strip() for d in policy.split(";") if d.strip()}
        assert directives["script-src"] == "script-src 'self'", url
        assert directives["style-src"] == "style-src 'self'", url
        assert directives["default-src"] == "default-src 'self'", url
        assert directives["frame-ancestors"] == "frame-ancestors 'none'", url
        assert directives["object-src"] == "object-src 'none'", url
        assert "unsafe" not in policy, url


def _violations(tab, url: str) -> list[str]:
    console: list[str] = []
    tab.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    response = tab.goto(url)
    tab.wait_for_load_state("networkidle")
    status = [f"answered HTTP {response.status}"] if response.status >= 400 else []
    return [*status, *tab.evaluate("window.__csp"), *console]


def sign_in(tab, live_server, username: str) -> None:
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{live_server.url}/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_violates_the_policy(page, live_server, farm):  # noqa: F811 - the fixture above
    page.context.add_init_script(RECORD_VIOLATIONS)
    found = {}
    for url in ("/accounts/login/", "/admin/login/", "/calculator/", "/accounts/password/reset/"):
        violations = _violations(page, f"{live_server.url}{url}")
        if violations:
            found[f"signed out {url}"] = violations
    for username, pages in (("owner", owner_pages(farm)), ("customer", customer_pages(farm))):
        page.context.clear_cookies()
        sign_in(page, live_server, username)
        for url in pages:
            expected = EXPECTED_BLOCKS.get(url, ())
            violations = [v for v in _violations(page, f"{live_server.url}{url}") if not any(e in v for e in expected)]
            rendered = RENDERED.get(url)
            if rendered and not page.locator(rendered).count():
                violations.append(f"nothing matches {rendered}: the page's scripts did not run")
            if violations:
                found[f"{username} {url}"] = violations
    assert not found, "\n".join(f"{url}: {v}" for url, vs in found.items() for v in vs)
