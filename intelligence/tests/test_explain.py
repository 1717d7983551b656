"""ROI attribution: exact sums, the Shapley axioms, and an example worked out by hand."""

import itertools
from dataclasses import replace
from decimal import Decimal as D
from fractions import Fraction

import pytest

from intelligence.algorithms.explain import (
    FACTORS,
    PARTS,
    ExplainError,
    PeriodInputs,
    explain_profit_change,
    modelled_profit,
    round_preserving_sum,
    shapley_values,
)
from intelligence.algorithms.hashprice import hashprice_usd_per_th_day

BEFORE = PeriodInputs(
    days=D(30), btc_price_usd=D("95000"), difficulty=D("1.1e14"), offline_rate=D("0.02"),
    power_price_usd_per_kwh=D("0.045"), fees_btc_per_block=D("0.03"), block_subsidy_btc=D("3.125"),
    fleet_ths=D(200_000), fleet_kw=D(3_500), pool_fee_pct=D(2), capex_usd=D(4_000_000),
)  # fmt: skip
AFTER = replace(
    BEFORE, btc_price_usd=D("87000.55"), difficulty=D("1.26e14"), offline_rate=D("0.035"),
    power_price_usd_per_kwh=D("0.0525"), fees_btc_per_block=D("0.018"), days=D(31),
)  # fmt: skip


def test_parts_sum_exactly_to_the_actual_change():
    a = explain_profit_change(BEFORE, AFTER)
    assert tuple(a.parts_usd) == PARTS
    assert sum(a.parts_usd.values()) == a.change_usd == a.profit_after_usd - a.profit_before_usd
    assert sum(a.exact_parts_usd.values()) == modelled_profit(AFTER) - modelled_profit(BEFORE)
    for k, v in a.parts_usd.items():  # each shown part within a cent of its exact value
        assert abs(Fraction(v) - a.exact_parts_usd[k]) <= Fraction(1, 100)
    assert a.change_usd < 0 and a.parts_usd["btc_price"] < 0 and a.parts_usd["difficulty"] < 0
    assert a.parts_usd["residual"] > 0  # the extra day
    assert sum(a.roi_parts_pp.values()) == a.roi_change_pp == a.roi_after_pct - a.roi_before_pct


def test_with_measured_profits_the_residual_takes_the_model_gap():
    a = explain_profit_change(
        replace(BEFORE, actual_profit_usd=D("500000.00")), replace(AFTER, actual_profit_usd=D("0.07"))
    )
    assert a.change_usd == D("-499999.93")
    assert sum(a.parts_usd.values()) == D("-499999.93")


def test_an_unchanged_factor_gets_nothing_dummy_axiom():
    after = replace(AFTER, power_price_usd_per_kwh=BEFORE.power_price_usd_per_kwh)
    a = explain_profit_change(BEFORE, after)
    assert a.exact_parts_usd["power_price"] == 0 and a.parts_usd["power_price"] == D("0.00")
    same = explain_profit_change(BEFORE, BEFORE)
    assert set(same.parts_usd.values()) == {D("0.00")}


def test_price_and_difficulty_moving_alike_get_equal_parts_symmetry_axiom():
    # Revenue ∝ price ÷ difficulty: price × 2 and difficulty ÷ 2 are interchangeable players.
    after = replace(BEFORE, btc_price_usd=BEFORE.btc_price_usd * 2, difficulty=BEFORE.difficulty / 2)
    a = explain_profit_change(BEFORE, after)
    assert a.exact_parts_usd["btc_price"] == a.exact_parts_usd["difficulty"] > 0


