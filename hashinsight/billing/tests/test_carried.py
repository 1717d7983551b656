"""Runs of days shown or billed with another day's market value (``billing.calc.carried``)."""

from datetime import date, timedelta

from hashinsight.billing.calc.carried import Carried, carried_runs


def d(n: int) -> date:
    return date(2026, 10, 1) + timedelta(days=n)


def test_days_with_their_own_value_make_no_run():
    assert carried_runs({d(i): d(i) for i in range(5)}) == []


def test_a_gap_and_a_tail_are_two_runs_each_naming_its_day():
    value_days = {d(0): d(0), d(1): d(0), d(2): d(0), d(3): d(3), d(4): d(3), d(5): d(3)}
    assert carried_runs(value_days) == [Carried(d(1), d(2), d(0)), Carried(d(4), d(5), d(3))]


def test_days_not_shown_do_not_break_a_run_and_unknown_days_are_left_out():
    value_days = {d(1): date(2026, 2, 12), d(4): date(2026, 2, 12), d(9): date(2026, 2, 12), d(10): None}
    assert carried_runs(value_days) == [Carried(d(1), d(9), date(2026, 2, 12))]


def test_days_before_a_periods_first_market_day_take_that_later_day_and_say_so():
    assert carried_runs({d(0): d(2), d(1): d(2), d(2): d(2)}) == [Carried(d(0), d(1), d(2))]
