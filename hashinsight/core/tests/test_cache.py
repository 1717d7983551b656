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


def test_a_miss_without_build_on_miss_answers_at_once_and_queues_one_build(builder):
    cache.add("lock:forecast:1", 1, 60)  # a build is already on its way: the reader neither waits nor adds one
    assert cache_helper.get("forecast", build_on_miss=False, id=1) == (None, "miss")
    assert builder["calls"] == 0
    cache.delete("lock:forecast:1")
    assert cache_helper.get("forecast", build_on_miss=False, id=1) == (None, "miss")  # queued (eager here: built)
    assert builder["calls"] == 1
    assert cache_helper.get("forecast", build_on_miss=False, id=1) == ({"id": 1, "value": "v1"}, "hit")


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


def test_an_invalidation_during_a_build_is_not_lost(monkeypatch):
    # The entry is stamped with the version read before building: data changed mid-build leaves it
    # stale (and rebuilt), instead of stored under the new version as if it were current.
    state = {"value": "old", "calls": 0}

    def build(*, id):
        state["calls"] += 1
        value = state["value"]
        if state["calls"] == 1:
            state["value"] = "new"  # a write lands while we build from what we already read
            cache_helper.invalidate("forecast", id=id)
        return value

    monkeypatch.setitem(cache_helper._BUILDERS, "forecast", build)
    assert cache_helper.get("forecast", id=7) == ("old", "miss")
    assert cache_helper.get("forecast", id=7) == ("old", "stale")  # rebuild runs (eagerly) behind it
    assert state["calls"] == 2
    assert cache_helper.get("forecast", id=7) == ("new", "hit")


def test_a_background_rebuild_interrupted_by_an_invalidation_stays_stale(monkeypatch):
    calls = []

    def build(*, id):
        calls.append(id)
        if len(calls) == 2:
            cache_helper.invalidate("forecast", id=id)
        return len(calls)

    monkeypatch.setitem(cache_helper._BUILDERS, "forecast", build)
    cache_helper.build_and_store("forecast", id=8)
    cache_helper.invalidate("forecast", id=8)
    cache_helper.build_and_store("forecast", id=8)  # invalidated again while it ran
    assert cache_helper.get("forecast", id=8).state == "stale"


def test_warming_walks_what_the_apps_registered(farm, monkeypatch):
    from hashinsight.core import registry
    from hashinsight.core.tasks import warm_caches
    from hashinsight.events.models import JobRun

    assert "miners" in registry.warmers()  # registered by the miners app at start
    built = []
    monkeypatch.setitem(cache_helper._BUILDERS, "forecast", lambda *, id: built.append(id) or id)
    monkeypatch.setitem(registry._WARMERS, "extra", lambda limit: [("forecast", {"id": 5}), ("nope", {"id": 1})])
    result = warm_caches.run()
    assert result["extra"] == 2 and built == [5]
    # Two sites, two hosting clients and two portfolios in the farm, most active first.
    assert result["miners"] == 6
    assert cache_helper.get("site_summary", id=farm.site_a.pk).state == "hit"
    assert cache_helper.get("user_portfolio", id=farm.users["customer"].pk).state == "hit"
    assert cache_helper.get("customer_summary", id=farm.client_x.pk).state == "hit"
    run = JobRun.objects.get(job_type="cache_warming")
    assert (run.processed, run.succeeded, run.failed) == (8, 7, 1)


def test_warm_targets_put_the_most_active_first(farm):
    from datetime import timedelta

    from django.utils import timezone

    from hashinsight.tests.factories import MinerFactory
    from miners.warming import warm_targets

    farm.users["customer2"].last_login = timezone.now()
    farm.users["customer2"].save(update_fields=["last_login"])
    farm.users["customer"].last_login = timezone.now() - timedelta(days=3)
    farm.users["customer"].save(update_fields=["last_login"])
    MinerFactory(zone=farm.zone_b, site=farm.site_b)  # site B now has the larger fleet
    MinerFactory(zone=farm.zone_b, site=farm.site_b, customer=farm.client_y)  # and client Y the larger one
    targets = warm_targets(1)
    assert targets == [
        ("user_portfolio", {"id": farm.users["customer2"].pk}),
        ("site_summary", {"id": farm.site_b.pk}),
        ("customer_summary", {"id": farm.client_y.pk}),
    ]


