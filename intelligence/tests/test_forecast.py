"""Forecasters on small hand-made series: shapes, intervals, the epoch rule, bad input."""

import numpy as np
import pandas as pd
import pytest

from intelligence.algorithms.forecast import (
    DifficultyEpochForecaster,
    ForecastError,
    HashpriceCompositeForecaster,
    NaiveForecaster,
    ProphetForecaster,
    XGBoostForecaster,
    blocks_per_day,
    current_epoch,
    prepare_series,
    subsidy_btc,
)


def days(n, start="2024-01-01"):
    return pd.date_range(start, periods=n, freq="D")


def random_walk(n, seed=0, level=100.0, sigma=0.02):
    rng = np.random.default_rng(seed)
    return pd.Series(level * np.exp(np.cumsum(rng.normal(0, sigma, n))), index=days(n))


def assert_ordered(fc):
    assert (fc.lower95 <= fc.lower80).all() and (fc.lower80 <= fc.mean).all()
    assert (fc.mean <= fc.upper80).all() and (fc.upper80 <= fc.upper95).all()


def width(fc, i):
    return np.log(fc.upper80[i]) - np.log(fc.lower80[i])


# --- input ---------------------------------------------------------------------------------------------------------


def test_prepare_series_fills_short_gaps_and_refuses_long_ones():
    s = pd.Series([1.0, 2.0, np.nan, 4.0], index=days(4))
    assert prepare_series(s).tolist() == [1.0, 2.0, 3.0, 4.0]
    gappy = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-01", "2024-01-20"]))
    with pytest.raises(ForecastError, match="gap of 18 days"):
        prepare_series(gappy)
    with pytest.raises(ForecastError, match="DatetimeIndex"):
        prepare_series(pd.Series([1.0, 2.0, 3.0]))
    with pytest.raises(ForecastError, match="infinite"):
        prepare_series(pd.Series([1.0, np.inf], index=days(2)))
    # aware timestamps count on the UTC day: 07:00 in Shanghai is 23:00 UTC the day before
    aware = pd.DatetimeIndex(["2024-01-02 07:00", "2024-01-03 07:00"]).tz_localize("Asia/Shanghai")
    assert prepare_series(pd.Series([1.0, 2.0], index=aware)).index[0] == pd.Timestamp("2024-01-01")


def test_bad_horizon_and_too_short_history_are_refused():
    with pytest.raises(ForecastError, match="at least"):
        NaiveForecaster().fit(pd.Series([1.0], index=days(1)))
    model = NaiveForecaster().fit(random_walk(50))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ForecastError, match="horizon"):
            model.predict(bad)


# --- naive ---------------------------------------------------------------------------------------------------------


def test_naive_forecasts_the_last_value_with_intervals_widening_with_horizon():
    y = random_walk(400)
    fc = NaiveForecaster().fit(y).predict(30)
    assert np.allclose(fc.mean, y.iloc[-1])
    assert fc.index[0] == y.index[-1] + pd.Timedelta(days=1) and len(fc.index) == 30
    assert_ordered(fc)
    assert width(fc, 29) > 3 * width(fc, 0)  # a random walk's spread grows like √h: √30 ≈ 5.5
    assert np.all(np.diff(fc.upper95 - fc.mean) >= -1e-9)


def test_seasonal_naive_repeats_last_week_and_drift_follows_the_trend():
    pattern = np.array([10.0, 12, 14, 16, 18, 20, 22])
    y = pd.Series(np.tile(pattern, 10), index=days(70))
    fc = NaiveForecaster("seasonal", period=7).fit(y).predict(9)
    assert fc.mean.tolist() == pytest.approx([*pattern, 10, 12])
    trend = pd.Series(100 * 1.01 ** np.arange(100), index=days(100))
    fc = NaiveForecaster("drift").fit(trend).predict(5)
    assert fc.mean[-1] == pytest.approx(trend.iloc[-1] * 1.01**5)


# --- XGBoost and Prophet -------------------------------------------------------------------------------------------


def test_xgboost_direct_multi_horizon_learns_a_trend_and_widens():
    rng = np.random.default_rng(1)
    n = 300
    y = pd.Series(100 * np.exp(0.01 * np.arange(n) + rng.normal(0, 0.005, n)), index=days(n))
    model = XGBoostForecaster(max_horizon=10, window=250, n_estimators=60, rolls=(7, 30), lags=(1, 3, 7))
    fc = model.fit(y).predict(10)
    assert_ordered(fc)
    # the trend is +1 %/day: after 10 days about +10 %; naive would say +0 %
    assert fc.mean[-1] / y.iloc[-1] == pytest.approx(1.105, abs=0.03)
    assert width(fc, 9) >= width(fc, 0)
    with pytest.raises(ForecastError, match="trained up to 10"):
        model.predict(11)


