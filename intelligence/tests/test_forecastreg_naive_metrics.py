"""Issue 9 (items 6 and 7), as an audit found it: a forecast served by naive carries naive's own walk-forward metrics
(from the latest backtest, which runs naive next to each model, or a naive backtest registered on first use), the
forecasts page shows a backtest from the first run, and ``seed_demo`` registers the BTC price models' backtests."""

from __future__ import annotations

import math
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from hashinsight.core import cache as cache_helper
from intelligence.models import ForecastModel
from intelligence.tests.forecastreg_support import market_days, registry_model

pytestmark = pytest.mark.django_db
Status = ForecastModel.Status


@pytest.fixture
def market():
    return market_days()


def forecast_of(api, user) -> dict:
    api.force_authenticate(user)
    r = api.get(f"/api/forecast/{user.pk}")
    assert r.status_code == 200, r.content
    return r.json()


def test_with_no_model_naive_serves_with_its_own_backtest_registered_once(api, farm, market):
    customer = farm.users["customer"]
    body = forecast_of(api, customer)
    for key, target in (("price", "btc_price"), ("difficulty", "difficulty"), ("hashprice", "hashprice")):
        part = body[key]
        assert part["algorithm"] == "naive" and part["fallback_reason"] == "fallback to naive: no active model"
        metrics = part["metrics"]
        assert metrics is not None, key
        naive_model = ForecastModel.objects.get(target=target, subject="", algorithm="naive")
        assert naive_model.status == Status.CANDIDATE and naive_model.data_until == market
        assert metrics["algorithm"] == "naive" and metrics["model_id"] == naive_model.pk
        assert metrics["origins"] == naive_model.backtest["origins"] > 0
        assert set(metrics["horizons"]) == {"7", "14", "30"}
        seven = metrics["horizons"]["7"]
        assert math.isfinite(seven["mape"]) and seven["n"] > 0 and seven["naive"]["mape"] == seven["mape"]
    # revenue is served from the hashprice forecast: naive's figures on hashprice
    assert body["revenue"]["metrics"]["model_id"] == body["hashprice"]["metrics"]["model_id"]
    # stored once: a rebuild reads the registry row, it does not backtest again
    cache_helper.invalidate("forecast", id=customer.pk)
    again = forecast_of(api, customer)
    assert again["price"]["metrics"] == body["price"]["metrics"]
    assert ForecastModel.objects.filter(algorithm="naive").count() == 3


def test_naive_serving_takes_its_metrics_from_the_backtest_it_won(api, farm, market):
    """A model that lost to naive (active or only a candidate): its backtest ran naive next to it."""
    active = registry_model(status=Status.ACTIVE, data_until=market, mape=9.0, naive_mape=5.0)
    candidate = registry_model(target="btc_price", algorithm="prophet", data_until=market, mape=6.0, naive_mape=4.0)
    ForecastModel.objects.filter(pk=candidate.pk).update(trained_at=candidate.created_at)
    body = forecast_of(api, farm.users["customer"])
    hashprice = body["hashprice"]["metrics"]
    assert body["hashprice"]["algorithm"] == "naive" and "does not beat naive" in body["hashprice"]["fallback_reason"]
    assert hashprice["algorithm"] == "naive" and hashprice["model_id"] == active.pk
    assert hashprice["horizons"]["7"]["mape"] == 5.0 and hashprice["horizons"]["7"]["naive"]["mape"] == 5.0
    price = body["price"]["metrics"]
    assert price["algorithm"] == "naive" and price["model_id"] == candidate.pk
    assert price["horizons"]["30"]["mape"] == 4.0 and price["horizons"]["30"]["rmse"] == 1.2
    assert not ForecastModel.objects.filter(target__in=["btc_price", "hashprice"], algorithm="naive").exists()


def test_the_page_shows_naives_backtest_when_no_model_was_ever_trained(farm, market):
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(farm.users["customer"])
    html = c.get("/forecasts/?target=btc_price").content.decode()
    assert 'data-testid="backtest-table"' in html and 'data-testid="no-backtest"' not in html
    assert html.count('data-testid="backtest-row"') == 3
    body = html.split('data-testid="backtest-table"', 1)[1].split("</table>", 1)[0]
    assert body.count("<td>Naive</td>") == 3  # one row per horizon: nothing to put next to naive itself


def test_seed_demo_registers_the_btc_price_backtests_once(api, settings, tmp_path):
    from hashinsight.accounts.models import User

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "0", stdout=StringIO())
    price_models = ForecastModel.objects.filter(target="btc_price").exclude(backtest={})
    assert set(price_models.values_list("algorithm", flat=True)) == {"prophet", "xgboost"}
    assert all(m.backtest["horizons"]["7"]["naive"]["n"] > 0 for m in price_models)
    customer = User.objects.get(username="customer")
    price = forecast_of(api, customer)["price"]
    assert price["algorithm"] == "naive" and price["metrics"]["algorithm"] == "naive"
    assert price["metrics"]["model_id"] in {m.pk for m in price_models}
    assert not ForecastModel.objects.filter(algorithm="naive").exists()  # the demo's backtests serve
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(customer)
    html = c.get("/forecasts/?target=btc_price").content.decode()
    assert html.count('data-testid="backtest-row"') == 3 and 'data-testid="no-backtest"' not in html
    out = StringIO()
    call_command("seed_demo", "--miners", "0", stdout=out)  # a re-seed trains nothing more
    assert "btc_price: prophet, xgboost already trained (naive serves)" in out.getvalue()
    assert ForecastModel.objects.filter(target="btc_price").count() == 2
