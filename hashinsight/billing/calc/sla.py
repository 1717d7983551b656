"""SLA downtime classification and credits, in plain Python (no Django): the rules, written once.

Input: each miner-day's **down hours** (``24 × (100 − uptime %) / 100`` from the ``daily`` layer; a miner-day with
no daily row was not reported and counts 24 h down) and the **intervals of known causes** the Django adapter
(``hashinsight.billing.sla``) read from telemetry and the control plane. Output: each miner-day's down hours split
into operator-caused, client-caused and excluded hours, with reason codes and the commands behind them.

The daily layer says *how long* a miner was down on a day, not *when*. A cause interval that overlaps the day
explains up to its overlap of the day's down hours; the causes are asked in the order below, each claiming what is
left, and an hour of the day covered by a higher cause is not offered again by a lower one.

**Precedence** (highest first) and why:

1. ``force_majeure`` → excluded. The contract suspends the operator's obligations inside a window the operator
   declared with a reason (storm, grid emergency); whatever else happened in it does not count.
2. ``client_disable`` → client-caused. The client asked for the miner to be off (a stop, low power mode or
   curtailment proposed by a CLIENT user); a fault or a curtailment during that time cost the client nothing more.
3. ``hardware_fault`` → excluded. The miner itself broke (fan failure, hashboard or chain failure): it could not
   hash whatever the operator did, so the hours neither count against the operator nor burn the client's
   curtailment allowance (the allowance is kept for hours the client really gave up).
4. ``curtailment`` (operator curtailment: CURTAIL commands of operators, AI or system rules, curtailment events)
   → excluded while the miner's **monthly allowance** lasts, operator-caused beyond it. The allowance is consumed
   chronologically per miner per calendar month (day by day; a day that crosses the limit is split). Curtailed
   hours also count in ``curtailed_h`` whatever their class: the basis of the curtailment credit. Curtailment
   ranks above an outage because it was commanded in advance: the miner would have been off anyway.
5. Operator causes named for the statement: ``site_outage`` (most of the site down at once, or power loss),
   ``overheat`` (an overheat shutdown: cooling is the site's duty), ``maintenance_failed`` (a restart, pool change
   or similar that failed, timed out or was rolled back, followed by downtime), ``operator_disable`` (a stop
   proposed by an operator) → operator-caused.
6. Whatever is left is **unexplained** → operator-caused: in the client's favour, since the operator holds the
   telemetry and the control plane and can name a cause when there is one.

An interval may be open-ended (``end`` None): it lasts to the end of the miner's run of consecutive down days that
starts on its first day (a fault or a failed restart explains the downtime until the miner is back up).

**SLA uptime** (``sla_uptime_pct``): ``100 × (period_h − operator_h) / period_h``, ``period_h`` being the miner-hours
of the period (miners × days × 24). Client-caused and excluded hours are **counted as up** (they stay in the
denominator): the operator is measured on the hours it is responsible for, and removing excused hours from the
denominator would make one operator hour weigh more in a month with a storm, which is not what a client signs.

**Credit** (``credit_pct``): the schedule is a list of ``{"below_pct", "credit_pct"}``; the credit is the highest
``credit_pct`` among the thresholds the SLA uptime is strictly below (for the usual schedule, whose credits grow as
thresholds fall, the lowest threshold the uptime is below), 0 when the uptime meets the target, capped at 100 %."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

HOURS = Decimal("0.001")  # hours are kept to the thousandth (3.6 s), as the statement rows store them
DAY_H = Decimal("24")
ZERO = Decimal("0")

FORCE_MAJEURE = "force_majeure"
CLIENT_DISABLE = "client_disable"
HARDWARE_FAULT = "hardware_fault"
CURTAILMENT = "curtailment"
CURTAILMENT_ALLOWANCE = "curtailment_allowance"  # reason code of curtailment hours inside the allowance
SITE_OUTAGE = "site_outage"
OVERHEAT = "overheat"
MAINTENANCE_FAILED = "maintenance_failed"
OPERATOR_DISABLE = "operator_disable"
UNEXPLAINED = "unexplained"

OPERATOR, CLIENT, EXCLUDED = "operator", "client", "excluded"

# (tier, kinds) highest first; the class each kind's hours go to (curtailment: decided by the allowance).
TIERS: tuple[tuple[str, ...], ...] = (
    (FORCE_MAJEURE,),
    (CLIENT_DISABLE,),
    (HARDWARE_FAULT,),
    (CURTAILMENT,),
    (SITE_OUTAGE, OVERHEAT, MAINTENANCE_FAILED, OPERATOR_DISABLE),
)
CLASS_OF = {
    FORCE_MAJEURE: EXCLUDED,
    CLIENT_DISABLE: CLIENT,
    HARDWARE_FAULT: EXCLUDED,
    SITE_OUTAGE: OPERATOR,
    OVERHEAT: OPERATOR,
    MAINTENANCE_FAILED: OPERATOR,
    OPERATOR_DISABLE: OPERATOR,
}
KINDS = frozenset(k for tier in TIERS for k in tier)


@dataclass(frozen=True)
class Cause:
    """An interval of a known cause. ``miner_id`` None: every miner of the input (site-wide: an outage, a
    force-majeure window). ``end`` None: open-ended (see the module docstring). ``ref``: the command id behind it."""

    kind: str
    start: datetime
    end: datetime | None = None
    miner_id: int | None = None
    ref: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown cause {self.kind!r}")
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("cause intervals are timezone-aware")
        if self.end is not None and self.end <= self.start:
            raise ValueError("a cause interval ends after it starts")


@dataclass(frozen=True)
class Split:
    """One miner-day's down hours, classified. ``operator_h + client_h + excluded_h`` is the day's down hours."""

    operator_h: Decimal = ZERO
    client_h: Decimal = ZERO
    excluded_h: Decimal = ZERO
    curtailed_h: Decimal = ZERO
    reasons: tuple[str, ...] = ()
    refs: tuple[int, ...] = field(default=())


def down_hours(uptime_pct) -> Decimal:
    """A day's down hours from its uptime % (None: no daily row, the whole day down), to the thousandth."""
    if uptime_pct is None:
        return DAY_H
    pct = min(max(Decimal(str(uptime_pct)), ZERO), Decimal(100))
    return (DAY_H * (Decimal(100) - pct) / Decimal(100)).quantize(HOURS, ROUND_HALF_UP)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _hours(seconds: float) -> Decimal:
    return (Decimal(str(seconds)) / Decimal(3600)).quantize(HOURS, ROUND_HALF_UP)


