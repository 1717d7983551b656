"""Worked examples for the calculator's one pure function (figures checked by hand)."""

from decimal import Decimal as D

import pytest

from intelligence.profitability import InvalidInput, ProfitInputs, mining_profitability

BASE = {
    "hashrate_ths": D(100), "power_w": D(3000), "quantity": 1, "electricity_usd_per_kwh": D("0.05"),
    "btc_price_usd": D(50000), "difficulty": D("1e14"), "block_subsidy_btc": D("3.125"),
    "fees_btc_per_block": D("0.125"), "pool_fee_pct": D(0),
}  # fmt: skip


def approx(value, expected, rel=D("1e-9")):
    return abs(D(value) - D(expected)) <= abs(D(expected)) * rel


def test_one_100_ths_miner_at_difficulty_1e14():
    # 100e12 H/s × 86,400 s ÷ (1e14 × 2^32) = 2.0116567611694336e-5 blocks/day, × 3.25 BTC.
    r = mining_profitability(ProfitInputs(**BASE))
    assert approx(r.btc_per_day, "0.00006537884473800659")
    assert approx(r.revenue_usd_per_day, "3.2689422369003296")
    assert r.energy_kwh_per_day == D(72)
    assert r.power_cost_usd_per_day == D("3.60")
    assert approx(r.profit_usd_per_day, "-0.3310577630996704")
    assert approx(r.break_even_electricity_usd_per_kwh, "0.04540197551250458")
    assert approx(r.break_even_btc_price_usd, "55063.68328205129")
    assert approx(r.profit_usd_per_month, D("-0.3310577630996704") * 30)


def test_ten_s21_with_pool_fee_at_february_2026_market():
    inputs = ProfitInputs(
        hashrate_ths=D(200), power_w=D(3500), quantity=10, electricity_usd_per_kwh=D("0.06"),
        btc_price_usd=D("66221.84"), difficulty=D("1.258645901e14"), block_subsidy_btc=D("3.125"),
        fees_btc_per_block=D("0.0177"), pool_fee_pct=D(2),
    )  # fmt: skip
    r = mining_profitability(inputs)
    assert r.fleet_hashrate_ths == D(2000)
    assert r.fleet_power_kw == D(35)
    assert approx(r.btc_per_day, "0.0009844854735296413", rel=D("1e-8"))
    assert approx(r.revenue_usd_per_day, "65.19443951040414", rel=D("1e-8"))
    assert r.power_cost_usd_per_day == D("50.4")
    assert approx(r.profit_usd_per_day, "14.794439510404139", rel=D("1e-7"))


def test_break_even_price_makes_profit_zero():
    r = mining_profitability(ProfitInputs(**BASE))
    at_break_even = mining_profitability(
        ProfitInputs(**{**BASE, "electricity_usd_per_kwh": r.break_even_electricity_usd_per_kwh})
    )
    assert abs(at_break_even.profit_usd_per_day) < D("1e-20")
    at_btc_break_even = mining_profitability(ProfitInputs(**{**BASE, "btc_price_usd": r.break_even_btc_price_usd}))
    assert abs(at_btc_break_even.profit_usd_per_day) < D("1e-20")


def test_free_power_has_no_break_even_btc_price_floor():
    r = mining_profitability(ProfitInputs(**{**BASE, "electricity_usd_per_kwh": D(0)}))
    assert r.break_even_btc_price_usd == 0
    assert r.profit_usd_per_day == r.revenue_usd_per_day


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hashrate_ths", D(0)),
        ("difficulty", D(0)),
        ("quantity", 0),
        ("pool_fee_pct", D(100)),
        ("electricity_usd_per_kwh", D(-1)),
    ],
)
def test_invalid_inputs_are_refused(field, value):
    with pytest.raises(InvalidInput) as exc:
        mining_profitability(ProfitInputs(**{**BASE, field: value}))
    assert exc.value.field == field


@pytest.mark.django_db
def test_calculator_page_is_open_to_guests(client):
    page = client.get("/calculator/", {
        "hashrate_ths": "100", "power_w": "3000", "quantity": "1", "electricity_usd_per_kwh": "0.05",
        "btc_price_usd": "50000", "difficulty": "100000000000000", "block_subsidy_btc": "3.125",
        "fees_btc_per_block": "0.125", "pool_fee_pct": "0",
    })  # fmt: skip
    assert page.status_code == 200
    html = page.content.decode()
    assert "3.27" in html  # revenue per day
    assert "0.0454" in html  # break-even electricity price
    assert "difficulty × 2³²" in html  # the formula is shown


@pytest.mark.django_db
def test_calculator_rejects_bad_input_with_a_message(client):
    page = client.get("/calculator/", {"hashrate_ths": "-5", "power_w": "x", "quantity": "0"})
    assert page.status_code == 200
    assert page.context["result"] is None
    assert set(page.context["form"].errors) >= {"hashrate_ths", "power_w", "quantity"}
