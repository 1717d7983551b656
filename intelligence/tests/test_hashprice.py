"""Hashprice and the halving schedule, against figures worked out by hand."""

from datetime import UTC, date, datetime
from decimal import Decimal as D
from fractions import Fraction

import numpy as np
import pytest

from intelligence.algorithms import hashprice as hp
from intelligence.profitability import ProfitInputs, mining_profitability


@pytest.mark.parametrize(
    ("height", "btc"),
    [
        (0, "50"),
        (209_999, "50"),
        (210_000, "25"),
        (629_999, "12.5"),
        (630_000, "6.25"),
        (839_999, "6.25"),
        (840_000, "3.125"),
        (1_050_000, "1.5625"),
        (32 * 210_000, "0.00000001"),  # 5e9 sat >> 32 = 1 sat
        (33 * 210_000, "0"),  # 5e9 >> 33 = 0: the subsidy ends
        (64 * 210_000, "0"),
    ],
)
def test_subsidy_by_height(height, btc):
    assert hp.block_subsidy_btc(height) == D(btc)


def test_subsidy_at_known_halving_instants():
    assert hp.block_subsidy_btc_at(datetime(2024, 4, 20, 0, 9, 26, tzinfo=UTC)) == D("6.25")
    assert hp.block_subsidy_btc_at(datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)) == D("3.125")
    assert hp.block_subsidy_btc_at(datetime(2016, 7, 9, 16, 0, tzinfo=UTC)) == D("25")
    assert hp.block_subsidy_btc_at(datetime(2026, 2, 13, tzinfo=UTC)) == D("3.125")
    # The next halving is estimated at 600 s per block after block 840,000: 210,000 × 600 s = 1,458 d 8 h.
    assert hp.halving_time(5) == datetime(2028, 4, 17, 8, 9, 27, tzinfo=UTC)
    assert hp.block_subsidy_btc_at(datetime(2028, 5, 1, tzinfo=UTC)) == D("1.5625")
    with pytest.raises(ValueError, match="aware"):
        hp.block_subsidy_btc_at(datetime(2024, 1, 1))


def test_subsidy_on_a_halving_day_is_the_time_weighted_blend():
    # 2024-04-20: 6.25 BTC for the first 567 s, 3.125 BTC for the remaining 85,833 s.
    expected = D("3.125") + D("3.125") * D(567) / D(86_400)
    assert hp.block_subsidy_btc_on(date(2024, 4, 20)) == expected
    assert hp.block_subsidy_btc_on(date(2024, 4, 19)) == D("6.25")
    assert hp.block_subsidy_btc_on(date(2024, 4, 21)) == D("3.125")
    assert hp.subsidy_series([date(2020, 5, 10), date(2020, 5, 12)]).tolist() == [12.5, 6.25]


def test_estimated_height():
    assert hp.estimated_height(datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)) == 840_000
    assert hp.estimated_height(datetime(2024, 4, 21, 0, 9, 27, tzinfo=UTC)) == 840_144
    mid = hp.estimated_height(datetime(2022, 5, 1, tzinfo=UTC))
    assert 630_000 < mid < 840_000


def test_hashprice_by_hand():
    # 1e12 × 86,400 ÷ (1e14 × 2^32) = 2.0116567611694336e-7 blocks per TH/s per day; × 3.25 BTC × $100,000.
    value = hp.hashprice_usd_per_th_day(D(100_000), D("1e14"), D("3.125"), D("0.125"))
    assert abs(value - D("0.06537884473800659")) < D("1e-16")
    exact = hp.hashprice_usd_per_th_day(Fraction(100_000), Fraction(10**14), Fraction(25, 8), Fraction(1, 8))
    assert exact == Fraction(100_000 * 10**12 * 86_400 * 13, 10**14 * 2**32 * 4)
    assert hp.hashprice_btc_per_th_day(D("1e14"), D("3.125"), D("0.125")) * 100_000 == value


def test_hashprice_of_the_february_2026_market_matches_the_calculator():
    # The calculator's own hand-checked case: 10 × 200 TH/s earn $65.1944395 per day after a 2 % pool fee.
    value = hp.hashprice_usd_per_th_day(D("66221.84"), D("1.258645901e14"), D("3.125"), D("0.0177"))
    assert abs(value * 2000 * D("0.98") - D("65.19443951040414")) < D("1e-9")
    r = mining_profitability(
        ProfitInputs(
            hashrate_ths=D(1), power_w=D(0), quantity=1, electricity_usd_per_kwh=D(0), btc_price_usd=D("66221.84"),
            difficulty=D("1.258645901e14"), block_subsidy_btc=D("3.125"), fees_btc_per_block=D("0.0177"),
            pool_fee_pct=D(0),
        )
    )  # fmt: skip
    assert r.revenue_usd_per_day == value


def test_fees_and_series():
    assert hp.fees_btc_per_block(D("2.88")) == D("0.02")
    series = hp.hashprice_series([100_000, 50_000], [1e14, 1e14], [3.125, 3.125], [0.125, 0.125])
    assert series == pytest.approx([0.06537884473800659, 0.032689422369003295], rel=1e-12)
    assert hp.hashprice_from_revenue(D(45_000_000), D(900_000_000)) == D("0.05")


def test_shipped_history_gives_a_plausible_hashprice():
    # 2024-04-19 (day before the halving) in the shipped history: hashprice was about $0.10–0.12/TH/day.
    import csv

    from intelligence.market import DATA

    with DATA.open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["date"] == "2024-04-19")
    value = hp.hashprice_series(float(row["price_usd"]), float(row["difficulty"]), 6.25, float(row["fees_btc"]) / 144)
    assert 0.08 < float(value) < 0.14
    assert np.isfinite(value)
