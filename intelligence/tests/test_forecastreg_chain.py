"""The seed's end-to-end chain (issue 9 item 8): a user adds a miner → outbox event → worker recalculates →
cache refreshed → GET /api/forecast/<user_id> returns the new fleet's revenue. Celery runs eagerly in tests and
on-commit callbacks are executed, as in the other spine tests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hashinsight.events.models import JobRun, OutboxEvent
from hashinsight.tests.factories import MinerModelFactory, UserFactory
from intelligence import forecasting
from intelligence.tests.forecastreg_support import forecast_handlers, market_days  # noqa: F401 - a fixture
from miners import services

pytestmark = pytest.mark.django_db


def test_adding_a_miner_refreshes_the_users_forecast(api, django_capture_on_commit_callbacks, forecast_handlers):  # noqa: F811
    market_days()
    user = UserFactory(role="CUSTOMER")
    api.force_authenticate(user)
    s21 = MinerModelFactory()  # 200 TH/s, 3,500 W
    before = api.get(f"/api/forecast/{user.pk}").json()  # cached now: an empty fleet
    assert before["revenue"]["fleet"]["hashrate_ths"] == "0.00"
    assert before["revenue"]["points"][0]["yhat"] == 0.0

    with django_capture_on_commit_callbacks(execute=True):
        services.portfolio_entry_create(user=user, model=s21, quantity=5, power_price_usd_per_kwh=Decimal("0.06"))

    event = OutboxEvent.objects.get(event_type="portfolio.changed")
    assert event.status == OutboxEvent.Status.DONE and event.payload == {"user_id": user.pk}
    run = JobRun.objects.get(job_type="intelligence.forecast_refresh")
    assert run.status == "success" and run.result["fleet_hashrate_ths"] == "1000.00"
    refreshed = OutboxEvent.objects.filter(event_type="forecast.refreshed", aggregate=f"user:{user.pk}")
    assert refreshed.exists()

    r = api.get(f"/api/forecast/{user.pk}")
    assert r["X-Cache"] == "hit"  # the worker's entry, not a rebuild on read
    after = r.json()
    assert after["generated_at"] > before["generated_at"]
    assert after["revenue"]["fleet"]["hashrate_ths"] == "1000.00"
    hp = after["hashprice"]["points"][0]["yhat"]
    cost = 5 * 3.5 * 24 * 0.06  # kW × h × USD/kWh
    expected = hp * 1000 * float(forecasting._fee_uplift()) * 0.98 - cost
    assert after["revenue"]["points"][0]["yhat"] == pytest.approx(expected, abs=0.01)
    assert after["revenue"]["fleet"]["power_cost_usd_per_day"] == f"{cost:.2f}"


def test_activating_a_network_model_makes_cached_forecasts_stale(
    api,
    django_capture_on_commit_callbacks,
    forecast_handlers,  # noqa: F811
):
    from hashinsight.tests.factories import PortfolioEntryFactory
    from intelligence.tests.forecastreg_support import registry_model

    last = market_days()
    user = UserFactory(role="CUSTOMER")
    PortfolioEntryFactory(user=user)
    api.force_authenticate(user)
    assert api.get(f"/api/forecast/{user.pk}")["X-Cache"] == "miss"
    assert api.get(f"/api/forecast/{user.pk}")["X-Cache"] == "hit"
    model = registry_model(target="btc_price", algorithm="naive", data_until=last)
    with django_capture_on_commit_callbacks(execute=True):
        forecasting.model_activate(model_id=model.pk)
    assert OutboxEvent.objects.get(aggregate="forecast_model:btc_price").status == OutboxEvent.Status.DONE
    r = api.get(f"/api/forecast/{user.pk}")
    assert r["X-Cache"] == "stale"  # served while it rebuilds (eagerly here)
    assert api.get(f"/api/forecast/{user.pk}").json()["price"]["model"]["id"] == model.pk


def test_scheduled_training_activates_only_a_model_that_beats_naive(db):
    from intelligence import forecast_tasks
    from intelligence.models import ForecastModel
    from intelligence.tests.forecastreg_support import registry_model

    winner = registry_model(target="difficulty", algorithm="difficulty_epoch", mape=1.0, naive_mape=4.0)
    loser = registry_model(target="difficulty", algorithm="xgboost", mape=5.0, naive_mape=4.0)
    price = registry_model(target="btc_price", algorithm="prophet", mape=7.0, naive_mape=6.0)
    assert forecast_tasks.activate_winners([winner, loser, price]) == [winner.pk]
    assert list(ForecastModel.objects.filter(status="active").values_list("pk", flat=True)) == [winner.pk]


def test_the_hourly_refresh_rebuilds_portfolios_and_prunes_old_forecasts(db):
    from datetime import timedelta

    from django.utils import timezone

    from hashinsight.core import cache as cache_helper
    from hashinsight.tests.factories import PortfolioEntryFactory
    from intelligence import forecast_tasks
    from intelligence.models import Forecast

    market_days()
    user = PortfolioEntryFactory().user
    old = Forecast.objects.create(target="btc_price", algorithm="naive", origin="2025-01-01", horizon_days=7)
    Forecast.objects.filter(pk=old.pk).update(generated_at=timezone.now() - timedelta(days=31))
    result = forecast_tasks.forecast_refresh_all.apply().get()
    assert result == {"users": 1, "forecasts_pruned": 1}
    assert cache_helper.get("forecast", id=user.pk).state == "hit"
    assert JobRun.objects.get(job_type="intelligence.forecast_refresh_all").status == "success"
