"""Walk-forward backtest and the active-model rule: no look-ahead, refit schedule, metrics by hand, fallback."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from intelligence.algorithms.backtest import (
    Candidate,
    candidates_from,
    choose_active,
    error_metrics,
    walk_forward,
)
from intelligence.algorithms.forecast import Forecaster, NaiveForecaster, XGBoostForecaster, _forecast


def days(n, start="2024-01-01"):
    return pd.date_range(start, periods=n, freq="D")


class Spy(Forecaster):
    """Records the last day it was shown at every fit/update; forecasts the largest value it has seen."""

    name = "spy"
    min_history = 3
    log: list = []

    def fit(self, y, exog=None):
        self._set_data(y, exog)
        Spy.log.append(("fit", self.y.index[-1], None if exog is None else exog.index[-1]))
        return self

    def update(self, y, exog=None):
        self._set_data(y, exog)
        Spy.log.append(("update", self.y.index[-1], None if exog is None else exog.index[-1]))
        return self

    def predict(self, horizon):
        top = float(self.y.max())
        c = np.full(horizon, top)
        return _forecast(self.name, self.origin, c, np.vstack([c, c, c, c]))


class Doubler(Forecaster):
    """A broken model: forecasts twice the last value."""

    name = "doubler"
    min_history = 3

    def fit(self, y, exog=None):
        self._set_data(y, exog)
        return self

    def predict(self, horizon):
        c = np.full(horizon, 2 * float(self.y.iloc[-1]))
        return _forecast(self.name, self.origin, c, np.vstack([c * 0.9, c * 0.95, c * 1.05, c * 1.1]))


class Crasher(Doubler):
    name = "crasher"

    def predict(self, horizon):
        raise RuntimeError("boom")


def spiky_series():
    """Flat at 100 with a spike of 1000 on day 100."""
    y = pd.Series(100.0, index=days(140))
    y.iloc[100] = 1000.0
    return y


def test_metrics_by_hand():
    actual = [100, 200, 300, 400]
    pred = [110, 190, 330, 400]
    m = error_metrics(
        actual, pred, [105, 150, 320, 390], [120, 210, 340, 399], [90, 150, 250, 350], [120, 250, 350, 450]
    )
    # errors 10, −10, 30, 0
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(12.5)
    assert m["rmse"] == pytest.approx(np.sqrt((100 + 100 + 900 + 0) / 4))
    assert m["mape"] == pytest.approx((10 + 5 + 10 + 0) / 4)
    assert m["rmse_pct"] == pytest.approx(np.sqrt((0.01 + 0.0025 + 0.01 + 0) / 4) * 100)
    # 80 %: 100 ∉ [105,120], 200 ∈ [150,210], 300 ∉ [320,340], 400 ∉ [390,399] → 1 of 4
    assert m["coverage80"] == pytest.approx(25.0)
    # 95 %: 100 ∈, 200 ∈, 300 ∈ [250,350], 400 ∈ → 4 of 4; bounds are inclusive
    assert m["coverage95"] == pytest.approx(100.0)
    assert error_metrics([np.nan, 1.0], [1.0, 1.0])["n"] == 1


def test_no_look_ahead_the_model_never_sees_past_its_origin():
    Spy.log = []
    y = spiky_series()
    exog = pd.DataFrame({"other": np.arange(140.0)}, index=y.index)
    origins = list(pd.date_range("2024-03-01", periods=8, freq="7D"))  # day 60 … day 109
    result = walk_forward(y, {"spy": Spy}, horizons=(7,), origins=origins, refit_every=3, exog=exog)
    seen = [(kind, last) for kind, last, _ in Spy.log]
    assert [last for _, last in seen] == origins
    assert all(last_exog == last for _, last, last_exog in Spy.log)
    # refit at origins 0, 3, 6; updated in between
    assert [kind for kind, _ in seen] == ["fit", "update", "update", "fit", "update", "update", "fit", "update"]
    preds = result.predictions.set_index("origin")["mean"]
    spike_day = y.index[100]
    for origin, value in preds.items():
        assert value == (1000.0 if origin >= spike_day else 100.0), origin  # the spike only once it happened


def test_no_look_ahead_with_a_real_model_equals_fitting_on_the_cut_series():
    rng = np.random.default_rng(0)
    y = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 260))), index=days(260))
    y.iloc[240:] *= 5  # a jump after the origin
    origin = y.index[230]

    def model():
        return XGBoostForecaster(max_horizon=7, window=150, n_estimators=20, rolls=(7,), lags=(1, 7))

    result = walk_forward(y, {"xgb": model}, horizons=(7,), origins=[origin])
    alone = model().fit(y.loc[:origin]).predict(7)
    assert result.predictions["mean"].iloc[0] == pytest.approx(alone.mean[6])
    assert alone.mean[6] < 2 * y.loc[origin]  # the jump to ×5 ten days later is invisible


def test_naive_beats_a_broken_model_and_the_rule_falls_back():
    rng = np.random.default_rng(4)
    y = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200))), index=days(200))
    models = {"naive": NaiveForecaster, "doubler": Doubler, "crasher": Crasher}
    result = walk_forward(y, models, horizons=(1, 7), start="2024-05-01", step_days=10)
    naive, doubler = result.metric("naive", 7), result.metric("doubler", 7)
    assert doubler.mape == pytest.approx(100, rel=0.05) and naive.mape < 10
    crasher = result.metric("crasher", 7)
    assert crasher.n == 0 and crasher.failures == len(result.origins)
    assert "boom" in result.errors["crasher"][0]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    choice = choose_active(candidates_from(result, horizon=7, trained_at=now), now=now, max_age=timedelta(days=8))
    assert choice.name == "naive"
    assert "does not beat naive" in choice.rejected["doubler"]
    assert "failed" in choice.rejected["crasher"]


def test_choose_active_rules():
    now = datetime(2026, 1, 10, tzinfo=UTC)
    fresh, old = now - timedelta(days=1), now - timedelta(days=20)
    week = timedelta(days=7)
    naive = Candidate("naive", 6.0, None)
    # the best model that beats naive wins
    c = choose_active([naive, Candidate("xgb", 5.0, fresh), Candidate("prophet", 4.0, fresh)], now=now, max_age=week)
    assert c.name == "prophet" and "behind prophet" in c.rejected["xgb"]
    # stale, failed, equal to naive, no score: all fall back to naive
    c = choose_active(
        [
            naive,
            Candidate("xgb", 1.0, old),
            Candidate("prophet", 1.0, fresh, failed=True),
            Candidate("epoch", 6.0, fresh),
            Candidate("other", None, fresh),
        ],
        now=now,
        max_age=week,
    )
    assert c.name == "naive"
    assert c.rejected["xgb"].startswith("stale")
    assert "failed" in c.rejected["prophet"]
    assert "does not beat" in c.rejected["epoch"]
    assert c.rejected["other"] == "no backtest score"
    # without a naive score nothing can be shown to beat it
    c = choose_active([Candidate("naive", None, None), Candidate("xgb", 1.0, fresh)], now=now, max_age=week)
    assert c.name == "naive"


def test_intervals_of_naive_cover_a_random_walk_about_as_stated():
    rng = np.random.default_rng(7)
    y = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 1200))), index=days(1200))
    result = walk_forward(y, {"naive": NaiveForecaster}, horizons=(1,), start="2025-01-01", step_days=1)
    m = result.metric("naive", 1)
    assert m.n > 200
    assert 70 <= m.coverage80 <= 90 and 90 <= m.coverage95 <= 99
