"""The power price feeds' refresh (issue 9): the Beat job ``intelligence.power_prices_refresh`` and
``manage.py refresh_power_prices`` fetch, for every site in POWER_PRICE_FEEDS, both markets from the last stored
interval on and load them through the upload's service; a second run with nothing new changes nothing; a failing
feed is its site's outcome in the job run and /api/health and writes nothing; the schedule comes with migration
0005. The clock is frozen inside the shipped ERCOT prices (2024-01 … 2025-11)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from hashinsight.events.models import JobRun, OutboxEvent
from intelligence import power_feeds
from intelligence.algorithms import power_prices as pp
from intelligence.models import PowerPrice
from intelligence.power_feed_tasks import power_prices_refresh

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 7, tzinfo=UTC)
FAKE = "intelligence.tests.test_power_feed_refresh.FakeFeed"


class Clock:
    def __init__(self, monkeypatch, now: datetime):
        self.now = now
        monkeypatch.setattr(timezone, "now", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, NOW)


class FakeFeed:
    """The shipped prices, or per market an exception to raise or a series to answer instead."""

    name = "fake"
    errors: dict = {}
    answers: dict = {}

    def fetch(self, *, market, start, end):
        if market in self.errors:
            raise self.errors[market]
        if market in self.answers:
            return self.answers[market]
        return power_feeds.ShippedErcotFeed().fetch(market=market, start=start, end=end)


@pytest.fixture
def fake():
    FakeFeed.errors, FakeFeed.answers = {}, {}
    return FakeFeed


def rows(site, market=None):
    qs = PowerPrice.objects.filter(site=site, **({"market": market} if market else {}))
    return list(qs.order_by("market", "interval_start").values_list(
        "market", "interval_start", "interval_minutes", "usd_per_mwh", "source", "created_at"))  # fmt: skip


def test_the_job_loads_new_intervals_from_the_shipped_feed_and_a_second_run_changes_nothing(farm, settings, clock):
    settings.POWER_PRICE_FEEDS = {"site-a": "ercot_shipped"}
    result = power_prices_refresh.delay().get()

    # A week back (from the hour); real-time up to the last interval ended by now, day-ahead 48 h ahead.
    rt, da = rows(farm.site_a, "real_time"), rows(farm.site_a, "day_ahead")
    assert (rt[0][1], rt[-1][1], len(rt)) == (datetime(2025, 2, 22, 12, tzinfo=UTC), NOW.replace(minute=45, hour=11),
                                              7 * 96)  # fmt: skip
    assert (da[0][1], da[-1][1], len(da)) == (datetime(2025, 2, 22, 12, tzinfo=UTC), datetime(2025, 3, 3, 11,
                                              tzinfo=UTC), 7 * 24 + 48)  # fmt: skip
    shipped = pp.load_15min().window(datetime(2025, 3, 1, 11, 45, tzinfo=UTC), 0.25)
    assert rt[-1][3] == Decimal(repr(float(shipped.usd_per_mwh[0]))).quantize(Decimal("0.01"))
    assert {r[4] for r in rt + da} == {"feed:ercot_shipped"}
    [site] = result["sites"]
    assert site["error"] == "" and result["new"] == 7 * 96 + 7 * 24 + 48
    assert site["markets"]["real_time"] == {
        "new": 672, "updated": 0, "intervals": 672, "last": "2025-03-01T11:45:00Z"}  # fmt: skip
    run = JobRun.objects.get(job_type="power_prices_refresh")
    assert (run.status, run.trigger, run.processed, run.succeeded, run.failed) == ("success", "schedule", 1, 1, 0)

    before, events = rows(farm.site_a), OutboxEvent.objects.count()
    again = power_prices_refresh.delay().get()
    assert rows(farm.site_a) == before and OutboxEvent.objects.count() == events  # nothing written, nothing published
    assert again["new"] == 0 and again["sites"][0]["markets"]["real_time"]["intervals"] == 1  # the last one, again

    # A corrected last price (here: a stored one that differs from the feed's) is replaced, and only it.
    last = PowerPrice.objects.filter(site=farm.site_a, market="real_time").latest("interval_start")
    PowerPrice.objects.filter(pk=last.pk).update(usd_per_mwh=Decimal("999.99"), source="upload:x.csv")
    fixed = power_prices_refresh.delay().get()["sites"][0]["markets"]["real_time"]
    assert (fixed["new"], fixed["updated"]) == (0, 1)
    assert rows(farm.site_a) == before

    clock.now = NOW + timedelta(minutes=30)  # 12:37: the 12:00 and 12:15 intervals have ended
    later = power_prices_refresh.delay().get()
    assert later["sites"][0]["markets"] == {
        "day_ahead": {"new": 0, "updated": 0, "intervals": 1, "last": "2025-03-03T11:00:00Z"},
        "real_time": {"new": 2, "updated": 0, "intervals": 3, "last": "2025-03-01T12:15:00Z"},
    }
    assert len(rows(farm.site_a)) == len(before) + 2
    assert not PowerPrice.objects.filter(site=farm.site_b).exists()


def test_health_reports_each_feed_ok_then_stale_after_three_intervals(farm, settings, clock):
    assert power_feeds.power_feeds_health()["status"] == "unconfigured"
    settings.POWER_PRICE_FEEDS = {"site-a": "ercot_shipped"}
    [site] = power_feeds.power_feeds_health()["sites"]
    assert (site["status"], site["last_interval"], site["last_refresh"]) == ("stale", None, None)
    power_prices_refresh.delay().get()
    health = power_feeds.power_feeds_health()
    assert (health["status"], health["stale_after_intervals"]) == ("ok", 3)
    assert health["sites"] == [{
        "site": "site-a", "feed": "ercot_shipped", "status": "ok", "last_interval": "2025-03-01T11:45:00Z",
        "interval_minutes": 15, "age_s": 7 * 60, "last_day_ahead_interval": "2025-03-03T11:00:00Z",
        "last_refresh": "2025-03-01T12:07:00Z", "error": "",
    }]  # fmt: skip
    ended = datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert power_feeds.power_feeds_health(now=ended + timedelta(minutes=45))["status"] == "ok"
    late = power_feeds.power_feeds_health(now=ended + timedelta(minutes=45, seconds=1))
    assert (late["status"], late["sites"][0]["age_s"]) == ("stale", 45 * 60 + 1)


def test_a_failing_feed_is_recorded_and_reported_never_raised_and_writes_nothing(farm, settings, clock, fake, client):
    settings.POWER_PRICE_FEEDS = {"site-a": "ercot_shipped", "site-b": FAKE}
    fake.errors = {"real_time": ConnectionError("ISO API timed out")}
    # Day-ahead answers a 30-minute series: the table holds 5, 15 or 60 min, so the load refuses it whole.
    starts = np.arange(np.datetime64("2025-03-01T00:00"), np.datetime64("2025-03-02T00:00"), np.timedelta64(30, "m"))
    fake.answers = {"day_ahead": pp.PriceSeries(starts, np.full(len(starts), 40.0), 30, "half-hourly")}
    result = power_prices_refresh.delay().get()

    a, b = result["sites"]
    assert a["error"] == "" and len(rows(farm.site_a)) == 7 * 96 + 7 * 24 + 48  # the other site goes on
    assert b["markets"]["real_time"] == {"error": "ConnectionError: ISO API timed out"}
    assert b["markets"]["day_ahead"]["error"] == "DomainError: Intervals of 30 min cannot be stored (5, 15 or 60 min)."
    assert "real_time: ConnectionError: ISO API timed out" in b["error"]
    assert rows(farm.site_b) == []
    run = JobRun.objects.get(job_type="power_prices_refresh")
    assert (run.status, run.processed, run.succeeded, run.failed) == ("success", 2, 1, 1)

    body = client.get("/api/health").json()
    feeds = body["power_price_feeds"]
    assert feeds["status"] == "error"
    assert [(s["site"], s["status"]) for s in feeds["sites"]] == [("site-a", "ok"), ("site-b", "error")]
    assert "ISO API timed out" in feeds["sites"][1]["error"]

    # The feed mends: the next run loads from where it is (nothing stored: a week back) and the error clears.
    fake.errors, fake.answers = {}, {}
    clock.now = NOW + timedelta(minutes=5)
    power_prices_refresh.delay().get()
    assert len(rows(farm.site_b, "real_time")) == 7 * 96
    assert power_feeds.power_feeds_health()["status"] == "ok"


def test_an_unknown_site_or_feed_name_is_that_sites_error(farm, settings, clock):
    settings.POWER_PRICE_FEEDS = {"nowhere": "ercot_shipped", "site-a": "no.such.Feed"}
    result = power_prices_refresh.delay().get()
    errors = {o["site"]: o["error"] for o in result["sites"]}
    assert errors["nowhere"] == "no site with the slug 'nowhere'"
    assert "is not a feed" in errors["site-a"]
    assert not PowerPrice.objects.exists()
    assert [s["status"] for s in power_feeds.power_feeds_health()["sites"]] == ["error", "error"]


def test_no_feed_configured_does_nothing_and_leaves_no_job_record(farm, settings):
    settings.POWER_PRICE_FEEDS = {}
    assert power_prices_refresh.delay().get() == {"sites": [], "new": 0, "failed": 0}
    assert not JobRun.objects.exists() and not PowerPrice.objects.exists()


def test_the_command_runs_the_same_refresh_once(farm, settings, clock, fake):
    settings.POWER_PRICE_FEEDS = {"site-a": "ercot_shipped", "site-b": FAKE}
    out = StringIO()
    call_command("refresh_power_prices", "--site", "site-a", stdout=out)
    assert "site-a (ercot_shipped): day_ahead +216 (last 2025-03-03T11:00:00Z), real_time +672" in out.getvalue()
    assert not PowerPrice.objects.filter(site=farm.site_b).exists()
    run = JobRun.objects.get(job_type="power_prices_refresh")
    assert (run.trigger, run.processed) == ("manual", 1)

    fake.errors = {"real_time": power_feeds.PowerFeedError("no data")}
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 feeds failed"):
        call_command("refresh_power_prices", stdout=out)
    assert "site-b (fake): day_ahead +216" in out.getvalue() and "PowerFeedError: no data" in out.getvalue()
    with pytest.raises(CommandError, match="No power price feed is configured for 'site-c'"):
        call_command("refresh_power_prices", "--site", "site-c")
    settings.POWER_PRICE_FEEDS = {}
    out = StringIO()
    call_command("refresh_power_prices", stdout=out)
    assert "nothing to do" in out.getvalue()


def test_the_schedule_comes_with_migration_0005_and_keeps_an_admins_edits():
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    graph = MigrationLoader(connection, ignore_no_migrations=True).graph
    node = graph.node_map[("intelligence", "0005_power_price_feed_schedule")]
    assert {p.key for p in node.parents} == {("intelligence", "0004_upload_target_more_schedules")}
    assert len(graph.leaf_nodes("intelligence")) == 1  # one line of intelligence migrations, no conflict
    migration = importlib.import_module("intelligence.migrations.0005_power_price_feed_schedule")

    PeriodicTask.objects.filter(task="intelligence.power_prices_refresh").delete()
    slow, _ = IntervalSchedule.objects.get_or_create(every=7200, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="market data refresh", defaults={"task": "intelligence.market_refresh", "interval": slow}
    )
    migration.add_new_schedules(apps, None)
    task = PeriodicTask.objects.get(name="power prices: feed refresh")
    assert (task.task, task.interval.every, task.interval.period, task.queue, task.enabled) == (
        "intelligence.power_prices_refresh", 300, "seconds", "intelligence", True)  # fmt: skip
    assert PeriodicTask.objects.get(name="market data refresh").interval.every == 7200