def test_xgboost_update_uses_new_data_without_refitting():
    y = random_walk(300, seed=3)
    model = XGBoostForecaster(max_horizon=5, window=200, n_estimators=30, rolls=(7,), lags=(1, 7)).fit(y.iloc[:-20])
    booster = model._booster
    fc = model.update(y).predict(5)
    assert model._booster is booster  # same parameters
    assert fc.origin == y.index[-1]
    assert fc.mean[0] == pytest.approx(y.iloc[-1], rel=0.1)


def test_prophet_fits_offline_and_is_anchored_at_the_last_observation():
    y = random_walk(150, seed=2)
    model = ProphetForecaster(window=150, samples=100, iterations=200)
    fc = model.fit(y).predict(14)
    assert len(fc.mean) == 14
    assert_ordered(fc)
    assert fc.mean[0] == pytest.approx(y.iloc[-1], rel=0.05)
    assert width(fc, 13) > width(fc, 0)
    # update moves the origin without refitting; the forecast starts from the newest value
    newer = pd.concat([y, pd.Series([y.iloc[-1] * 1.5], index=[y.index[-1] + pd.Timedelta(days=1)])])
    fc2 = model.update(newer).predict(3)
    assert fc2.origin == newer.index[-1]
    assert fc2.mean[0] == pytest.approx(newer.iloc[-1], rel=0.05)


# --- difficulty epochs ---------------------------------------------------------------------------------------------


def epoch_history(n=70, retarget_at=62, hashrate_factor=1.1):
    """Difficulty 1e14 until ``retarget_at``, then 1.2e14 (a clean change); network hashrate constant at
    ``hashrate_factor`` × what 1.2e14 needs for 144 blocks a day."""
    d = np.where(np.arange(n) < retarget_at, 1.0e14, 1.2e14)
    hashrate = 1.2e14 * 2**32 / 600 / 1e12 * hashrate_factor  # TH/s that finds 144 blocks a day × factor
    frame = pd.DataFrame({"difficulty": d, "hashrate_ths": np.full(n, hashrate)}, index=days(n))
    return frame


def test_epoch_model_forecasts_the_next_retarget_as_a_step():
    frame = epoch_history()
    epoch = current_epoch(frame.difficulty.to_numpy(), frame.hashrate_ths.to_numpy())
    assert epoch.start_day == 62 and epoch.elapsed_days == 8
    assert epoch.blocks == pytest.approx(8 * 144 * 1.1)
    fc = DifficultyEpochForecaster(paths=200).fit(frame.difficulty, frame).predict(14)
    # 158.4 blocks a day: 2016 blocks after 12.73 days, i.e. 4.73 days after the last observed day;
    # the new difficulty is 1.2e14 × 14 / 12.73 = 1.32e14 (hashrate 10 % above what the old one needed)
    assert fc.mean[:4] == pytest.approx([1.2e14] * 4)
    blend = fc.mean[4]
    assert 1.2e14 < blend < 1.32e14  # the retarget day carries a blend
    assert fc.mean[5:12] == pytest.approx([1.32e14] * 7, rel=2e-3)
    assert_ordered(fc)
    assert fc.upper80[:4] - fc.lower80[:4] == pytest.approx(0, abs=1e6)  # before the retarget: known
    assert fc.upper80[6] > fc.lower80[6]


def test_epoch_model_needs_hashrate():
    frame = epoch_history()
    with pytest.raises(ForecastError, match="hashrate_ths"):
        DifficultyEpochForecaster().fit(frame.difficulty)


def test_blocks_per_day_and_subsidy_schedule():
    hashrate = 1e14 * 2**32 / 600 / 1e12  # TH/s finding one block per 600 s at difficulty 1e14
    assert blocks_per_day(hashrate, 1e14) == pytest.approx(144)
    s = subsidy_btc(pd.DatetimeIndex(["2016-07-08", "2016-07-10", "2020-05-12", "2024-04-19", "2024-04-21"]))
    assert s.tolist() == [25, 12.5, 6.25, 6.25, 3.125]


def test_composite_hashprice_follows_the_difficulty_step_at_constant_price():
    frame = epoch_history()
    frame["price_usd"] = 50_000.0
    hp = pd.Series(50_000 * 3.125 * blocks_per_day(1.0, frame.difficulty), index=frame.index)
    fc = HashpriceCompositeForecaster().fit(hp, frame).predict(12)
    assert fc.mean[0] == pytest.approx(hp.iloc[-1])
    assert fc.mean[8] == pytest.approx(hp.iloc[-1] / 1.1, rel=3e-3)  # difficulty +10 % → hashprice −9.1 %
