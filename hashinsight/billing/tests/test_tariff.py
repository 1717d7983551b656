"""The pure tariff arithmetic (no database): miner-day figures, the curtailment allowance in day order, the credit
cap, the deposit on the first and the final invoice, revenue share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from hashinsight.billing.calc import tariff
from hashinsight.billing.calc.tariff import Curtailed, PeriodFacts, Terms


def facts(**kw) -> PeriodFacts:
    base = {"period_start": date(2026, 9, 1), "period_end": date(2026, 9, 30), "miner_count": 1, "miner_days": 30}
    return PeriodFacts(**{**base, **kw})


def test_miner_day_figures():
    assert tariff.telemetry_decimal(0.1235) == D("0.124")  # 15 digits first: 0.123500000000000
    assert tariff.telemetry_decimal(None) is None
    metered = Terms(rate_per_kwh=D("0.06"))
    computed = Terms(energy_basis="computed", rate_per_kwh=D("0.06"))
    assert tariff.day_energy_kwh(metered, metered_kwh=D("72.125"), uptime_pct=D("50"), power_w=D("3000")) == D("72.125")
    assert tariff.day_energy_kwh(metered, metered_kwh=None, uptime_pct=D("0"), power_w=D("3000")) == D("0")
    assert tariff.day_energy_kwh(computed, metered_kwh=D("1"), uptime_pct=D("50"), power_w=D("3250")) == D("39.000")
    assert tariff.day_down_h(D("99.999")) == D("0.000")  # 0.00024 h rounds away
    assert tariff.day_down_h(D("75")) == D("6.000")
    assert tariff.day_charge(metered, energy_kwh=D("10.125"), avg_hashrate_ths=None, hashprice=D("0")) == D("0.607500")
    share = Terms(tariff_kind="revenue_share", revenue_share_pct=D("30"))
    assert tariff.day_charge(share, energy_kwh=D("0"), avg_hashrate_ths=D("100"), hashprice=D("0.0512345")) == D(
        "1.537035"
    )


def test_the_allowance_is_used_up_in_day_order_per_miner_and_month():
    terms = Terms(curtailment_allowance_hours=D("10"), curtailment_credit_kind="rate",
                  curtailment_credit_per_miner_hour=D("0.50"))  # fmt: skip
    rows = [
        Curtailed(1, date(2026, 9, 3), D("6")), Curtailed(1, date(2026, 9, 1), D("6")),  # out of order on purpose
        Curtailed(2, date(2026, 9, 2), D("4")),  # miner 2: within its own allowance
        Curtailed(1, date(2026, 10, 1), D("3")),  # a new month: a new allowance
    ]  # fmt: skip
    assert tariff.curtailment_credit(terms, rows, {}) == (D("2"), D("1.00"))
    assert tariff.curtailment_credit(Terms(), rows, {}) == (D("0"), D("0"))


def test_pass_through_uses_each_days_hashprice():
    terms = Terms(curtailment_allowance_hours=D("0"), curtailment_credit_kind="pass_through")
    rows = [Curtailed(1, date(2026, 9, 1), D("12"), D("200")), Curtailed(1, date(2026, 9, 2), D("6"), D("200"))]
    prices = {date(2026, 9, 1): D("0.06"), date(2026, 9, 2): D("0.048")}
    # 12 × 200 × 0.06 / 24 = 6.00; 6 × 200 × 0.048 / 24 = 2.40
    assert tariff.curtailment_credit(terms, rows, prices) == (D("18"), D("8.40"))


def test_credits_never_exceed_the_charges():
    terms = Terms(rate_per_kwh=D("0.06"), curtailment_credit_kind="rate", curtailment_credit_per_miner_hour=D("10"))
    f = facts(energy_kwh=D("100"), charge=D("6"), operator_h=D("72"),
              curtailed=[Curtailed(1, date(2026, 9, 1), D("24"))])  # fmt: skip
    result = tariff.compute(terms, f, sla_credit_pct=lambda pct: D("10"), currency="USD")
    # SLA uptime 100 × (720 − 72) / 720 = 90 % → 10 % of 6.00 = 0.60; the 240.00 curtailment credit is cut to 5.40.
    assert [(line.kind, line.amount) for line in result.lines] == [
        ("energy", D("6.00")), ("sla_credit", D("-0.60")), ("curtailment_credit", D("-5.40"))]  # fmt: skip
    assert (result.credits, result.total, result.sla_uptime_pct) == (D("6.00"), D("0.00"), D("90.000"))


def test_deposit_on_a_one_month_contract_is_charged_and_applied_back():
    terms = Terms(rate_per_kwh=D("0.06"), deposit=D("1000"))
    f = facts(energy_kwh=D("1000"), charge=D("60"), first_invoice=True, final_invoice=True)
    result = tariff.compute(terms, f, sla_credit_pct=lambda pct: D("0"), currency="USD")
    assert [(line.kind, line.amount) for line in result.lines] == [
        ("energy", D("60.00")), ("deposit", D("1000")), ("deposit", D("-1000"))]  # fmt: skip
    assert (result.deposit_applied, result.total) == (D("0"), D("60.00"))


def test_prior_balance_is_a_line_outside_the_total():
    result = tariff.compute(Terms(rate_per_kwh=D("0.06")), facts(charge=D("60"), prior_balance=D("12.34")),
                            sla_credit_pct=lambda pct: D("0"), currency="USD")  # fmt: skip
    assert result.lines[-1].kind == "prior_balance" and result.lines[-1].amount == D("12.34")
    assert result.total == D("60.00") and result.prior_balance == D("12.34")


def test_an_empty_period_has_no_uptime():
    result = tariff.compute(Terms(), facts(miner_days=0, miner_count=0), sla_credit_pct=lambda pct: D("99"),
                            currency="USD")  # fmt: skip
    assert (result.uptime_pct, result.sla_uptime_pct, result.total) == (None, None, D("0.00"))
