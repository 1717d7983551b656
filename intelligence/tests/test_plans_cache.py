"""A site's day plan served from the cache (issue 9 item 6): ``GET /api/optimize/curtailment?site=&date=`` answers
the daily job's plan from ``optimize:{site}:{date}`` with ``X-Cache`` hit / miss / stale (stale served while one
rebuild runs, eagerly here); hidden sites 404, hosting clients 403 as on the plans API; bad input 400. A price load
or a fleet change reaches the site's entries through the outbox (``intelligence.plans_handlers``) and makes them
stale, every day's at once; the planner page reads tomorrow's plans the same way."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import OutboxEvent
from intelligence import curtailment_plans as plans
from intelligence import plans_tasks
from intelligence.models import CurtailmentPlan, MarketDay
from intelligence.tests.test_plans_services import breakevens, load_prices, shape

pytestmark = pytest.mark.django_db
URL = "/api/optimize/curtailment"


@pytest.fixture
def day(farm):
    """Tomorrow in site A's time, with day-ahead prices for all of it (every miner off in hours 16–18)."""
    MarketDay.objects.create(
        date="2025-11-01", btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"), fees_btc=Decimal(4)
    )
    tomorrow = plans_tasks.tomorrow_for(farm.site_a)
    _hp, be19, be21 = breakevens()
    load_prices(farm.site_a, plans.day_window(farm.site_a, tomorrow), shape(be19, be21))
    return tomorrow


def read(api, user, site, day):
    api.force_authenticate(user)
    return api.get(URL, {"site": site.pk, "date": day.isoformat()})


def test_miss_then_hit_answers_the_jobs_plan(api, farm, day):
    first = read(api, farm.users["siteowner_a"], farm.site_a, day)
    assert first.status_code == 200, first.json()
    assert first["X-Cache"] == "miss"
    body = first.json()
    plan = CurtailmentPlan.objects.get()  # made on the miss, as the job makes it
    assert body["site"] == farm.site_a.pk and body["date"] == day.isoformat()
    assert body["plan"]["id"] == plan.pk and plan.created_by is None and plan.inputs["job"] is True
    assert body["plan"]["starts_at"] == plans.plan_body(plan)["starts_at"] and body["plan"]["hours"] == 24
    again = read(api, farm.users["siteowner_a"], farm.site_a, day)
    assert again["X-Cache"] == "hit" and again.json() == body
    assert CurtailmentPlan.objects.count() == 1


def test_the_jobs_entry_is_a_hit(api, farm, day):
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())
    r = read(api, farm.users["owner"], farm.site_a, day)
    assert r["X-Cache"] == "hit" and r.json()["plan"]["id"] == CurtailmentPlan.objects.get().pk


def test_an_old_entry_is_served_stale_while_it_is_rebuilt(api, farm, day, monkeypatch):
    read(api, farm.users["owner"], farm.site_a, day)
    later = time.time() + cache_helper.FRESH_S + 1
    monkeypatch.setattr(cache_helper.time, "time", lambda: later)
    stale = read(api, farm.users["owner"], farm.site_a, day)
    assert stale["X-Cache"] == "stale"  # the rebuild ran behind it (eagerly here): unchanged inputs, same plan
    assert read(api, farm.users["owner"], farm.site_a, day)["X-Cache"] == "hit"
    assert CurtailmentPlan.objects.count() == 1


def test_a_day_without_prices_answers_the_refusal(api, farm, day):
    r = read(api, farm.users["owner"], farm.site_b, day)
    assert r.status_code == 200 and r["X-Cache"] == "miss"
    assert r.json()["plan"] is None and r.json()["error_code"] == "missing_prices"
    assert not CurtailmentPlan.objects.exists()


@pytest.mark.parametrize(
    ("user", "site", "expected"),
    [
        ("owner", "site_a", 200), ("admin", "site_b", 200), ("siteowner_a", "site_a", 200),
        ("siteowner_a", "site_b", 404),  # not granted: hidden
        ("siteowner_b_ro", "site_b", 200),  # a read-only grant reads
        ("siteowner_b_ro", "site_a", 404),
        ("client_x", "site_a", 403), ("customer", "site_a", 403), ("guest", "site_a", 403),  # no CURTAILMENT
    ],
)  # fmt: skip
def test_who_may_read(api, farm, day, user, site, expected):
    r = read(api, farm.users[user], getattr(farm, site), day)
    assert r.status_code == expected, r.json()
    if expected != 200:
        assert set(r.json()) == {"error_code", "message", "request_id", "details"} and "X-Cache" not in r
        assert not CurtailmentPlan.objects.exists()  # nothing built for a caller who may not see it


def test_a_hidden_site_is_a_404_even_when_cached(api, farm, day):
    read(api, farm.users["owner"], farm.site_a, day)  # cached now
    r = read(api, farm.users["siteowner_b_ro"], farm.site_a, day)
    assert r.status_code == 404 and r.json()["error_code"] == "not_found"


