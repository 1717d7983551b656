"""A real browser on the real ASGI app sees an alert appear live (toast and table row)."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.tests.factories import PASSWORD
from telemetry import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def asgi_server(redis_url, settings):
    """uvicorn serving hashinsight.asgi in a thread of this process (it shares the test database);
    the Redis channel layer carries group messages between the test thread and the server's loop."""
    import uvicorn

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"t{time.time_ns()}"},
        }
    }
    from hashinsight.asgi import application

    # The server's threads must not keep database connections past the test (it drops the database).
    db_settings = connections.settings["default"]
    max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    db_settings["CONN_MAX_AGE"] = max_age


def test_alert_appears_live_for_the_right_user(page, asgi_server, farm):  # noqa: F811
    page.goto(f"{asgi_server}/accounts/login/?next=/alerts/")
    page.fill("#id_username", "client_x")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server}/alerts/")
    page.locator("[data-testid=live-status][data-state=live]").wait_for(timeout=15_000)

    def raise_in_thread(miner, alert_type, message):
        try:
            return services.alert_raise(
                site=miner.site, miner=miner, alert_type=alert_type, severity="critical", message=message
            )
        finally:
            connections.close_all()  # this thread's connection would otherwise outlive the test database

    def raise_alert(*args):
        # Playwright's sync API keeps an event loop in this thread; a worker thread has none, like Celery.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(raise_in_thread, *args).result()

    raise_alert(farm.miners[("site-a", "client-y")], "temp", "not yours")
    alert = raise_alert(farm.miners[("site-b", "client-x")], "fan", "Fan 2 stopped")

    row = page.locator(f"tr[data-alert-id='{alert.pk}']")
    row.wait_for(timeout=15_000)
    assert "Fan 2 stopped" in row.inner_text()
    assert page.locator("[data-testid=alert-toast]").first.inner_text().startswith("fan: Fan 2 stopped")
    # No wait for silence: the other client's alert was sent first, and frames reach the page in
    # order, so had it been sent to this socket it would already be on the page.
    assert "not yours" not in page.content()
