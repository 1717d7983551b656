"""``POST /api/v1/assets/{asset_id}/predict``: the asset's own history (a client sees only its own miners' power),
posted historical_data, bad input (400 with a code, naming the field), hidden assets (404), and the preloaded
forecast (a second call in the same hour reads no history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from intelligence import asset_forecast
from telemetry.models import Daily, History5m, RollupCursor

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_lru():
    asset_forecast.lru_clear()
    yield
    asset_forecast.lru_clear()


def url(asset_id: str) -> str:
    return f"/api/v1/assets/{asset_id}/predict"


def post(api, user, asset_id, body):
    api.force_authenticate(user)
    return api.post(url(asset_id), body, format="json")


def hourly(hours=72, base=3.0):
    return [{"ts": (T0 + timedelta(hours=k)).isoformat(), "power_kw": base + (k % 24 >= 12)} for k in range(hours)]


def test_posted_history_gives_hourly_power_and_energy_with_intervals(api, farm):
    miner = farm.miners[("site-a", "own")]
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", {"forecast_horizon": 24, "historical_data": hourly()})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["method"] == "seasonal_level" and body["source"] == "historical_data"
    assert body["unit"] == {"power": "kW", "energy": "kWh"} and len(body["points"]) == 24
    first = body["points"][0]
    assert first["ts"] == "2026-11-23T00:00:00Z" and first["power_kw"] == 3.0 and first["energy_kwh"] == 3.0
    assert body["points"][12]["power_kw"] == 4.0
    assert body["total"]["energy_kwh"] == pytest.approx(12 * 3 + 12 * 4)
    for p in body["points"]:
        assert p["power_kw_lo95"] <= p["power_kw_lo80"] <= p["power_kw"] <= p["power_kw_hi80"] <= p["power_kw_hi95"]


def test_five_minute_points_are_averaged_per_hour_and_a_short_history_falls_back(api, farm):
    miner = farm.miners[("site-a", "own")]
    data = [{"ts": (T0 + timedelta(minutes=5 * k)).isoformat(), "power_kw": 2.0 + (k % 2)} for k in range(36)]
    r = post(api, farm.users["owner"], f"miner:{miner.pk}",
             {"forecast_horizon": 3, "historical_data": data, "interval_minutes": 5})  # fmt: skip
    body = r.json()
    assert r.status_code == 200, body
    assert body["method"] == "flat" and "only 3 hours of history" in body["fallback_reason"]
    assert [p["power_kw"] for p in body["points"]] == [2.5, 2.5, 2.5]


def _history(miner, *, hours=72, kw=3.2, end=None):
    end = end or timezone.now().replace(minute=0, second=0, microsecond=0)
    rows = [
        History5m(
            miner=miner, bucket=end - k * timedelta(minutes=5), site_id=miner.site_id,
            customer_id=miner.customer_id, sample_count=5, hashing_count=5, uptime_fraction=1.0,
            avg_power_w=kw * 1000,
        )
        for k in range(1, hours * 12 + 1)
    ]  # fmt: skip
    History5m.objects.bulk_create(rows)
    return end


def test_without_data_the_assets_history_is_used_and_a_client_sees_only_its_own_miners(api, farm):
    mine, theirs = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "client-y")]
    _history(mine, kw=3.0)
    _history(theirs, kw=5.0)
    for asset in (f"miner:{mine.pk}", f"zone:{mine.zone_id}", f"site:{mine.site_id}"):
        r = post(api, farm.users["client_x"], asset, {"forecast_horizon": 6})
        assert r.status_code == 200, r.json()
        body = r.json()
        assert body["source"] == "history_5m" and body["method"] == "seasonal_level"
        assert [p["power_kw"] for p in body["points"]] == [3.0] * 6, asset
    r = post(api, farm.users["owner"], f"zone:{mine.zone_id}", {"forecast_horizon": 2})
    assert [p["power_kw"] for p in r.json()["points"]] == [8.0, 8.0]  # both clients' miners


def test_the_daily_layer_fills_hours_the_five_minute_layer_lacks(api, farm):
    miner = farm.miners[("site-b", "own")]
    today = timezone.now().date()
    Daily.objects.bulk_create([
        Daily(miner=miner, day=today - timedelta(days=d), site_id=miner.site_id, sample_count=1,
              buckets_reported=288, energy_kwh=48.0, uptime_pct=100.0)
        for d in range(1, 6)
    ])  # fmt: skip
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", {"forecast_horizon": 4})
    body = r.json()
    assert r.status_code == 200, body
    assert body["source"] == "daily" and [p["power_kw"] for p in body["points"]] == [2.0] * 4


def test_an_asset_without_history_is_a_400_saying_so(api, farm):
    miner = farm.miners[("site-b", "own")]
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", {"forecast_horizon": 4})
    assert r.status_code == 400 and r.json()["error_code"] == "not_enough_history"


def test_the_second_call_in_the_hour_is_preloaded(api, farm):
    miner = farm.miners[("site-a", "own")]
    end = _history(miner, hours=60)
    RollupCursor.objects.create(layer="history_5m", done_until=end + timedelta(minutes=7))
    assert post(api, farm.users["owner"], f"zone:{miner.zone_id}", {"forecast_horizon": 24}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        r = post(api, farm.users["owner"], f"zone:{miner.zone_id}", {"forecast_horizon": 48})
    assert r.status_code == 200 and r.json()["served_from"] == "lru" and len(r.json()["points"]) == 48
    assert not any("history_5m" in q["sql"] and "cursor" not in q["sql"] for q in queries.captured_queries)
    asset_forecast.lru_clear()  # another process: the shared cache has it
    assert post(api, farm.users["owner"], f"zone:{miner.zone_id}", {"forecast_horizon": 1}).json()["served_from"] in (
        "hit",
        "bypass",
    )


def test_warm_up_fills_every_site_and_zone(farm):
    result = asset_forecast.asset_forecast_warm()
    assert result["warmed"] == 4 and result["failed"] == 0


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "invalid_horizon", "forecast_horizon"),
        ({"forecast_horizon": 0}, "invalid_horizon", "forecast_horizon"),
        ({"forecast_horizon": 169}, "invalid_horizon", "forecast_horizon"),
        ({"forecast_horizon": "24"}, "invalid_horizon", "forecast_horizon"),
        ({"forecast_horizon": 24, "historical_data": "x"}, "invalid_historical_data", "historical_data"),
        ({"forecast_horizon": 24, "historical_data": hourly(2)}, "too_few_points", "historical_data"),
        ({"forecast_horizon": 24, "historical_data": [*hourly(3), {"ts": "2026-12-01T00:00:00Z", "power_kw": "nan"}]},
         "invalid_value", "historical_data.power_kw"),
        ({"forecast_horizon": 24, "historical_data": [*hourly(3), {"ts": "2026-12-01T00:00:00Z", "power_kw": -1}]},
         "negative_value", "historical_data.power_kw"),
        ({"forecast_horizon": 24, "historical_data": [*hourly(3), {"ts": "soon", "power_kw": 1}]},
         "invalid_ts", "historical_data.ts"),
        ({"forecast_horizon": 24, "historical_data": [*hourly(3), hourly(1)[0]]}, "duplicate_ts",
         "historical_data.ts"),
        ({"forecast_horizon": 24, "historical_data": hourly(5), "interval_minutes": 5}, "interval_mismatch",
         "interval_minutes"),
        ({"forecast_horizon": 24, "interval_minutes": 0}, "invalid_interval", "interval_minutes"),
        ([1], "invalid_body", "body"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_with_a_code(api, farm, body, code, field):
    miner = farm.miners[("site-a", "own")]
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", body)
    assert r.status_code == 400, r.json()
    assert r.json()["error_code"] == code and r.json()["details"]["field"] == field


def test_nan_in_the_json_body_is_refused(api, farm):
    miner = farm.miners[("site-a", "own")]
    api.force_authenticate(farm.users["owner"])
    raw = '{"forecast_horizon": 4, "historical_data": [{"ts": "2026-11-20T00:00:00Z", "power_kw": NaN}]}'
    r = api.post(url(f"miner:{miner.pk}"), raw, content_type="application/json")
    assert r.status_code == 400


def test_too_many_points_are_refused(api, farm):
    miner = farm.miners[("site-a", "own")]
    data = [{"ts": "x", "power_kw": 1}] * (asset_forecast.MAX_POINTS + 1)
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", {"forecast_horizon": 4, "historical_data": data})
    assert r.status_code == 400 and r.json()["error_code"] == "too_many_points"


def test_hidden_assets_are_404_whatever_the_body(api, farm):
    cases = [
        ("client_x", f"miner:{farm.miners[('site-a', 'client-y')].pk}"),
        ("client_x", f"miner:{farm.miners[('site-a', 'own')].pk}"),
        ("siteowner_a", f"site:{farm.site_b.pk}"),
        ("siteowner_a", f"zone:{farm.zone_b.pk}"),
        ("owner", "miner:999999"),
    ]
    for user, asset in cases:
        for body in ({"forecast_horizon": 4, "historical_data": hourly()}, {"forecast_horizon": "bad"}):
            r = post(api, farm.users[user], asset, body)
            assert r.status_code == 404, (user, asset, r.json())


def test_roles_and_malformed_ids(api, farm):
    miner = farm.miners[("site-a", "client-x")]
    body = {"forecast_horizon": 4, "historical_data": hourly()}
    assert post(api, farm.users["guest"], f"miner:{miner.pk}", body).status_code == 403
    assert post(api, farm.users["client_x"], f"miner:{miner.pk}", body).status_code == 200
    assert post(api, farm.users["owner"], "rack:1", body).json()["error_code"] == "invalid_asset_id"
    api.force_authenticate(None)
    assert api.post(url(f"miner:{miner.pk}"), body, format="json").status_code in (401, 403)


def test_posted_data_over_a_week_of_five_minute_points_is_fast_enough_to_measure(api, farm):
    # no timed assertion (a shared box); the bench measures; this checks a full-size request works
    miner = farm.miners[("site-a", "own")]
    rng = np.random.default_rng(0)
    data = [{"ts": (T0 + timedelta(minutes=5 * k)).isoformat(), "power_kw": float(3 + rng.random())}
            for k in range(12 * 24 * 14)]  # fmt: skip
    r = post(api, farm.users["owner"], f"miner:{miner.pk}", {"forecast_horizon": 168, "historical_data": data})
    assert r.status_code == 200 and len(r.json()["points"]) == 168
    assert "Server-Timing" in r


def test_a_whole_site_reads_the_site_rollup(api, farm):
    from telemetry.models import SiteHistory5m

    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    SiteHistory5m.objects.bulk_create([
        SiteHistory5m(site=farm.site_a, bucket=end - k * timedelta(minutes=5), miners_reporting=3, miners_hashing=3,
                      hashrate_ths=600.0, power_w=9000.0, uptime_fraction=1.0)
        for k in range(1, 12 * 50 + 1)
    ])  # fmt: skip
    r = post(api, farm.users["siteowner_a"], f"site:{farm.site_a.pk}", {"forecast_horizon": 2})
    assert r.status_code == 200, r.json()
    assert [p["power_kw"] for p in r.json()["points"]] == [9.0, 9.0]
