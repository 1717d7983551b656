"""/api/health's intelligence figures: forecast_latency (recorded forecast builds, ms), optimization_runtime (the
latest plans' solver runtime, s), roi_drift (the smart alerts job's fleet profit change, %): each with its time of
measurement, null with a reason when there is no data or it cannot be read, cached so a health request computes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from hashinsight.core.cache import cache_key
from hashinsight.observability import health
from intelligence import forecasting, smart_alerts
from intelligence.models import CurtailmentPlan

pytestmark = pytest.mark.django_db
FIELDS = ("forecast_latency", "optimization_runtime", "roi_drift")


def test_no_data_gives_null_with_a_reason(client):
    body = client.get("/api/health").json()
    for field in FIELDS:
        assert body[field] is None
        assert body[f"{field}_reason"]
    assert body["roi_drift_reason"].startswith("not measured yet")


def plan(site, runtime_s):
    return CurtailmentPlan.objects.create(site=site, starts_at=datetime(2025, 6, 1, tzinfo=UTC), hours=24,
                                          solver={"status": "Optimal", "runtime_s": runtime_s})  # fmt: skip


def test_recorded_figures_are_reported_with_units_and_times(client, farm):
    for ms in (10, 20, 30, 40, 1000):
        forecasting.record_build_ms("user", ms)
    for runtime in (0.1, 0.3, 0.2):
        plan(farm.site_a, runtime)
    CurtailmentPlan.objects.create(site=farm.site_b, starts_at=datetime(2025, 6, 1, tzinfo=UTC), hours=24)  # no solve
    smart_alerts.record_roi_drift({
        "change_pct": -12.5, "before": {}, "after": {}, "profit_before_usd": "100.00", "profit_after_usd": "87.50",
        "biggest_factor": "difficulty",
    })  # fmt: skip
    body = client.get("/api/health").json()
    latency = body["forecast_latency"]
    assert (latency["unit"], latency["p50"], latency["p95"], latency["samples"]) == ("ms", 30, 1000, 5)
    assert latency["measured_at"]
    runtime = body["optimization_runtime"]
    assert (runtime["unit"], runtime["median"], runtime["plans"]) == ("s", 0.2, 3) and runtime["measured_at"]
    drift = body["roi_drift"]
    assert (drift["unit"], drift["value"], drift["biggest_factor"]) == ("%", -12.5, "difficulty")
    assert drift["measured_at"]
    assert not any(f"{f}_reason" in body for f in FIELDS)


def test_the_figures_are_cached_so_health_computes_nothing(django_assert_num_queries):
    first = health.intelligence_figures()
    with django_assert_num_queries(0):
        assert health.intelligence_figures() == first
    cache.delete(cache_key("health_intelligence"))


def test_a_figure_that_fails_is_null_with_its_error_never_a_crash(client, monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(health, "_optimization_runtime", broken)
    body = client.get("/api/health").json()
    assert body["optimization_runtime"] is None
    assert body["optimization_runtime_reason"] == "unavailable: RuntimeError"
    assert body["database"]["ok"]


def test_a_week_before_without_profit_gives_null_with_that_reason(client):
    smart_alerts.record_roi_drift({"change_pct": None})
    body = client.get("/api/health").json()
    assert body["roi_drift"] is None and "no profit" in body["roi_drift_reason"]