def test_hand_computed_example():
    # No revenue change except through offline: power price 0.05 → 0.10 $/kWh and offline 0 → 50 %.
    # C = 100 kW × 24 h × 0.05 × 30 d = 3,600; R = revenue over 30 days. profit = (1 − o)(R − C·m).
    # v(∅) = R − C, v(power) = R − 2C, v(off) = ½(R − C), v(both) = ½(R − 2C).
    # φ_power = ½[(v(p) − v(∅)) + (v(both) − v(off))] = ½[−C − ½C] = −¾C = −2,700.
    # φ_off = ½[(v(off) − v(∅)) + (v(both) − v(p))] = −½R + ¾C.
    before = PeriodInputs(
        days=D(30), btc_price_usd=D(100_000), difficulty=D("1e14"), offline_rate=D(0),
        power_price_usd_per_kwh=D("0.05"), fees_btc_per_block=D("0.125"), block_subsidy_btc=D("3.125"),
        fleet_ths=D(1_000), fleet_kw=D(100),
    )  # fmt: skip
    after = replace(before, power_price_usd_per_kwh=D("0.10"), offline_rate=D("0.5"))
    a = explain_profit_change(before, after)
    revenue = (
        30 * 1_000 * hashprice_usd_per_th_day(Fraction(100_000), Fraction(10**14), Fraction(25, 8), Fraction(1, 8))
    )
    assert a.exact_parts_usd["power_price"] == -2700
    assert a.exact_parts_usd["offline_rate"] == -revenue / 2 + 2700
    assert a.exact_parts_usd["btc_price"] == a.exact_parts_usd["difficulty"] == 0
    assert a.parts_usd["power_price"] == D("-2700.00")
    # R = 30 × 1,000 × 0.06537884473800659 = 1,961.36534…; φ_off = −980.68267… + 2,700 = 1,719.31733…
    # Shown profits: before R − C = −1,638.63466… → −1,638.63; after ½(R − 2C) = −2,619.31733… → −2,619.32;
    # shown change −980.69 (exact −980.68267…). Rounded parts −2,700.00 + 1,719.32 lack one cent: it comes off
    # the part rounded furthest up, offline_rate → 1,719.31.
    assert (a.profit_before_usd, a.profit_after_usd, a.change_usd) == (D("-1638.63"), D("-2619.32"), D("-980.69"))
    assert a.parts_usd["offline_rate"] == D("1719.31")


def test_shapley_values_of_a_known_game():
    # Glove game: L owns a left glove, R1 and R2 a right one each; a pair is worth 1. φ = (2/3, 1/6, 1/6).
    def v(s):
        return Fraction(1) if "L" in s and ({"R1", "R2"} & s) else Fraction(0)

    phi = shapley_values(("L", "R1", "R2"), v)
    assert phi == {"L": Fraction(2, 3), "R1": Fraction(1, 6), "R2": Fraction(1, 6)}


def test_shapley_equals_the_average_over_all_24_orders():
    def v(s):
        return modelled_profit(replace(BEFORE, **{f: getattr(AFTER, f) for f in _fields(s)}))

    phi = shapley_values(FACTORS, v)
    orders = list(itertools.permutations(FACTORS))
    assert len(orders) == 24
    for factor in FACTORS:
        total = Fraction(0)
        for order in orders:
            before_it = frozenset(order[: order.index(factor)])
            total += v(before_it | {factor}) - v(before_it)
        assert phi[factor] == total / 24


def _fields(s):
    names = {"btc_price": "btc_price_usd", "difficulty": "difficulty", "offline_rate": "offline_rate"}
    return [names.get(f, "power_price_usd_per_kwh") for f in s]


def test_rounding_keeps_the_sum():
    parts = {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}
    shown = round_preserving_sum(parts, D("1.00"), D("0.01"))
    assert sum(shown.values()) == D("1.00") and sorted(shown.values()) == [D("0.33"), D("0.33"), D("0.34")]
    shown = round_preserving_sum({"a": Fraction(5, 1000), "b": Fraction(5, 1000)}, D("0.00"), D("0.01"))
    assert sum(shown.values()) == 0


def test_roi_when_the_investment_changes():
    a = explain_profit_change(BEFORE, replace(AFTER, capex_usd=D(5_000_000)))
    assert "capex" in a.roi_parts_pp and a.roi_parts_pp["capex"] < 0
    assert sum(a.roi_parts_pp.values()) == a.roi_after_pct - a.roi_before_pct
    assert explain_profit_change(replace(BEFORE, capex_usd=None), replace(AFTER, capex_usd=None)).roi_parts_pp is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("offline_rate", D("1.5")), ("difficulty", D(0)), ("btc_price_usd", 1.5), ("days", D("NaN")), ("capex_usd", D(0))],
)
def test_bad_input_names_the_field(field, value):
    with pytest.raises(ExplainError) as exc:
        explain_profit_change(BEFORE, replace(AFTER, **{field: value}))
    assert exc.value.field == f"after.{field}"