def test_anonymous_is_a_401(api, farm, day):
    assert api.get(URL, {"site": farm.site_a.pk, "date": day.isoformat()}).status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date": "2026-11-27"}, "site"),
        ({"site": "abc", "date": "2026-11-27"}, "site"),
        ({"site": "0", "date": "2026-11-27"}, "site"),
        ({"site": "99999999999", "date": "2026-11-27"}, "site"),
        ({"site": "{site}"}, "date"),
        ({"site": "{site}", "date": "2026-13-01"}, "date"),
        ({"site": "{site}", "date": "27/11/2026"}, "date"),
        ({"site": "{site}", "date": "2026-11-27T00:00:00"}, "date"),
        ({"site": "{site}", "date": "0001-01-01"}, "date"),  # before any mining
        ({"site": "{site}", "date": "9999-12-31"}, "date"),  # beyond a year ahead
    ],
)
def test_bad_input_is_a_400(api, farm, query, field):
    api.force_authenticate(farm.users["owner"])
    r = api.get(URL, {k: v.format(site=farm.site_a.pk) for k, v in query.items()})
    assert r.status_code == 400, r.content
    body = r.json()
    assert set(body) == {"error_code", "message", "request_id", "details"}
    assert body["error_code"] == "validation_error" and set(body["details"]) == {field}


def test_a_nonexistent_site_is_a_404(api, farm, day):
    api.force_authenticate(farm.users["owner"])
    assert api.get(URL, {"site": 987654, "date": day.isoformat()}).status_code == 404


def test_the_post_is_unchanged(api, farm, day):
    api.force_authenticate(farm.users["owner"])
    start = plans.day_window(farm.site_a, day).isoformat()
    r = api.post(URL, {"site": farm.site_a.pk, "start": start}, format="json")
    assert r.status_code == 201 and r.json()["created_by"] == farm.users["owner"].pk


# --- invalidation through the outbox ---------------------------------------------------------------------------------


def upload(site, start, prices, *, market="day_ahead"):
    from intelligence.power_price_services import power_prices_upload
    from sites.models import Site

    lines = ["timestamp_utc,usd_per_mwh"] + [
        f"{(start + timedelta(hours=h)).strftime('%Y-%m-%dT%H:%M:%SZ')},{p}" for h, p in enumerate(prices)
    ]
    owner = Site.objects.get(pk=site.pk)  # a fresh row, as the view passes
    return power_prices_upload(site=owner, market=market, data="\n".join(lines), actor=None)


def test_a_price_upload_makes_the_sites_plans_stale(api, farm, day, django_capture_on_commit_callbacks):
    other_day = day + timedelta(days=1)
    user = farm.users["owner"]
    first = read(api, user, farm.site_a, day).json()
    read(api, user, farm.site_a, other_day)  # a day without prices: cached too
    read(api, user, farm.site_b, day)
    with django_capture_on_commit_callbacks(execute=True):
        upload(farm.site_a, plans.day_window(farm.site_a, day), [1.0] * 24)  # power nearly free: run everything
    event = OutboxEvent.objects.get(event_type="power_prices.loaded")
    assert event.status == OutboxEvent.Status.DONE and event.payload["site_id"] == farm.site_a.pk
    assert event.payload["market"] == "day_ahead" and event.payload["intervals"] == 24

    stale = read(api, user, farm.site_a, day)
    assert stale["X-Cache"] == "stale" and stale.json() == first  # the old plan, while the new one is made
    assert read(api, user, farm.site_a, other_day)["X-Cache"] == "stale"  # every day of the site
    assert read(api, user, farm.site_b, day)["X-Cache"] == "hit"  # another site: untouched
    fresh = read(api, user, farm.site_a, day)
    assert fresh["X-Cache"] == "hit" and fresh.json()["plan"]["id"] != first["plan"]["id"]
    assert fresh.json()["plan"]["inputs"]["prices_usd_per_mwh"] == [1.0] * 24
    assert CurtailmentPlan.objects.get(pk=first["plan"]["id"]).status == "superseded"


def test_real_time_prices_leave_the_plans_alone(api, farm, day, django_capture_on_commit_callbacks):
    read(api, farm.users["owner"], farm.site_a, day)
    with django_capture_on_commit_callbacks(execute=True):
        upload(farm.site_a, plans.day_window(farm.site_a, day), [1.0] * 24, market="real_time")
    assert OutboxEvent.objects.get(event_type="power_prices.loaded").status == OutboxEvent.Status.DONE
    assert read(api, farm.users["owner"], farm.site_a, day)["X-Cache"] == "hit"


@pytest.fixture
def plans_handlers_only(monkeypatch):
    """Fleet events reach only the plans' handlers here: the forecasts' (revenue refresh) need months of market
    days this farm does not have, and are tested on their own."""
    from hashinsight.events import registry

    for event_type, handlers in list(registry._HANDLERS.items()):
        mine = [h for h in handlers if h.name.startswith("intelligence.plans_handlers.")]
        monkeypatch.setitem(registry._HANDLERS, event_type, mine)


