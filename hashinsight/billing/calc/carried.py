"""Market values carried forward, named (plain Python). A day without market data takes the latest earlier day's
value; whatever shows or bills such a value must say which day it is of ("hashprice as of 2026-02-12"), so a stale
figure is never presented as the day's own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Carried:
    """Consecutive days ``first``..``last`` that use the value of the day ``as_of``."""

    first: date
    last: date
    as_of: date


def carried_runs(value_days: Mapping[date, date | None]) -> list[Carried]:
    """The runs of described days whose value is another day's (an earlier day's, carried forward; or, for days
    before a period's first market day, that day's), in date order (``value_days``: described day → the day its
    value is of; None when unknown, left out). A run ends at a day with its own value; days missing from
    ``value_days`` (a day a report does not show) do not end it."""
    runs: list[Carried] = []
    extending = False
    for day in sorted(value_days):
        as_of = value_days[day]
        if as_of is None or as_of == day:
            extending = False
            continue
        if extending and runs[-1].as_of == as_of:
            runs[-1] = Carried(runs[-1].first, day, as_of)
        else:
            runs.append(Carried(day, day, as_of))
        extending = True
    return runs