def _union(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _minus(spans: list[tuple[datetime, datetime]], covered: list[tuple[datetime, datetime]]) -> float:
    """Seconds of ``spans`` (a union) outside ``covered`` (a union)."""
    total = 0.0
    for start, end in spans:
        cursor = start
        for c_start, c_end in covered:
            if c_end <= cursor or c_start >= end:
                continue
            if c_start > cursor:
                total += (c_start - cursor).total_seconds()
            cursor = max(cursor, c_end)
            if cursor >= end:
                break
        if cursor < end:
            total += (end - cursor).total_seconds()
    return total


def _resolve_open_ends(causes: Iterable[Cause], down: Mapping[tuple[int, date], Decimal]) -> list[Cause]:
    """Open-ended causes closed at the end of the miner's run of consecutive down days from their first day
    (site-wide open causes: the end of their first day)."""
    out = []
    for cause in causes:
        if cause.end is not None:
            out.append(cause)
            continue
        day = cause.start.astimezone(UTC).date()
        if cause.miner_id is not None:
            while down.get((cause.miner_id, day + timedelta(days=1)), ZERO) > 0:
                day += timedelta(days=1)
        end = _day_bounds(day)[1]
        out.append(Cause(cause.kind, cause.start, end, cause.miner_id, cause.ref))
    return out


def _index(causes: list[Cause]) -> tuple[dict, dict]:
    """Causes by (miner, day) and site-wide causes by day: each cause listed on every UTC day it touches."""
    per_miner: dict[tuple[int, date], list[Cause]] = defaultdict(list)
    site_wide: dict[date, list[Cause]] = defaultdict(list)
    for cause in causes:
        day = cause.start.astimezone(UTC).date()
        last = (cause.end - timedelta(microseconds=1)).astimezone(UTC).date()
        while day <= last:
            if cause.miner_id is None:
                site_wide[day].append(cause)
            else:
                per_miner[(cause.miner_id, day)].append(cause)
            day += timedelta(days=1)
    return per_miner, site_wide


def classify(
    down: Mapping[tuple[int, date], Decimal],
    causes: Iterable[Cause],
    *,
    allowance_h: Decimal = ZERO,
    allowance_used: Mapping[tuple[int, int, int], Decimal] | None = None,
) -> dict[tuple[int, date], Split]:
    """Each miner-day of ``down`` (``{(miner_id, day): down hours}``, days in UTC) with down hours above zero,
    split by the precedence of the module docstring. ``allowance_h``: the contract's curtailment allowance per miner
    per calendar month; ``allowance_used``: ``{(miner_id, year, month): hours}`` already consumed before the first
    day given (a period that starts mid-month). Cost: linear in the miner-days given plus the causes' days."""
    resolved = _resolve_open_ends(causes, down)
    per_miner, site_wide = _index(resolved)
    used: dict[tuple[int, int, int], Decimal] = defaultdict(lambda: ZERO, allowance_used or {})
    allowance_h = Decimal(allowance_h)
    out: dict[tuple[int, date], Split] = {}
    bounds: dict[date, tuple[datetime, datetime]] = {}
    unexplained: dict[Decimal, Split] = {}  # most down miner-days have no known cause: one Split per hour figure
    # Chronological per miner, so the allowance is consumed in day order.
    for miner_id, day in sorted(down):
        hours = Decimal(down[(miner_id, day)])
        if hours <= 0:
            continue
        candidates = per_miner.get((miner_id, day), []) + site_wide.get(day, [])
        if not candidates:
            split = unexplained.get(hours)
            if split is None:
                split = unexplained[hours] = Split(operator_h=hours, reasons=(UNEXPLAINED,))
            out[(miner_id, day)] = split
            continue
        day_start, day_end = bounds.get(day) or bounds.setdefault(day, _day_bounds(day))
        kinds_here = {c.kind for c in candidates}
        remaining = hours
        totals = {OPERATOR: ZERO, CLIENT: ZERO, EXCLUDED: ZERO}
        curtailed = ZERO
        reasons: list[str] = []
        refs: list[int] = []
        covered: list[tuple[datetime, datetime]] = []
        for tier in TIERS:
            if remaining <= 0:
                break
            for kind in tier:
                if remaining <= 0:
                    break
                if kind not in kinds_here:
                    continue
                mine = [c for c in candidates if c.kind == kind]
                if not mine:
                    continue
                spans = _union([(max(c.start, day_start), min(c.end, day_end)) for c in mine])
                spans = [(s, e) for s, e in spans if e > s]
                claim = min(remaining, _hours(_minus(spans, covered)))
                covered = _union(covered + spans)
                if claim <= 0:
                    continue
                remaining -= claim
                refs.extend(c.ref for c in mine if c.ref is not None)
                if kind == CURTAILMENT:
                    curtailed += claim
                    key = (miner_id, day.year, day.month)
                    within = min(claim, max(allowance_h - used[key], ZERO))
                    used[key] += within
                    if within > 0:
                        totals[EXCLUDED] += within
                        reasons.append(CURTAILMENT_ALLOWANCE)
                    if claim - within > 0:
                        totals[OPERATOR] += claim - within
                        reasons.append(CURTAILMENT)
                else:
                    totals[CLASS_OF[kind]] += claim
                    reasons.append(kind)
        if remaining > 0:
            totals[OPERATOR] += remaining
            reasons.append(UNEXPLAINED)
        out[(miner_id, day)] = Split(
            operator_h=totals[OPERATOR],
            client_h=totals[CLIENT],
            excluded_h=totals[EXCLUDED],
            curtailed_h=curtailed,
            reasons=tuple(reasons),
            refs=tuple(sorted(set(refs))),
        )
    return out


def sla_uptime_pct(period_h: Decimal, operator_h: Decimal) -> Decimal:
    """``100 × (period_h − operator_h) / period_h`` to the thousandth of a percent (100 for an empty period)."""
    period_h, operator_h = Decimal(period_h), Decimal(operator_h)
    if period_h <= 0:
        return Decimal("100.000")
    value = Decimal(100) * (period_h - min(operator_h, period_h)) / period_h
    return value.quantize(Decimal("0.001"), ROUND_HALF_UP)


def parse_schedule(schedule) -> list[tuple[Decimal, Decimal]]:
    """``[(below_pct, credit_pct)]`` from a contract's schedule; ValueError naming the bad entry."""
    if schedule in (None, ""):
        return []
    if not isinstance(schedule, list):
        raise ValueError("the SLA credit schedule is a list")
    out = []
    for i, entry in enumerate(schedule):
        if not isinstance(entry, Mapping) or set(entry) != {"below_pct", "credit_pct"}:
            raise ValueError(f"entry {i}: needs exactly below_pct and credit_pct")
        try:
            below, credit = Decimal(str(entry["below_pct"])), Decimal(str(entry["credit_pct"]))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"entry {i}: not a number") from exc
        if not (below.is_finite() and credit.is_finite()) or not (0 < below <= 100 and 0 <= credit <= 100):
            raise ValueError(f"entry {i}: below_pct in (0, 100], credit_pct in [0, 100]")
        out.append((below, credit))
    return out


def credit_pct(schedule, sla_uptime: Decimal, target_pct: Decimal) -> Decimal:
    """The credit in % of the month's charge (see the module docstring); 0 when ``sla_uptime ≥ target_pct``."""
    sla_uptime = Decimal(sla_uptime)
    if sla_uptime >= Decimal(target_pct):
        return ZERO
    credits = [credit for below, credit in parse_schedule(schedule) if sla_uptime < below]
    return min(max(credits, default=ZERO), Decimal(100))
