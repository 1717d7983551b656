"""``intelligence.algorithms.asset_forecast`` on small series one can check by hand: hourly aggregation, the
seasonal-plus-level rule, the flat fallback and its reason, intervals, the upload CSV parser."""

from __future__ import annotations

import numpy as np
import pytest

from intelligence.algorithms import asset_forecast as af

H = 3600
T0 = 1_764_115_200  # 2025-11-26T00:00:00Z, a midnight


def daily_shape(days: int, *, base=100.0, amp=20.0, noise=0.0, seed=0) -> af.HourlySeries:
    t = np.arange(days * 24)
    kw = base + amp * (t % 24 >= 12) + noise * np.random.default_rng(seed).standard_normal(len(t))
    return af.HourlySeries(T0, kw)


def test_points_become_hourly_means_and_short_gaps_are_filled():
    secs = np.array([T0, T0 + 1800, T0 + H, T0 + 4 * H])  # hours 0 (two points), 1, 4
    s = af.to_hourly(secs, np.array([1.0, 3.0, 5.0, 11.0]))
    assert s.start == T0
    assert s.kw.tolist() == [2.0, 5.0, 7.0, 9.0, 11.0]  # hours 2 and 3 interpolated


def test_gaps_longer_than_six_hours_stay_missing():
    x = np.r_[1.0, [np.nan] * 7, 9.0]
    assert np.isnan(af.fill_gaps(x)[1:8]).all()


def test_a_clean_daily_shape_is_forecast_exactly():
    # 100 kW before noon, 120 kW after, for a week: tomorrow is the same, and the level term is zero
    fc = af.forecast_power(daily_shape(7), 24)
    assert fc.method == af.SEASONAL and fc.reason == ""
    assert fc.start == T0 + 7 * 24 * H
    np.testing.assert_allclose(fc.mean, [100.0] * 12 + [120.0] * 12)
    np.testing.assert_allclose(fc.lower95, fc.mean)  # the rule never erred on this history
    np.testing.assert_allclose(fc.upper95, fc.mean)


def test_the_level_fades_by_phi_per_hour():
    s = daily_shape(7)
    kw = s.kw.copy()
    kw[-6:] += 10.0  # the last six hours ran 10 kW above their profile
    fc = af.forecast_power(af.HourlySeries(s.start, kw), 3)
    prof = 120.0 + 10.0 / 7  # the profile of hours 18–23 now includes this day's extra 10 kW once in 7
    expected_level = 10.0 - 10.0 / 7
    np.testing.assert_allclose(fc.mean, [100.0 + expected_level * af.PHI**h for h in (1, 2, 3)], rtol=1e-9)
    assert prof > 120.0


def test_intervals_are_ordered_widen_and_cover_new_noise():
    fc = af.forecast_power(daily_shape(21, noise=5.0), 168)
    assert (fc.lower95 <= fc.lower80).all() and (fc.lower80 <= fc.mean).all()
    assert (fc.mean <= fc.upper80).all() and (fc.upper80 <= fc.upper95).all()
    width = fc.upper95 - fc.lower95
    assert (np.diff(width) >= -1e-9).all()
    future = daily_shape(28, noise=5.0, seed=1).kw[-168:]
    inside80 = np.mean((future >= fc.lower80) & (future <= fc.upper80))
    assert 0.65 <= inside80 <= 0.97


def test_less_than_two_days_falls_back_to_flat_with_the_reason():
    s = af.HourlySeries(T0, np.array([10.0, 12.0, 14.0, 12.0]))
    fc = af.forecast_power(s, 5)
    assert fc.method == af.FLAT
    assert "only 4 hours of history" in fc.reason and "48" in fc.reason
    np.testing.assert_allclose(fc.mean, [12.0] * 5)  # the mean of what there is
    assert fc.upper95[-1] > fc.upper95[0]  # √h spread


def test_bounds_never_go_below_zero():
    s = af.HourlySeries(T0, np.array([0.1, 5.0, 0.1, 5.0]))
    fc = af.forecast_power(s, 24)
    assert (fc.lower95 >= 0).all()


@pytest.mark.parametrize(
    ("kw", "horizon", "code"),
    [
        ([1.0, 2.0], 5, "too_few_points"),
        ([1.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 2.0], 5, "too_few_points"),
        ([1.0, -2.0, 3.0], 5, "negative_value"),
        ([1.0, 2.0, 3.0], 0, "invalid_horizon"),
        ([1.0, 2.0, 3.0], 169, "invalid_horizon"),
    ],
)
def test_unusable_input_names_its_code(kw, horizon, code):
    with pytest.raises(af.AssetDataError) as exc:
        af.forecast_power(af.HourlySeries(T0, np.array(kw)), horizon)
    assert exc.value.code == code


def test_points_and_energy_total():
    fc = af.forecast_power(daily_shape(7), 24)
    rows = fc.points()
    assert rows[0]["ts"] == "2025-12-03T00:00:00Z" and rows[0]["power_kw"] == rows[0]["energy_kwh"] == 100.0
    assert fc.energy_total()["energy_kwh"] == pytest.approx(12 * 100 + 12 * 120)
    again = af.AssetForecast.from_dict(fc.as_dict())
    assert again.points() == rows and again.head(3).horizon == 3


def test_upload_csv_is_parsed_with_its_step():
    text = "ts,value\n2026-01-01T00:00:00Z,1.5\n2026-01-01T00:15:00Z,2\n2026-01-01T00:30:00+00:00,3\n"
    s = af.parse_series_csv(text)
    assert s.interval_minutes == 15 and s.values.tolist() == [1.5, 2.0, 3.0]


@pytest.mark.parametrize(
    ("text", "code", "row"),
    [
        ("time,value\n2026-01-01T00:00:00Z,1\n", "missing_columns", None),
        ("ts,value\n2026-01-01T00:00:00Z,1\nyesterday,2\n", "invalid_ts", 2),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00,2\n", "invalid_ts", 2),  # no time zone
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,abc\n", "invalid_value", 2),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,nan\n", "invalid_value", 2),
        ("ts,value\n2026-01-01T01:00:00Z,1\n2026-01-01T00:00:00Z,2\n", "invalid_ts", 2),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,2\n2026-01-01T03:00:00Z,2\n", "irregular_step", 3),
        ("ts,value\n2026-01-01T00:00:00Z,1\n", "too_few_rows", None),
    ],
)
def test_upload_csv_errors_name_row_and_reason(text, code, row):
    with pytest.raises(af.SeriesDataError) as exc:
        af.parse_series_csv(text)
    assert exc.value.code == code and exc.value.row == row


def test_upload_csv_with_a_given_interval_checks_it():
    text = "ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,2\n"
    with pytest.raises(af.SeriesDataError) as exc:
        af.parse_series_csv(text, interval_minutes=30)
    assert exc.value.code == "irregular_step" and exc.value.row == 2


def test_upload_csv_row_limit(monkeypatch):
    monkeypatch.setattr(af, "MAX_UPLOAD_ROWS", 3)
    rows = "".join(f"2026-01-01T0{k}:00:00Z,{k}\n" for k in range(5))
    with pytest.raises(af.SeriesDataError) as exc:
        af.parse_series_csv("ts,value\n" + rows)
    assert exc.value.code == "too_many_rows"