def test_admin_change_check_comes_from_the_sites_app(farm):
    from hashinsight.core import registry

    assert registry.site_manageable(user=farm.users["siteowner_a"], site_id=farm.site_a.pk)
    assert not registry.site_manageable(user=farm.users["siteowner_a"], site_id=farm.site_b.pk)
    assert not registry.site_manageable(user=farm.users["siteowner_b_ro"], site_id=farm.site_b.pk)


def test_old_entries_go_stale_by_age(builder):
    cache_helper.get("forecast", id=3)
    assert cache_helper.get("forecast", id=3, fresh_s=0).state == "stale"


def test_an_entry_past_its_stale_bound_is_rebuilt_now(builder, monkeypatch):
    cache_helper.get("forecast", id=5)
    cache_helper.get("forecast", id=6)
    builder["value"] = "v2"
    later = time.time() + 100
    monkeypatch.setattr(cache_helper.time, "time", lambda: later)
    assert cache_helper.get("forecast", id=5, fresh_s=10, max_stale_s=200).state == "stale"
    assert cache_helper.get("forecast", id=6, fresh_s=10, max_stale_s=60) == ({"id": 6, "value": "v2"}, "miss")


def test_a_group_invalidation_makes_every_key_of_the_group_stale(monkeypatch):
    built = []

    def build(*, id, date):
        built.append((id, date))
        return f"{id}:{date}:{len(built)}"

    monkeypatch.setitem(cache_helper._BUILDERS, "optimize", build)
    for id, date in ((1, "2026-11-26"), (1, "2026-11-27"), (2, "2026-11-26")):
        assert cache_helper.get("optimize", id=id, date=date).state == "miss"
    cache.add("lock:optimize:1:2026-11-27", 1, 60)  # its rebuild is already on its way elsewhere
    cache_helper.invalidate_group("optimize", [{"id": 1}])
    assert cache_helper.get("optimize", id=1, date="2026-11-26") == ("1:2026-11-26:1", "stale")  # rebuilt (eager)
    assert cache_helper.get("optimize", id=1, date="2026-11-27") == ("1:2026-11-27:2", "stale")
    assert cache_helper.get("optimize", id=2, date="2026-11-26").state == "hit"  # another site: untouched
    assert cache_helper.get("optimize", id=1, date="2026-11-26") == ("1:2026-11-26:4", "hit")
    # The key's own invalidation still counts beside the group's, and a later group bump still shows.
    cache_helper.invalidate("optimize", id=1, date="2026-11-26")
    assert cache_helper.get("optimize", id=1, date="2026-11-26").state == "stale"
    assert cache_helper.get("optimize", id=1, date="2026-11-26").state == "hit"
    cache_helper.invalidate_group("optimize", [{"id": 1}])
    assert cache_helper.get("optimize", id=1, date="2026-11-26").state == "stale"
    cache_helper.invalidate_group("optimize", [])  # nothing to do


def test_a_group_invalidation_during_a_build_is_not_lost(monkeypatch):
    def build(*, id, date):
        cache_helper.invalidate_group("optimize", [{"id": id}])  # prices land while the plan is being made
        return "built"

    monkeypatch.setitem(cache_helper._BUILDERS, "optimize", build)
    cache_helper.build_and_store("optimize", id=3, date="2026-11-26")
    monkeypatch.setitem(cache_helper._BUILDERS, "optimize", lambda *, id, date: "rebuilt")
    assert cache_helper.get("optimize", id=3, date="2026-11-26") == ("built", "stale")


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
