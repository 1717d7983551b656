"""The shipped ERCOT prices, uploads, and a real ERCOT day planned end to end."""

from datetime import UTC, date, datetime

import numpy as np
import pytest

from intelligence.algorithms import power_prices as pp
from intelligence.algorithms.hashprice import block_subsidy_btc_on, hashprice_series
from intelligence.algorithms.optimizer import MinerGroup, PlanError, SiteModel, plan_curtailment
from intelligence.market import DATA as BTC_DAILY


def test_shipped_hourly_series():
    da = pp.load_hourly("da")
    assert (len(da), da.step_minutes) == (16_800, 60)
    assert str(da.start_utc[0]) == "2024-01-01T00:00" and str(da.start_utc[-1]) == "2025-11-30T23:00"
    assert da.usd_per_mwh[:2].tolist() == [24.84, 20.64]  # the file's first two rows
    assert da.usd_per_mwh.min() == pytest.approx(-2.85) and da.usd_per_mwh.max() == pytest.approx(2221.48)
    assert int((da.usd_per_mwh < 0).sum()) == 39  # as the provenance says
    assert pp.load_hourly("rt_mean").usd_per_mwh[0] == 21.98
    with pytest.raises(ValueError):
        pp.load_hourly("nope")


def test_shipped_15_minute_series_agrees_with_the_hourly_real_time_mean():
    rt = pp.load_15min()
    assert (len(rt), rt.step_minutes) == (67_200, 15)
    assert rt.usd_per_mwh[:2].tolist() == [28.55, 23.49]
    hourly = rt.hourly_mean()
    # The hourly file's mean is rounded to 1e-4.
    assert np.abs(hourly.usd_per_mwh - pp.load_hourly("rt_mean").usd_per_mwh).max() <= 5e-5 + 1e-9
    assert hourly.start_utc.tolist() == pp.load_hourly("da").start_utc.tolist()


def test_local_days_follow_daylight_saving():
    da = pp.load_hourly("da")
    assert len(da.day(date(2024, 1, 16), tz=pp.ERCOT_TZ)) == 24
    assert len(da.day(date(2024, 3, 10), tz=pp.ERCOT_TZ)) == 23
    assert len(da.day(date(2024, 11, 3), tz=pp.ERCOT_TZ)) == 25
    utc_day = da.day(date(2024, 1, 16))
    assert str(utc_day.start_utc[0]) == "2024-01-16T00:00" and len(utc_day) == 24
    assert len(pp.load_15min().window(datetime(2024, 5, 8, 18, tzinfo=UTC), 2)) == 8


def test_upload_parses_and_checks():
    series = pp.parse_price_csv("timestamp_utc,usd_per_mwh\n2025-01-01T00:00:00Z,30.5\n2025-01-01T01:00:00+00:00,-2\n")
    assert (len(series), series.step_minutes, series.usd_per_mwh.tolist()) == (2, 60, [30.5, -2.0])
    # An offset is converted to UTC.
    shifted = pp.parse_price_csv("timestamp_utc,usd_per_mwh\n2025-01-01T00:00-06:00,1\n2025-01-01T00:15-06:00,2\n")
    assert str(shifted.start_utc[0]) == "2025-01-01T06:00" and shifted.step_minutes == 15


@pytest.mark.parametrize(
    ("text", "row", "fragment"),
    [
        ("time,usd_per_mwh\n", None, "missing column"),
        ("timestamp_utc,usd_per_mwh\n", None, "no rows"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T00:00Z,abc\n", 1, "not a number"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T00:00Z,nan\n", 1, "not a number"),
        ("timestamp_utc,usd_per_mwh\nyesterday,1\n2025-01-01T01:00Z,2\n", 1, "ISO-8601"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T00:00,1\n2025-01-01T01:00,2\n", 1, "time zone"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T01:00Z,1\n2025-01-01T00:00Z,2\n", 2, "increasing"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T00:00Z,1\n2025-01-01T01:00Z,2\n2025-01-01T03:00Z,2\n", 3, "gap"),
        ("timestamp_utc,usd_per_mwh\n2025-01-01T00:00Z,1\n2025-01-01T00:07Z,2\n", None, "not supported"),
    ],
)
def test_upload_errors_name_the_row(text, row, fragment):
    with pytest.raises(pp.PriceDataError) as exc:
        pp.parse_price_csv(text)
    assert exc.value.row == row and fragment in str(exc.value)


def _hashprice_on(day: date) -> float:
    import csv

    with BTC_DAILY.open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["date"] == day.isoformat())
    fees = float(row["fees_btc"]) / 144 if row["fees_btc"] else 0.02
    return float(
        hashprice_series(float(row["price_usd"]), float(row["difficulty"]), float(block_subsidy_btc_on(day)), fees)
    )


FLEET = SiteModel(
    groups=(
        MinerGroup("s19jpro", "Antminer S19j Pro", count=1000, kw_each=3.068, ths_each=104, zone="hall-a"),
        MinerGroup("s21", "Antminer S21", count=1000, kw_each=3.5, ths_each=200, zone="hall-b"),
    ),
    min_on_hours=1,
    min_off_hours=1,
)


def test_plan_the_winter_storm_day_of_2024_01_16():
    day = date(2024, 1, 16)
    prices = pp.load_hourly("da").day(day, tz=pp.ERCOT_TZ)
    hashprice = _hashprice_on(day)
    assert 0.05 < hashprice < 0.12  # about $0.07/TH/day in January 2024
    plan = plan_curtailment(FLEET, prices.usd_per_mwh, hashprice)
    assert plan.solver.optimal and plan.plan.violations == ()
    assert plan.plan.total_profit_usd >= plan.threshold.total_profit_usd >= plan.run_all.total_profit_usd
    assert plan.uplift_vs_run_all_usd > 1000  # storm prices: curtailing is worth thousands of dollars
    peak = int(np.argmax(prices.usd_per_mwh))
    assert plan.plan.on_counts[:, peak].tolist() == [0, 0]
    cheap = int(np.argmin(prices.usd_per_mwh))
    assert plan.plan.on_counts[:, cheap].tolist() == [1000, 1000]
    # A demand-response cap at the peak hour: 2 MW (the S21s are kept, 200 TH/s for 3.5 kW).
    capped = plan_curtailment(FLEET, prices.usd_per_mwh, hashprice, cap_kw=[2000 if t == 8 else 1e9 for t in range(24)])
    assert capped.plan.power_kw[8] <= 2000


def test_a_real_day_with_negative_prices_needs_the_flag():
    da = pp.load_hourly("da")
    day = date(2024, 1, 7)  # 19:00–21:00 UTC were negative
    prices = da.day(day).usd_per_mwh
    assert (prices < 0).any()
    with pytest.raises(PlanError) as exc:
        plan_curtailment(FLEET, prices, _hashprice_on(day))
    assert (exc.value.code, exc.value.constraint) == ("negative", "prices_usd_per_mwh")
    plan = plan_curtailment(FLEET, prices, _hashprice_on(day), allow_negative_prices=True)
    assert plan.plan.on_counts.min() == 1000  # paid to consume: everything runs
