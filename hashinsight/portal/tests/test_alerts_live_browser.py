"""Live alert rows on the real ASGI app: an arriving alert is swapped in as the server-rendered row
(identical to a reload), a resolved one leaves the unresolved view, and a reload of the tab resumes
from the last event id it saw (``?after=``)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.tests.factories import PASSWORD
from telemetry import services as alert_services
from telemetry.tests.test_live_alerts_browser import asgi_server  # noqa: F401 - uvicorn in a thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def in_thread(fn, **kwargs):
    """Playwright's sync API keeps an event loop in this thread; services run in a worker, like Celery."""

    def work():
        try:
            return fn(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def normalise(html: str) -> str:
    return re.sub(r"\s+", " ", html).replace("> <", "><").strip()


def test_live_rows_match_server_rendered_rows_and_follow_the_filters(page, asgi_server, farm):  # noqa: F811
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{asgi_server}/accounts/login/?next=/alerts/")
    page.fill("#id_username", "siteowner_a")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server}/alerts/")
    page.locator("[data-testid=live-status][data-state=live]").wait_for()

    miner = farm.miners[("site-a", "client-x")]
    alert = in_thread(
        alert_services.alert_raise, site=miner.site, miner=miner, alert_type="fan", severity="critical",
        message="Fan 2 stopped",
    )  # fmt: skip
    row = page.locator(f"tr[data-alert-id='{alert.pk}']")
    row.wait_for()
    assert row.locator("[data-testid=alert-acknowledge]").count() == 1  # actions, like a served row

    in_thread(alert_services.alert_raise, site=miner.site, miner=miner, alert_type="fan", severity="critical",
              message="Fan 2 stopped")  # fmt: skip
    page.locator(f"tr[data-alert-id='{alert.pk}'] td.text-end", has_text="2").wait_for()  # count went up
    live_html = page.locator(f"tr[data-alert-id='{alert.pk}']").evaluate("el => el.outerHTML")

    last_event = page.evaluate("sessionStorage.getItem('hashinsight.alerts.lastEventId')")
    assert last_event
    page.reload()
    page.locator("[data-testid=live-status][data-state=live]").wait_for()
    assert sockets[-1].endswith(f"/ws/alerts/?after={last_event}")  # resume from the last event seen
    served_html = page.locator(f"tr[data-alert-id='{alert.pk}']").evaluate("el => el.outerHTML")
    assert normalise(live_html) == normalise(served_html)

    # Resolved: it no longer matches the default filter (unresolved) and leaves the table.
    in_thread(alert_services.alert_resolve, alert=alert)
    page.locator(f"tr[data-alert-id='{alert.pk}']").wait_for(state="detached")


def raise_many(site, n):
    from django.db import transaction

    with transaction.atomic():  # one commit: the events reach the browser together, as in a storm
        return [
            alert_services.alert_raise(site=site, alert_type=f"burst_{i}", severity="warning", message=f"Burst {i}")
            for i in range(n)
        ]


def test_a_burst_of_alerts_rereads_the_table_once_instead_of_row_by_row(page, asgi_server, farm):  # noqa: F811
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{asgi_server}/accounts/login/?next=/alerts/")
    page.fill("#id_username", "siteowner_a")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server}/alerts/")
    page.locator("[data-testid=live-status][data-state=live]").wait_for()
    requests.clear()

    alerts = in_thread(raise_many, site=farm.site_a, n=15)
    for alert in alerts:
        page.locator(f"tr[data-alert-id='{alert.pk}']").wait_for()
    assert not [url for url in requests if "/row" in url]
    assert 1 <= requests.count(f"{asgi_server}/alerts/") <= 2
    html = page.locator("[data-live-alerts] tbody").evaluate("el => el.outerHTML")
    page.reload()
    assert normalise(page.locator("[data-live-alerts] tbody").evaluate("el => el.outerHTML")) == normalise(html)
