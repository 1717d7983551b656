"""The pure SLA rules (``hashinsight.billing.calc.sla``) against a hand-computed month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from hashinsight.billing.calc import sla as calc
from hashinsight.billing.calc.sla import Cause


def at(day: int, hour: int, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC) if hour < 24 else datetime(2026, month, day + 1, tzinfo=UTC)


M = 7  # the miner


def the_month():
    """January 2026 (31 days, 744 h) for one miner with a 10 h curtailment allowance (hand-computed below)."""
    down = {
        (M, date(2026, 1, 3)): D("6"),  # site outage 02:00–08:00                     → operator 6
        (M, date(2026, 1, 5)): D("12"),  # client disable 10:00–22:00                  → client 12
        (M, date(2026, 1, 8)): D("6"),  # curtailment 00:00–06:00, allowance 10 → 4    → excluded 6
        (M, date(2026, 1, 9)): D("6"),  # curtailment 12:00–18:00, allowance 4 → 0     → excluded 4, operator 2
        (M, date(2026, 1, 12)): D("12"),  # force majeure 06:00–18:00 over a curtailment → excluded 12
        (M, date(2026, 1, 15)): D("12"),  # fan failure at 12:00, open-ended           → excluded 12
        (M, date(2026, 1, 16)): D("24"),  # still down (no daily row)                  → excluded 24
        (M, date(2026, 1, 17)): D("3"),  # back up during the day                      → excluded 3
        (M, date(2026, 1, 20)): D("2"),  # nothing explains it                          → operator 2
        (M, date(2026, 1, 22)): D("4"),  # curtailment 6 h, down 4, allowance spent     → operator 4
        (M, date(2026, 1, 25)): D("0"),  # an up day listed: ignored
    }
    causes = [
        Cause(calc.SITE_OUTAGE, at(3, 2), at(3, 8)),
        Cause(calc.CLIENT_DISABLE, at(5, 10), at(5, 22), miner_id=M, ref=101),
        Cause(calc.CURTAILMENT, at(8, 0), at(8, 6), miner_id=M, ref=102),
        Cause(calc.CURTAILMENT, at(9, 12), at(9, 18), miner_id=M, ref=103),
        Cause(calc.FORCE_MAJEURE, at(12, 6), at(12, 18)),
        Cause(calc.CURTAILMENT, at(12, 10), at(12, 14), miner_id=M, ref=104),
        Cause(calc.HARDWARE_FAULT, at(15, 12), None, miner_id=M),
        Cause(calc.CURTAILMENT, at(22, 0), at(22, 6), miner_id=M, ref=105),
        Cause(calc.CURTAILMENT, at(27, 0), at(27, 6), miner_id=99, ref=106),  # another miner's
    ]
    return down, causes


def test_hand_computed_month():
    down, causes = the_month()
    out = calc.classify(down, causes, allowance_h=D("10"))
    day = {d.day: s for (m, d), s in out.items()}
    assert set(day) == {3, 5, 8, 9, 12, 15, 16, 17, 20, 22}
    assert day[3] == calc.Split(operator_h=D("6.000"), reasons=("site_outage",))
    assert day[5] == calc.Split(client_h=D("12.000"), reasons=("client_disable",), refs=(101,))
    assert day[8] == calc.Split(
        excluded_h=D("6.000"), curtailed_h=D("6.000"), reasons=("curtailment_allowance",), refs=(102,)
    )
    assert day[9] == calc.Split(
        operator_h=D("2.000"), excluded_h=D("4.000"), curtailed_h=D("6.000"),
        reasons=("curtailment_allowance", "curtailment"), refs=(103,),
    )  # fmt: skip
    # Force majeure covers the curtailment: the allowance is not touched, nothing is curtailed for the credit.
    assert day[12] == calc.Split(excluded_h=D("12.000"), reasons=("force_majeure",))
    assert [day[d].excluded_h for d in (15, 16, 17)] == [D("12.000"), D("24.000"), D("3.000")]
    assert all(day[d].reasons == ("hardware_fault",) and day[d].operator_h == 0 for d in (15, 16, 17))
    assert day[20] == calc.Split(operator_h=D("2"), reasons=("unexplained",))
    assert day[22] == calc.Split(operator_h=D("4.000"), curtailed_h=D("4.000"), reasons=("curtailment",), refs=(105,))

    operator = sum(s.operator_h for s in out.values())
    client = sum(s.client_h for s in out.values())
    excluded = sum(s.excluded_h for s in out.values())
    assert (operator, client, excluded) == (D("14"), D("12"), D("61"))
    assert sum(down.values()) == operator + client + excluded
    # 100 × (744 − 14) / 744 = 98.1182… → 98.118 %: the 97 % target is met, no credit.
    uptime = calc.sla_uptime_pct(D(31 * 24), operator)
    assert uptime == D("98.118")
    assert calc.credit_pct([{"below_pct": "97", "credit_pct": "5"}], uptime, D("97")) == 0


def test_allowance_spent_before_the_period_and_reset_each_month():
    down = {(M, date(2026, 1, 31)): D("5"), (M, date(2026, 2, 1)): D("5")}
    causes = [Cause(calc.CURTAILMENT, at(31, 0, 1), datetime(2026, 2, 1, 5, tzinfo=UTC), miner_id=M)]
    out = calc.classify(down, causes, allowance_h=D("4"), allowance_used={(M, 2026, 1): D("3")})
    jan, feb = out[(M, date(2026, 1, 31))], out[(M, date(2026, 2, 1))]
    assert (jan.excluded_h, jan.operator_h, jan.curtailed_h) == (D("1.000"), D("4.000"), D("5.000"))
    assert (feb.excluded_h, feb.operator_h) == (D("4.000"), D("1.000"))  # a new month, a new allowance


def test_client_disable_outranks_a_hardware_fault_and_the_rest_is_split_by_exclusive_time():
    # Disable 10–14, fault 12–20; down 10 h: the client claims 4 h, the fault its 6 h outside the disable.
    down = {(M, date(2026, 1, 5)): D("10")}
    causes = [
        Cause(calc.HARDWARE_FAULT, at(5, 12), at(5, 20), miner_id=M),
        Cause(calc.CLIENT_DISABLE, at(5, 10), at(5, 14), miner_id=M, ref=1),
    ]
    split = calc.classify(down, causes)[(M, date(2026, 1, 5))]
    assert (split.client_h, split.excluded_h, split.operator_h) == (D("4.000"), D("6.000"), D("0"))
    assert split.reasons == ("client_disable", "hardware_fault")


def test_downtime_beyond_every_cause_is_the_operators():
    # A 2 h failed restart explains 2 of 5 down hours; the other 3 are unexplained (operator, client's favour).
    down = {(M, date(2026, 1, 5)): D("5")}
    split = calc.classify(down, [Cause(calc.MAINTENANCE_FAILED, at(5, 1), at(5, 3), miner_id=M, ref=9)])[
        (M, date(2026, 1, 5))
    ]
    assert (split.operator_h, split.reasons, split.refs) == (D("5.000"), ("maintenance_failed", "unexplained"), (9,))


def test_down_hours_from_uptime():
    assert calc.down_hours(None) == D("24")
    assert calc.down_hours(100.0) == D("0.000")
    assert calc.down_hours(87.5) == D("3.000")
    assert calc.down_hours(99.99) == D("0.002")  # 0.0024 h
    assert calc.down_hours(-3) == D("24.000") and calc.down_hours(101) == D("0.000")


@pytest.mark.parametrize(
    ("uptime", "credit"),
    [("100", "0"), ("97.000", "0"), ("96.999", "5"), ("95.5", "5"), ("95", "5"), ("94.9", "10"), ("10", "10")],
)
def test_credit_from_the_schedule(uptime, credit):
    schedule = [{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "95", "credit_pct": "10"}]
    assert calc.credit_pct(schedule, D(uptime), D("97")) == D(credit)


def test_credit_month_below_target():
    # 30 days, 1 miner, 30 operator hours: 100 × 690 / 720 = 95.833 % → below 97, not below 95 → 5 %.
    uptime = calc.sla_uptime_pct(D(720), D(30))
    assert uptime == D("95.833")
    schedule = [{"below_pct": 95, "credit_pct": 10}, {"below_pct": 97, "credit_pct": 5}]  # order does not matter
    assert calc.credit_pct(schedule, uptime, D("97")) == D("5")


def test_met_target_gives_no_credit_even_below_a_threshold():
    assert calc.credit_pct([{"below_pct": "99", "credit_pct": "3"}], D("98"), D("97")) == 0


@pytest.mark.parametrize(
    "schedule",
    [{"below_pct": 97}, [{"below_pct": "x", "credit_pct": 1}], [{"below_pct": 97}], [{"below_pct": 0, "credit_pct": 1}],
     [{"below_pct": 97, "credit_pct": 101}], [{"below_pct": "NaN", "credit_pct": 1}]],
)  # fmt: skip
def test_bad_schedules_are_refused(schedule):
    with pytest.raises(ValueError):
        calc.parse_schedule(schedule)


def test_causes_are_checked():
    with pytest.raises(ValueError):
        Cause("nonsense", at(1, 0), at(1, 1))
    with pytest.raises(ValueError):
        Cause(calc.CURTAILMENT, at(1, 2), at(1, 1))
    with pytest.raises(ValueError):
        Cause(calc.CURTAILMENT, datetime(2026, 1, 1), None)
