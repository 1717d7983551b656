"""The forecast registry and service: naive fallback in each case, activate / roll back, training."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import UserFactory
from intelligence import forecasting
from intelligence.models import Forecast, ForecastModel
from intelligence.tests.forecastreg_support import market_days, registry_model

pytestmark = pytest.mark.django_db
Status = ForecastModel.Status


@pytest.fixture
def last_day():
    return market_days()


def test_the_network_series_come_from_market_days(last_day):
    frame = forecasting.network_frame()
    assert frame.index[-1].date() == last_day
    assert len(frame) == 160
    # hashprice = price × subsidy × (1e12 H/s × 86,400 s) / (difficulty × 2^32) — by hand for the last day
    row = frame.iloc[-1]
    expected = row.price_usd * 3.125 * 1e12 * 86_400 / (row.difficulty * 2**32)
    assert row.hashprice == pytest.approx(expected, rel=1e-9)


def test_the_shipped_history_serves_when_market_days_are_empty(db):
    frame = forecasting.network_frame()
    assert frame.index[0].year == 2015 and len(frame) > 3000


# --- fallback to naive, each case ----------------------------------------------------------------------------------


def test_no_active_model_falls_back_to_naive(last_day):
    fc = forecasting.forecast_make(target="btc_price", horizon=7)
    assert (fc.algorithm, fc.model) == ("naive", None)
    assert fc.fallback_reason == "fallback to naive: no active model"
    assert fc.origin == last_day and len(fc.points) == 7
    p = fc.points[0]
    assert p["lo95"] <= p["lo80"] <= p["yhat"] <= p["hi80"] <= p["hi95"]


def test_an_active_model_that_beats_naive_serves(last_day):
    model = registry_model(target="difficulty", algorithm="difficulty_epoch", status=Status.ACTIVE, data_until=last_day,
                           mape=1.0, naive_mape=4.0)  # fmt: skip
    model.params = {"paths": 50}
    model.save()
    fc = forecasting.forecast_make(target="difficulty", horizon=14)
    assert (fc.algorithm, fc.model_id, fc.fallback_reason) == ("difficulty_epoch", model.pk, "")


def test_an_active_model_that_lost_to_naive_falls_back(last_day):
    registry_model(status=Status.ACTIVE, data_until=last_day, mape=6.0, naive_mape=5.0)
    fc = forecasting.forecast_make(target="hashprice", horizon=7)
    assert fc.algorithm == "naive"
    assert "does not beat naive" in fc.fallback_reason and "XGBoost v1" in fc.fallback_reason


def test_a_stale_active_model_falls_back(last_day):
    registry_model(status=Status.ACTIVE, data_until=last_day - timedelta(days=30))
    fc = forecasting.forecast_make(target="hashprice", horizon=7)
    assert fc.algorithm == "naive" and "stale" in fc.fallback_reason


def test_an_active_model_with_a_recorded_failure_falls_back(last_day):
    registry_model(status=Status.ACTIVE, data_until=last_day, error="ValueError: boom")
    fc = forecasting.forecast_make(target="hashprice", horizon=7)
    assert fc.algorithm == "naive" and "failed" in fc.fallback_reason


def test_an_active_model_that_raises_now_falls_back_and_records_it(last_day):
    # The epoch model needs network hashrate; without it in MarketDay it raises at fit.
    from intelligence.models import MarketDay

    MarketDay.objects.update(hashrate_ths=None)
    model = registry_model(target="difficulty", algorithm="difficulty_epoch", status=Status.ACTIVE,
                           data_until=last_day)  # fmt: skip
    fc = forecasting.forecast_make(target="difficulty", horizon=7)
    assert fc.algorithm == "naive" and fc.model_id == model.pk
    assert "Difficulty epochs v1 failed" in fc.fallback_reason
    model.refresh_from_db()
    assert model.error  # the next forecast falls back without trying it again
    assert "failed" in forecasting.choose_served("difficulty", latest_day=last_day).reason


def test_bad_input_is_refused():
    with pytest.raises(DomainError) as e:
        forecasting.forecast_make(target="revenue", horizon=7)
    assert e.value.code == "unknown_target"
    with pytest.raises(DomainError) as e:
        forecasting.forecast_make(target="btc_price", horizon=0)
    assert e.value.code == "invalid_horizon"
    with pytest.raises(DomainError) as e:
        forecasting.model_register(target="btc_price", algorithm="difficulty_epoch")
    assert e.value.code == "unknown_algorithm"


# --- activate / roll back ------------------------------------------------------------------------------------------


def test_activate_keeps_one_active_and_writes_audit_and_outbox(last_day):
    owner = UserFactory(role="OWNER")
    v1, v2 = registry_model(data_until=last_day), registry_model(data_until=last_day)
    forecasting.model_activate(model_id=v1.pk, actor=owner, reason="first")
    forecasting.model_activate(model_id=v2.pk, actor=owner)
    statuses = dict(ForecastModel.objects.values_list("pk", "status"))
    assert statuses == {v1.pk: Status.RETIRED, v2.pk: Status.ACTIVE}
    audits = list(AuditEvent.objects.filter(event_type="forecast_model.activated").order_by("seq"))
    assert [a.reference for a in audits] == [f"forecast_model:{v1.pk}", f"forecast_model:{v2.pk}"]
    assert audits[0].payload["reason"] == "first" and audits[1].payload["previous"] == v1.pk
    assert audits[1].actor_id == str(owner.pk)
    events = OutboxEvent.objects.filter(event_type="forecast.refreshed")
    assert [e.payload["subject"] for e in events] == ["network", "network"]
    # activating the active one again changes nothing
    forecasting.model_activate(model_id=v2.pk, actor=owner)
    assert AuditEvent.objects.filter(event_type="forecast_model.activated").count() == 2


def test_failed_or_training_models_cannot_be_activated(last_day):
    failed = registry_model(status=Status.FAILED)
    with pytest.raises(DomainError) as e:
        forecasting.model_activate(model_id=failed.pk)
    assert e.value.code == "model_not_ready"
    assert not ForecastModel.objects.filter(status=Status.ACTIVE).exists()


def test_rollback_restores_the_previous_active_then_naive(last_day):
    admin = UserFactory(role="ADMIN")
    v1, v2 = registry_model(data_until=last_day), registry_model(data_until=last_day)
    forecasting.model_activate(model_id=v1.pk, actor=admin)
    forecasting.model_activate(model_id=v2.pk, actor=admin)
    restored = forecasting.model_rollback(model_id=v2.pk, actor=admin, reason="worse in production")
    assert restored.pk == v1.pk
    assert list(ForecastModel.objects.filter(status=Status.ACTIVE).values_list("pk", flat=True)) == [v1.pk]
    # rolling back the last one leaves no active model: the rule (naive) mode
    assert forecasting.model_rollback(model_id=v1.pk, actor=admin) is None
    assert not ForecastModel.objects.filter(status=Status.ACTIVE).exists()
    assert forecasting.forecast_make(target="hashprice", horizon=7).fallback_reason.endswith("no active model")
    rollbacks = AuditEvent.objects.filter(event_type="forecast_model.rolled_back").order_by("seq")
    assert [a.payload["restored"] for a in rollbacks] == [v1.pk, None]
    with pytest.raises(DomainError) as e:  # only the active model rolls back
        forecasting.model_rollback(model_id=v2.pk, actor=admin)
    assert e.value.code == "model_not_active"


@pytest.mark.django_db(transaction=True)
def test_activation_is_durable_and_one_active_holds_in_the_database():
    """A TransactionTestCase-style run: the durable service commits on its own; the constraint is real."""
    from django.db import IntegrityError, transaction

    v1, v2 = registry_model(), registry_model()
    forecasting.model_activate(model_id=v1.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        ForecastModel.objects.filter(pk=v2.pk).update(status=Status.ACTIVE)
    with pytest.raises(RuntimeError), transaction.atomic():  # durable: refuses to run inside another transaction
        forecasting.model_activate(model_id=v2.pk)


# --- training ------------------------------------------------------------------------------------------------------


def test_training_backtests_next_to_naive_and_records_the_metrics(last_day):
    model = forecasting.model_register(target="difficulty", algorithm="difficulty_epoch", params={"paths": 50})
    assert (model.status, model.version) == (Status.TRAINING, 1)
    model = forecasting.model_train(model=model, origins=3, step_days=7)
    assert model.status == Status.CANDIDATE, model.error
    assert model.data_until == last_day
    assert set(model.backtest["horizons"]) == {"7", "14", "30"}
    row = model.backtest["horizons"]["7"]
    assert row["n"] == 3 and row["naive"]["n"] == 3
    assert row["mape"] >= 0 and 0 <= row["coverage80"] <= 100
    # the next version numbers on
    assert forecasting.model_register(target="difficulty", algorithm="naive").version == 2
    # a redelivered training job leaves a trained model alone
    assert forecasting.model_train(model=model).trained_at == model.trained_at


def test_a_training_that_cannot_forecast_is_recorded_failed(last_day):
    from intelligence.models import MarketDay

    MarketDay.objects.update(hashrate_ths=None)  # the epoch model cannot run without hashrate
    model = forecasting.model_register(target="difficulty", algorithm="difficulty_epoch", params={"paths": 50})
    model = forecasting.model_train(model=model, origins=2, step_days=7)
    assert model.status == Status.FAILED and "hashrate" in model.error


def test_revenue_maps_hashprice_intervals_through_the_fleet(last_day):
    from decimal import Decimal

    from hashinsight.tests.factories import MinerModelFactory, PortfolioEntryFactory

    user = UserFactory(role="CUSTOMER")
    PortfolioEntryFactory(user=user, model=MinerModelFactory(), quantity=10, power_price_usd_per_kwh=Decimal("0.05"))
    fleet = forecasting.user_fleet(user.pk)
    assert (fleet.hashrate_ths, fleet.power_kw) == (Decimal(2000), Decimal(35))
    assert fleet.power_cost_usd_per_day == Decimal("42.00")  # 35 kW × 24 h × 0.05
    hp = forecasting.forecast_make(target="hashprice", horizon=7)
    rev = forecasting.forecast_revenue_make(user_id=user.pk, hashprice=hp)
    uplift = float(forecasting._fee_uplift())
    for h, r in zip(hp.points, rev.points, strict=True):
        assert r["yhat"] == pytest.approx(h["yhat"] * 2000 * uplift * 0.98 - 42, abs=0.01)
        assert r["lo95"] <= r["lo80"] <= r["yhat"] <= r["hi80"] <= r["hi95"]
    assert rev.subject == f"user:{user.pk}" and rev.target == "revenue"
    assert Forecast.objects.filter(target="revenue").count() == 1
