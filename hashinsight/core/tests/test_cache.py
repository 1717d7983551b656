"""The cache helper: versioned invalidation, stale-while-revalidate, and life without Redis."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.core.cache import cache

from conftest import REQUIRE_SERVICES
from hashinsight.core import cache as cache_helper
from hashinsight.tests.factories import PortfolioEntryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def builder(monkeypatch):
    state = {"calls": 0, "value": "v1"}

    def build(*, id):
        state["calls"] += 1
        return {"id": id, "value": state["value"]}

    monkeypatch.setitem(cache_helper._BUILDERS, "forecast", build)
    return state


def test_miss_then_hit(builder):
    assert cache_helper.get("forecast", id=1) == ({"id": 1, "value": "v1"}, "miss")
    assert cache_helper.get("forecast", id=1).state == "hit"
    assert builder["calls"] == 1


def test_invalidation_serves_stale_and_rebuilds_once(builder):
    cache_helper.get("forecast", id=1)
    builder["value"] = "v2"
    cache_helper.invalidate("forecast", id=1)
    cache.add("lock:forecast:1", 1, 60)  # a rebuild is already running somewhere
    stale = cache_helper.get("forecast", id=1)
    assert stale == ({"id": 1, "value": "v1"}, "stale")
    assert builder["calls"] == 1  # no second rebuild while the lock is held
    cache.delete("lock:forecast:1")
    assert cache_helper.get("forecast", id=1).state == "stale"  # triggers the (eager) rebuild
    assert builder["calls"] == 2
    assert cache_helper.get("forecast", id=1) == ({"id": 1, "value": "v2"}, "hit")


def test_old_entries_go_stale_by_age(builder):
    cache_helper.get("forecast", id=3)
    assert cache_helper.get("forecast", id=3, fresh_s=0).state == "stale"


def test_seed_key_names():
    assert cache_helper.cache_key("user_portfolio", id=4) == "user_portfolio:4"
    assert cache_helper.cache_key("forecast", id=4) == "forecast:4"
    assert cache_helper.cache_key("optimize", id=2, date="2026-11-25") == "optimize:2:2026-11-25"


def test_portfolio_summary_endpoint_reports_cache_state(api):
    user = UserFactory(role="CUSTOMER")
    PortfolioEntryFactory(user=user, quantity=3)
    api.force_authenticate(user)
    first = api.get("/api/v1/portfolio/summary")
    assert first.status_code == 200 and first["X-Cache"] == "miss"
    assert first.json()["hashrate_ths"] == "600.00"
    assert api.get("/api/v1/portfolio/summary")["X-Cache"] == "hit"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is needed to test losing Redis")
        pytest.skip("redis-server not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


def test_api_keeps_answering_when_redis_dies(api, settings, private_redis):
    proc, url = private_redis
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3},
        }
    }
    user = UserFactory(role="CUSTOMER")
    PortfolioEntryFactory(user=user, quantity=2)
    api.force_authenticate(user)
    assert api.get("/api/v1/portfolio/summary")["X-Cache"] == "miss"
    assert api.get("/api/v1/portfolio/summary")["X-Cache"] == "hit"
    proc.kill()
    proc.wait()
    response = api.get("/api/v1/portfolio/summary")
    assert response.status_code == 200
    assert response["X-Cache"] == "bypass"
    assert response.json()["hashrate_ths"] == "400.00"
    # Writes that invalidate the cache still succeed without it.
    entry_id = api.get("/api/v1/portfolio").json()["results"][0]["id"]
    assert api.patch(f"/api/v1/portfolio/{entry_id}", {"quantity": 5}, format="json").status_code == 200