def test_a_moved_miner_makes_both_sites_plans_stale(
    api, farm, day, django_capture_on_commit_callbacks, plans_handlers_only
):
    from miners.services import miner_update

    user = farm.users["owner"]
    for site in (farm.site_a, farm.site_b):
        read(api, user, site, day)
    with django_capture_on_commit_callbacks(execute=True):
        miner_update(actor=user, miner=farm.miners[("site-a", "own")], site=farm.site_b, zone=farm.zone_b)
    assert read(api, user, farm.site_a, day)["X-Cache"] == "stale"
    assert read(api, user, farm.site_b, day)["X-Cache"] == "stale"
    after = read(api, user, farm.site_a, day).json()["plan"]
    assert sum(g["count"] for g in after["inputs"]["groups"]) == 2  # the moved miner is planned no more


def test_a_retired_miner_makes_its_sites_plans_stale(
    api, farm, day, django_capture_on_commit_callbacks, plans_handlers_only
):
    from miners.models import Miner
    from miners.services import miner_update

    user = farm.users["owner"]
    read(api, user, farm.site_a, day)
    read(api, user, farm.site_b, day)
    with django_capture_on_commit_callbacks(execute=True):
        miner_update(actor=user, miner=farm.miners[("site-a", "client-x")], status=Miner.Status.RETIRED)
    assert read(api, user, farm.site_a, day)["X-Cache"] == "stale"
    assert read(api, user, farm.site_b, day)["X-Cache"] == "hit"


def test_the_handlers_are_registered_at_start():
    from hashinsight.events.registry import handlers_for

    for event_type in (
        "power_prices.loaded", "miner.created", "miner.updated", "miner.deleted", "miners.bulk_imported",
        "site.changed", "zone.changed", "miner_model.changed",
    ):  # fmt: skip
        assert any(h.name.startswith("intelligence.plans_handlers.") for h in handlers_for(event_type)), event_type


def test_a_changed_model_makes_the_plans_of_its_sites_stale(farm):
    from types import SimpleNamespace

    from intelligence.plans_handlers import model_changed

    def version(site):
        key = cache_helper.cache_key("optimize", id=site.pk, date="2026-01-01")
        return cache_helper._current_version("optimize", key, {"id": site.pk})

    model = farm.miners[("site-b", "own")].model
    others = [m for m in farm.miners.values() if m.model_id == model.pk]
    before = {s.pk: version(s) for s in (farm.site_a, farm.site_b)}
    model_changed([(SimpleNamespace(model_id=model.pk, action="updated"), None)])
    bumped = {s.pk for s in (farm.site_a, farm.site_b) if version(s) > before[s.pk]}
    assert bumped == {m.site_id for m in others}


# --- the planner page ------------------------------------------------------------------------------------------------


def test_the_planner_page_reads_tomorrows_plan_through_the_cache(client, farm, day):
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())  # the hourly job's entry
    plan = CurtailmentPlan.objects.get()
    client.force_login(farm.users["siteowner_a"])
    r = client.get("/curtailment/planner/")
    assert r.status_code == 200 and r["X-Cache"] == "hit"
    html = r.content.decode()
    assert 'data-testid="tomorrow-plans"' in html and f'href="/curtailment/plans/{plan.pk}/"' in html
    assert day.isoformat() in html
    assert CurtailmentPlan.objects.count() == 1  # read, not made again


def test_the_planner_page_serves_a_stale_plan_while_it_is_rebuilt(client, farm, day, monkeypatch):
    client.force_login(farm.users["owner"])
    first = client.get("/curtailment/planner/")
    assert first["X-Cache"] == "miss"  # site B has no prices: not read
    # A miss is not made in the page's request: the row says so and the build is queued (run at once here, eager).
    assert 'data-testid="tomorrow-plan-pending"' in first.content.decode()
    cache_helper.invalidate_group("optimize", [{"id": farm.site_a.pk}])
    stale = client.get("/curtailment/planner/")
    assert stale["X-Cache"] == "stale" and 'data-testid="tomorrow-plan-pending"' not in stale.content.decode()
    assert client.get("/curtailment/planner/")["X-Cache"] == "hit"
    assert CurtailmentPlan.objects.count() == 1


def test_the_planner_page_without_tomorrows_prices_reads_nothing(client, farm, day, monkeypatch):
    from intelligence.models import PowerPrice

    PowerPrice.objects.all().delete()
    calls = []
    monkeypatch.setattr(plans, "day_plan", lambda **kw: calls.append(kw))
    client.force_login(farm.users["owner"])
    r = client.get("/curtailment/planner/")
    assert r.status_code == 200 and "X-Cache" not in r and calls == []
    assert 'data-testid="tomorrow-plans"' not in r.content.decode()
