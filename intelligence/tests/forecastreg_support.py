"""Shared set-up of the forecastreg tests: a tiny market history in MarketDay, and the forecast part's handlers
registered for the test only (``forecast_handlers`` fixture) until they are wired at app start (see
notes/forecastreg-shared.md): imported at collection they would run in every other test of the session too."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest

from intelligence import forecast_tasks  # noqa: F401  (registers the Celery tasks: names only, no side effects)
from intelligence.models import ForecastModel, MarketDay

START = date(2025, 6, 1)


def market_days(n: int = 160, *, start: date = START) -> date:
    """``n`` days of a smooth, positive market (price random-walk-like, difficulty stepping every 14 days);
    returns the last day."""
    rows = []
    for i in range(n):
        day = start + timedelta(days=i)
        price = 100_000 * (1 + 0.05 * math.sin(i / 9)) * (1 + 0.0005 * i)
        difficulty = 1.2e14 * (1 + 0.02 * (i // 14))
        rows.append(MarketDay(
            date=day, btc_price_usd=Decimal(f"{price:.2f}"), difficulty=Decimal(f"{difficulty:.0f}"),
            hashrate_ths=Decimal(f"{difficulty * 2**32 / 600 / 1e12:.2f}"),
        ))  # fmt: skip
    MarketDay.objects.bulk_create(rows)
    return rows[-1].date


def registry_model(*, target="hashprice", algorithm="xgboost", status=ForecastModel.Status.CANDIDATE, version=None,
                   data_until=None, mape=3.0, naive_mape=5.0, error="", subject="") -> ForecastModel:  # fmt: skip
    """A registry row with a hand-written backtest (no training): ``mape`` against ``naive_mape`` at 7 days."""
    if version is None:
        version = ForecastModel.objects.filter(target=target, subject=subject).count() + 1
    horizons = {
        str(h): {"n": 4, "rmse": 1.0, "mae": 1.0, "mape": mape, "coverage80": 80.0, "coverage95": 95.0,
                 "naive": {"n": 4, "rmse": 1.2, "mae": 1.2, "mape": naive_mape, "coverage80": 75.0, "coverage95": 90.0}}
        for h in (7, 14, 30)
    }  # fmt: skip
    return ForecastModel.objects.create(
        target=target, subject=subject, algorithm=algorithm, version=version, status=status,
        data_until=data_until, backtest={"horizons": horizons, "origins": 4, "reference_horizon": 7}, error=error,
        params={"n_estimators": 20} if algorithm == "xgboost" else {},
    )  # fmt: skip


@pytest.fixture
def forecast_handlers():
    """The forecast part's event handlers, registered for this test and removed after it (unless the app already
    registered them at start, in which case nothing changes)."""
    from hashinsight.events import registry

    snapshot = {event_type: list(handlers) for event_type, handlers in registry._HANDLERS.items()}
    from intelligence import forecast_handlers as module

    for event_type, fn in (
        ("portfolio.changed", module.refresh_changed_portfolios),
        ("miner_model.changed", module.refresh_model_users),
        ("forecast.refreshed", module.network_model_changed),
    ):
        registry.handles(event_type, batch=True)(fn)  # idempotent by name
    yield module
    registry._HANDLERS.clear()
    registry._HANDLERS.update(snapshot)
