"""Curtailment: the day-ahead plan (PuLP/CBC) and the real-time decision, over one model of the site.

No Django here: plain data in (lists, numpy arrays, dataclasses), plain data out. The Django side stores
plans, turns an approved plan into ``CURTAIL`` commands and maps :class:`PlanError` to a 400.

The site (:class:`SiteModel`) is a set of :class:`MinerGroup` s — identical miners of one model, in one zone,
of one hosting client — plus the rules that hold every hour: zone capacities, minimum on and off
durations and a ramp limit. A plan decides how many miners of each group run in each interval.

The plan is a mixed-integer programme::

    maximise   Σ_t Σ_g on[g,t] · h · (TH/s_g · hashprice_t / 24 − kW_g · price_t / 1000)
    subject to on[g,t] ∈ {firm_g … count_g}                              (contract minimum)
               Σ_g kW_g · on[g,t] ≤ min(cap_kw_t, (1 − curtail_pct_t/100) · full kW)
               Σ_{g ∈ zone} kW_g · on[g,t] ≤ zone capacity
               |Σ_g kW_g · (on[g,t] − on[g,t−1])| ≤ ramp kW/h · h            (on[g,−1] = initial)
               on[g,t] − on[g,t−1] = up[g,t] − down[g,t]                    (up, down ≥ 0 integers)
               Σ_{τ=t−U+1..t} up[g,τ] ≤ on[g,t]              (a miner started in the last U intervals is on)
               Σ_{τ=t−D+1..t} down[g,τ] ≤ count_g − on[g,t]  (a miner stopped in the last D intervals is off)
               contract priority: a group of priority p has a miner off in t only if every group of
               lower priority is down to its firm count in t (one binary per priority level above the
               lowest and t)

``h`` is the interval length in hours (1 for the day-ahead plan). The up/down counting is the standard
formulation for clusters of identical units; it is exact for identical miners (the tests check it
against an enumeration of every individual miner's on/off schedule). Miners switched shortly before the
horizon are given in ``initial_on`` as a :class:`GroupState` (its recent starts and stops) and may not switch
back until their minimum on/off time is over; the others may switch at ``t = 0``.

CBC always runs with a time limit and a relative gap; the plan reports the gap CBC reached. When steps are
coupled (a ramp limit, min on/off), CBC alone may find no schedule at all for a week in its time limit, so it
starts from the LP relaxation rounded step by step into a schedule that meets every constraint (``_round``);
``SolverReport.method`` says whether CBC's search or that start was returned, and the gap is measured against
CBC's bound or the relaxation's. A malformed or infeasible input raises :class:`PlanError` with a code and the
constraint's name.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

HOURS_PER_DAY = 24
MAX_HORIZON_HOURS = 168
DEFAULT_TIME_LIMIT_S = 10.0
DEFAULT_GAP_REL = 1e-3  # 0.1 % of the plan's profit
# Extra CBC heuristics: with a ramp limit, minimum on/off and a demand-response cap together, CBC's defaults
# found no schedule in 10 s (bench/optimizer.py, "hard"); diving and RENS find one within 0.03 % of the bound
# in about 1.5 CPU-seconds. They cost the easy plans nothing measurable.
CBC_OPTIONS = ["divingSome on", "rens on"]
CENT = Decimal("0.01")
TIME_LIMIT_STATUS = "Stopped on time limit"  # how CBC's "Result - " line begins when the time limit stopped it
# Coupled steps: the rounded relaxation is improved at most ROUNDING_PASSES times within ROUNDING_SHARE of the
# time limit; CBC's run from it gets what the limit leaves, if at least MIN_SOLVE_S (to read the start). The
# passes get most of the time: on the hard weeks each added 1-2 % of profit, CBC's search from the start added
# nothing in 6-13 CPU-seconds (it tightens the bound, 0.3 %).
ROUNDING_PASSES = 4
ROUNDING_SHARE = 0.8
MIN_SOLVE_S = 0.5


class PlanError(ValueError):
    """A plan cannot be made from these inputs.

    ``code``: ``empty``, ``not_finite``, ``negative``, ``length_mismatch``, ``out_of_range``, ``duplicate``,
    ``unknown`` (malformed input), ``infeasible`` (well-formed, but no schedule meets every constraint) or
    ``solver_failed`` (CBC found nothing in its time limit; the only one that is not the caller's fault).
    ``constraint``: the input or constraint at fault (``prices_usd_per_mwh``, ``cap_kw``, ``ramp_kw_per_hour``…).
    """

    def __init__(self, code: str, constraint: str, message: str, *, details: dict | None = None):
        super().__init__(f"{constraint}: {message}")
        self.code = code
        self.constraint = constraint
        self.message = message
        self.details = details or {}

    def as_dict(self) -> dict:
        return {"code": self.code, "constraint": self.constraint, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class MinerGroup:
    """``count`` identical miners: one model, one zone, one hosting client (or the site's own).

    ``priority`` is the hosting-client contract priority: higher is curtailed later (every miner of a
    lower priority, but its firm ones, is off before any of a higher one is). ``firm_count`` miners are never curtailed
    (a contract's guaranteed minimum)."""

    id: str
    model: str
    count: int
    kw_each: float
    ths_each: float
    zone: str | None = None
    client: str | None = None
    priority: int = 0
    firm_count: int = 0

    @property
    def kw(self) -> float:
        return self.kw_each * self.count

    @property
    def efficiency_j_per_th(self) -> float:
        return self.kw_each * 1000 / self.ths_each if self.ths_each else math.inf

    def breakeven_usd_per_mwh(self, hashprice_usd_per_th_day: float) -> float:
        """The power price at which this group's miners earn exactly their power cost."""
        return breakeven_usd_per_mwh(self.ths_each, self.kw_each, hashprice_usd_per_th_day)


@dataclass(frozen=True)
class SiteModel:
    """What the plan and the real-time responder both obey.

    ``min_on_hours`` / ``min_off_hours``: a miner started stays on at least this long, one stopped stays
    off at least this long. ``ramp_kw_per_hour``: the most the site's load may change per hour (None: no
    limit). ``zone_capacity_kw``: zone → the most its running miners may draw."""

    groups: tuple[MinerGroup, ...]
    zone_capacity_kw: Mapping[str, float] = field(default_factory=dict)
    min_on_hours: float = 0.0
    min_off_hours: float = 0.0
    ramp_kw_per_hour: float | None = None

    def group(self, group_id: str) -> MinerGroup:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    @property
    def full_kw(self) -> float:
        return sum(g.kw for g in self.groups)

    def validate(self) -> None:
        if not self.groups:
            raise PlanError("empty", "groups", "the site has no miner groups")
        seen: set[str] = set()
        for g in self.groups:
            gd = {"group": g.id}
            if g.id in seen:
                raise PlanError("duplicate", "groups", f"group id {g.id!r} appears twice", details=gd)
            seen.add(g.id)
            for name in ("kw_each", "ths_each"):
                value = getattr(g, name)
                if not _finite(value):
                    raise PlanError("not_finite", "groups", f"{g.id}: {name} is not a number", details=gd)
            if g.kw_each <= 0:
                raise PlanError("out_of_range", "groups", f"{g.id}: kw_each must be > 0", details=gd)
            if g.ths_each < 0:
                raise PlanError("negative", "groups", f"{g.id}: ths_each must be ≥ 0", details=gd)
            if not isinstance(g.count, int) or g.count < 0:
                raise PlanError("out_of_range", "groups", f"{g.id}: count must be an integer ≥ 0", details=gd)
            if not isinstance(g.firm_count, int) or not 0 <= g.firm_count <= g.count:
                raise PlanError(
                    "out_of_range", "firm_count", f"{g.id}: firm_count must be within 0…{g.count}", details=gd
                )
        zones = {g.zone for g in self.groups}
        for zone, cap in self.zone_capacity_kw.items():
            zd = {"zone": zone}
            if zone not in zones:
                raise PlanError("unknown", "zone_capacity_kw", f"no group stands in zone {zone!r}", details=zd)
            if not _finite(cap):
                raise PlanError("not_finite", "zone_capacity_kw", f"zone {zone!r}: not a number", details=zd)
            if cap < 0:
                raise PlanError("negative", "zone_capacity_kw", f"zone {zone!r}: must be ≥ 0", details=zd)
        for name in ("min_on_hours", "min_off_hours"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise PlanError("out_of_range", name, "must be a number ≥ 0")
        if self.ramp_kw_per_hour is not None and (not _finite(self.ramp_kw_per_hour) or self.ramp_kw_per_hour < 0):
            raise PlanError("out_of_range", "ramp_kw_per_hour", "must be a number ≥ 0")


def breakeven_usd_per_mwh(ths_each: float, kw_each: float, hashprice_usd_per_th_day: float) -> float:
    """USD/MWh at which one miner's hourly revenue (TH/s × hashprice / 24) equals its power cost."""
    return ths_each * hashprice_usd_per_th_day / HOURS_PER_DAY / kw_each * 1000


# ---------------------------------------------------------------------------------------------------------
# Schedules and their figures


@dataclass(frozen=True)
class Schedule:
    """On-counts per group per interval and what they earn; ``violations`` lists broken constraints
    (always empty for the optimised plan; the baselines may break caps or durations)."""

    name: str
    group_ids: tuple[str, ...]
    on_counts: np.ndarray  # int, shape (groups, steps)
    power_kw: np.ndarray  # float, per step
    revenue_usd: tuple[Decimal, ...]  # per step, to the cent
    cost_usd: tuple[Decimal, ...]
    profit_usd: tuple[Decimal, ...]
    violations: tuple[str, ...] = ()

    @property
    def total_revenue_usd(self) -> Decimal:
        return sum(self.revenue_usd, Decimal(0))

    @property
    def total_cost_usd(self) -> Decimal:
        return sum(self.cost_usd, Decimal(0))

    @property
    def total_profit_usd(self) -> Decimal:
        """Exactly the sum of the per-interval profits shown (each rounded to the cent first)."""
        return sum(self.profit_usd, Decimal(0))

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "on_counts": {gid: self.on_counts[i].tolist() for i, gid in enumerate(self.group_ids)},
            "power_kw": [round(float(x), 3) for x in self.power_kw],
            "revenue_usd": [str(x) for x in self.revenue_usd],
            "cost_usd": [str(x) for x in self.cost_usd],
            "profit_usd": [str(x) for x in self.profit_usd],
            "total_revenue_usd": str(self.total_revenue_usd),
            "total_cost_usd": str(self.total_cost_usd),
            "total_profit_usd": str(self.total_profit_usd),
            "violations": list(self.violations),
        }


@dataclass(frozen=True)
class SolverReport:
    status: str  # CBC's own words ("Optimal solution found", "Stopped on time limit", …)
    optimal: bool  # proven optimal within gap_rel_limit
    runtime_s: float  # build + solve
    solve_s: float  # CBC alone, wall clock
    solve_cpu_s: float | None  # CBC's own CPU time (from its log): what it needs on an idle machine
    gap_rel: float | None  # the gap CBC reported (None when it printed none)
    gap_rel_limit: float
    time_limit_s: float
    variables: int
    constraints: int
    objective: float | None = None  # CBC's objective for the returned schedule (USD, before cent rounding)
    bound: float | None = None  # CBC's best bound: no schedule earns more (the gap is measured against it)
    # "milp": CBC alone; "milp_from_start": CBC started from the rounded relaxation (and kept it or found
    # better); "rounded_lp": CBC gave nothing back in the time limit, the start is returned against the LP bound.
    method: str = "milp"
    relaxations: int = 0  # LP relaxations solved to build the start
    # CBC stopped on its time limit (its status "Stopped on time limit"), or no time was left for its search.
    time_limited: bool = False


@dataclass(frozen=True)
class CurtailmentPlan:
    step_hours: float
    prices_usd_per_mwh: tuple[float, ...]
    hashprice_usd_per_th_day: tuple[float, ...]
    cap_kw: tuple[float, ...]  # the effective site cap per step (cap_kw and curtail_pct together)
    plan: Schedule
    run_all: Schedule
    threshold: Schedule
    solver: SolverReport

    @property
    def uplift_vs_run_all_usd(self) -> Decimal:
        return self.plan.total_profit_usd - self.run_all.total_profit_usd

    @property
    def uplift_vs_threshold_usd(self) -> Decimal:
        return self.plan.total_profit_usd - self.threshold.total_profit_usd

    def as_dict(self) -> dict:
        s = self.solver
        return {
            "step_hours": self.step_hours,
            "prices_usd_per_mwh": list(self.prices_usd_per_mwh),
            "hashprice_usd_per_th_day": list(self.hashprice_usd_per_th_day),
            "cap_kw": [None if math.isinf(c) else c for c in self.cap_kw],
            "plan": self.plan.as_dict(),
            "run_all": self.run_all.as_dict(),
            "threshold": self.threshold.as_dict(),
            "uplift_vs_run_all_usd": str(self.uplift_vs_run_all_usd),
            "uplift_vs_threshold_usd": str(self.uplift_vs_threshold_usd),
            "solver": {
                "status": s.status, "optimal": s.optimal, "runtime_s": round(s.runtime_s, 4),
                "solve_s": round(s.solve_s, 4), "solve_cpu_s": s.solve_cpu_s, "gap_rel": s.gap_rel,
                "gap_rel_limit": s.gap_rel_limit,
                "time_limit_s": s.time_limit_s, "variables": s.variables, "constraints": s.constraints,
                "objective": s.objective, "bound": s.bound, "method": s.method, "relaxations": s.relaxations,
                "time_limited": s.time_limited,
            },
        }  # fmt: skip


@dataclass(frozen=True)
class _Inputs:
    """Validated, per-step arrays."""

    steps: int
    step_hours: float
    prices: np.ndarray
    hashprice: np.ndarray
    cap: np.ndarray  # inf where none
    initial: np.ndarray  # int per group
    min_on: int  # intervals
    min_off: int
    ramp: float | None  # kW per step
    carry_up: np.ndarray  # (groups, steps): miners started before the horizon that may not stop yet in step t
    carry_down: np.ndarray  # (groups, steps): miners stopped before the horizon that may not start yet


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _series(name: str, value, steps: int, *, allow_negative: bool = False, optional: bool = False) -> np.ndarray:
    """A scalar (repeated) or one value per step, checked: finite, non-negative unless allowed."""
    if value is None:
        if optional:
            return np.full(steps, np.inf)
        raise PlanError("empty", name, "is required")
    if np.isscalar(value):
        arr = np.full(steps, value, dtype=float) if _finite(value) else None
        if arr is None:
            raise PlanError("not_finite", name, "is not a number")
    else:
        try:
            arr = np.asarray(list(value), dtype=float)
        except (TypeError, ValueError) as exc:
            raise PlanError("not_finite", name, "holds a value that is not a number") from exc
        if arr.ndim != 1 or len(arr) != steps:
            raise PlanError(
                "length_mismatch", name, f"has {len(arr)} values; the prices have {steps}",
                details={"expected": steps, "got": int(arr.size)},
            )  # fmt: skip
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise PlanError("not_finite", name, f"step {int(bad[0])} is not a number", details={"step": int(bad[0])})
    if not allow_negative:
        neg = np.flatnonzero(arr < 0)
        if neg.size:
            raise PlanError("negative", name, f"step {int(neg[0])} is negative", details={"step": int(neg[0])})
    return arr


def _intervals(hours: float, step_hours: float) -> int:
    return max(1, math.ceil(hours / step_hours - 1e-9))


def prepare(
    site: SiteModel,
    prices_usd_per_mwh,
    hashprice_usd_per_th_day,
    *,
    cap_kw=None,
    curtail_pct=None,
    initial_on: Mapping[str, int | GroupState] | None = None,
    step_hours: float = 1.0,
    allow_negative_prices: bool = False,
) -> _Inputs:
    """Check every input and bring it to one array per step; raise PlanError naming what is wrong."""
    site.validate()
    if not _finite(step_hours) or step_hours <= 0 or step_hours > 1:
        raise PlanError("out_of_range", "step_hours", "must be within (0, 1]")
    if prices_usd_per_mwh is None or np.isscalar(prices_usd_per_mwh):
        raise PlanError("empty", "prices_usd_per_mwh", "give one price per interval")
    prices_list = list(prices_usd_per_mwh)
    if not prices_list:
        raise PlanError("empty", "prices_usd_per_mwh", "no prices")
    steps = len(prices_list)
    if steps * step_hours > MAX_HORIZON_HOURS + 1e-9:
        raise PlanError(
            "out_of_range", "prices_usd_per_mwh", f"the horizon is at most {MAX_HORIZON_HOURS} h",
            details={"hours": steps * step_hours},
        )  # fmt: skip
    prices = _series("prices_usd_per_mwh", prices_list, steps, allow_negative=allow_negative_prices)
    hashprice = _series("hashprice_usd_per_th_day", hashprice_usd_per_th_day, steps)
    cap = _series("cap_kw", cap_kw, steps, optional=True)
    pct = _series("curtail_pct", curtail_pct, steps, optional=True)
    if curtail_pct is not None:
        over = np.flatnonzero(pct > 100)
        if over.size:
            raise PlanError(
                "out_of_range", "curtail_pct", f"step {int(over[0])} is above 100 %", details={"step": int(over[0])}
            )
        cap = np.minimum(cap, (1 - pct / 100) * site.full_kw)
    ids = [g.id for g in site.groups]
    initial = np.array([g.count for g in site.groups], dtype=int)
    carry_up = np.zeros((len(ids), steps), dtype=int)
    carry_down = np.zeros((len(ids), steps), dtype=int)
    for gid, value in (initial_on or {}).items():
        if gid not in ids:
            raise PlanError("unknown", "initial_on", f"no group {gid!r}", details={"group": gid})
        i, g = ids.index(gid), site.groups[ids.index(gid)]
        state = value if isinstance(value, GroupState) else GroupState(value)
        n = state.on_count
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= g.count:
            raise PlanError("out_of_range", "initial_on", f"{gid}: must be within 0…{g.count}", details={"group": gid})
        initial[i] = n
        for pairs, min_hours, carry, limit, what in (
            (state.started, site.min_on_hours, carry_up, n, "started"),
            (state.stopped, site.min_off_hours, carry_down, g.count - n, "stopped"),
        ):
            for ago, k in pairs:
                if not _finite(ago) or ago < 0 or isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise PlanError(
                        "out_of_range", "initial_on", f"{gid}: {what} holds a bad (hours ago, miners) pair",
                        details={"group": gid},
                    )  # fmt: skip
                blocked = math.ceil((min_hours - ago) / step_hours - 1e-9)  # steps it still may not switch back
                carry[i, : max(0, min(blocked, steps))] += k
            if carry[i, 0] > limit:
                raise PlanError(
                    "out_of_range", "initial_on", f"{gid}: more miners recently {what} than are now in that state",
                    details={"group": gid},
                )  # fmt: skip
    firm_kw = sum(g.kw_each * g.firm_count for g in site.groups)
    short = np.flatnonzero(cap < firm_kw - 1e-9)
    if short.size:
        t = int(short[0])
        name = "curtail_pct" if curtail_pct is not None and cap_kw is None else "cap_kw"
        raise PlanError(
            "infeasible", name,
            f"step {t}: the cap ({cap[t]:.1f} kW) is below the contracts' firm load ({firm_kw:.1f} kW)",
            details={"step": t, "cap_kw": float(cap[t]), "firm_kw": firm_kw},
        )  # fmt: skip
    for zone, zcap in site.zone_capacity_kw.items():
        zone_firm = sum(g.kw_each * g.firm_count for g in site.groups if g.zone == zone)
        if zcap < zone_firm - 1e-9:
            raise PlanError(
                "infeasible", "zone_capacity_kw",
                f"zone {zone!r}: capacity {zcap:.1f} kW is below its firm load {zone_firm:.1f} kW",
                details={"zone": zone},
            )  # fmt: skip
    ramp = None if site.ramp_kw_per_hour is None else site.ramp_kw_per_hour * step_hours
    return _Inputs(
        steps=steps,
        step_hours=float(step_hours),
        prices=prices,
        hashprice=hashprice,
        cap=cap,
        initial=initial,
        min_on=_intervals(site.min_on_hours, step_hours),
        min_off=_intervals(site.min_off_hours, step_hours),
        ramp=ramp,
        carry_up=carry_up,
        carry_down=carry_down,
    )


def _margins(site: SiteModel, x: _Inputs) -> np.ndarray:
    """USD one miner of each group earns net of power in each step: shape (groups, steps)."""
    ths = np.array([g.ths_each for g in site.groups])[:, None]
    kw = np.array([g.kw_each for g in site.groups])[:, None]
    return x.step_hours * (ths * x.hashprice[None, :] / HOURS_PER_DAY - kw * x.prices[None, :] / 1000)


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def figures(site: SiteModel, x: _Inputs, on_counts: np.ndarray, name: str) -> Schedule:
    """Revenue, cost and profit of a schedule, per step, in Decimal rounded to the cent (half-even).
    Each step's profit is its rounded revenue minus its rounded cost, so every total adds up exactly."""
    on_counts = np.asarray(on_counts, dtype=int)
    kw = np.array([g.kw_each for g in site.groups])
    ths = [_dec(g.ths_each) for g in site.groups]
    kws = [_dec(g.kw_each) for g in site.groups]
    h = _dec(x.step_hours)
    revenue, cost, profit = [], [], []
    for t in range(x.steps):
        hp, price = _dec(x.hashprice[t]), _dec(x.prices[t])
        ths_on = sum((ths[i] * int(on_counts[i, t]) for i in range(len(ths))), Decimal(0))
        kw_on = sum((kws[i] * int(on_counts[i, t]) for i in range(len(kws))), Decimal(0))
        r = (ths_on * hp / HOURS_PER_DAY * h).quantize(CENT, ROUND_HALF_EVEN)
        c = (kw_on * price / 1000 * h).quantize(CENT, ROUND_HALF_EVEN)
        revenue.append(r)
        cost.append(c)
        profit.append(r - c)
    power = (kw[:, None] * on_counts).sum(axis=0).astype(float)
    return Schedule(
        name=name,
        group_ids=tuple(g.id for g in site.groups),
        on_counts=on_counts,
        power_kw=power,
        revenue_usd=tuple(revenue),
        cost_usd=tuple(cost),
        profit_usd=tuple(profit),
        violations=tuple(violations(site, x, on_counts)),
    )


def _window_sums(a: np.ndarray, width: int) -> np.ndarray:
    """Sum over the last ``width`` steps, this one included, along axis 1."""
    c = np.concatenate([np.zeros((a.shape[0], 1), dtype=a.dtype), np.cumsum(a, axis=1)], axis=1)
    lagged = np.concatenate([np.zeros((a.shape[0], width), dtype=a.dtype), c[:, :-width]], axis=1)
    return (c - lagged[:, : c.shape[1]])[:, 1:]


def violations(site: SiteModel, x: _Inputs, on_counts: np.ndarray) -> list[str]:
    """The constraints a schedule breaks, one line each (empty: feasible). The reference definition of
    feasibility; the MILP encodes the same rules and the tests compare the two."""
    on = np.asarray(on_counts, dtype=int)
    out: list[str] = []
    kw = np.array([g.kw_each for g in site.groups])
    counts = np.array([g.count for g in site.groups])
    firm = np.array([g.firm_count for g in site.groups])
    for i, g in enumerate(site.groups):
        if (on[i] < firm[i]).any() or (on[i] > counts[i]).any():
            out.append(f"count: {g.id} outside firm_count…count")
    power = (kw[:, None] * on).sum(axis=0)
    for t in np.flatnonzero(power > x.cap + 1e-6):
        out.append(f"cap_kw: step {int(t)} draws {power[t]:.1f} kW > {x.cap[t]:.1f} kW")
    for zone, zcap in site.zone_capacity_kw.items():
        members = [i for i, g in enumerate(site.groups) if g.zone == zone]
        zpower = (kw[members, None] * on[members]).sum(axis=0)
        for t in np.flatnonzero(zpower > zcap + 1e-6):
            out.append(f"zone_capacity_kw: zone {zone} step {int(t)} draws {zpower[t]:.1f} kW > {zcap:.1f} kW")
    prev = np.concatenate([x.initial[:, None], on[:, :-1]], axis=1)
    delta = on - prev
    if x.ramp is not None:
        step_kw = (kw[:, None] * delta).sum(axis=0)
        for t in np.flatnonzero(np.abs(step_kw) > x.ramp + 1e-6):
            out.append(f"ramp_kw_per_hour: step {int(t)} changes {step_kw[t]:+.1f} kW")
    up, down = np.maximum(delta, 0), np.maximum(-delta, 0)
    started = _window_sums(up, x.min_on) + x.carry_up
    stopped = _window_sums(down, x.min_off) + x.carry_down
    for i, t in zip(*np.nonzero(started > on), strict=True):
        out.append(f"min_on_hours: {site.groups[i].id} step {int(t)}")
    for i, t in zip(*np.nonzero(stopped > counts[:, None] - on), strict=True):
        out.append(f"min_off_hours: {site.groups[i].id} step {int(t)}")
    levels = sorted({g.priority for g in site.groups})
    for t in range(x.steps):
        for p in levels[1:]:
            curtailed = any(on[i, t] < counts[i] for i, g in enumerate(site.groups) if g.priority == p)
            lower_on = any(on[i, t] > firm[i] for i, g in enumerate(site.groups) if g.priority < p)
            if curtailed and lower_on:
                out.append(f"priority: step {t} curtails priority {p} while a lower priority runs")
    return out


# ---------------------------------------------------------------------------------------------------------
# The day-ahead plan


def plan_curtailment(
    site: SiteModel,
    prices_usd_per_mwh: Sequence[float] | np.ndarray,
    hashprice_usd_per_th_day: float | Sequence[float] | np.ndarray,
    *,
    cap_kw: float | Sequence[float] | None = None,
    curtail_pct: float | Sequence[float] | None = None,
    initial_on: Mapping[str, int | GroupState] | None = None,
    step_hours: float = 1.0,
    allow_negative_prices: bool = False,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    gap_rel: float = DEFAULT_GAP_REL,
) -> CurtailmentPlan:
    """The most profitable on-count per group per interval that meets every constraint, next to running
    everything and to the breakeven rule (a group runs in an interval iff the price is at or below its
    breakeven; neither baseline is held to the constraints, their ``violations`` say what they break).

    ``prices_usd_per_mwh``: one per interval (1 to 168 h of them). Negative prices are refused unless
    ``allow_negative_prices`` (real markets have them; the API refuses them as the issue asks).
    ``hashprice_usd_per_th_day``: a scalar or one per interval. ``cap_kw`` / ``curtail_pct``: a scalar or
    one per interval; both may be given (the lower cap holds). ``initial_on``: group id → miners on before
    the first interval (default: all), as an int or as a :class:`GroupState` with the recent starts and stops
    (the same state the real-time responder takes), so a plan made mid-day honours minimum on/off times."""
    started = time.perf_counter()
    if not _finite(time_limit_s) or time_limit_s <= 0:
        raise PlanError("out_of_range", "time_limit_s", "must be > 0")
    if not _finite(gap_rel) or not 0 <= gap_rel < 1:
        raise PlanError("out_of_range", "gap_rel", "must be within [0, 1)")
    x = prepare(
        site, prices_usd_per_mwh, hashprice_usd_per_th_day, cap_kw=cap_kw, curtail_pct=curtail_pct,
        initial_on=initial_on, step_hours=step_hours, allow_negative_prices=allow_negative_prices,
    )  # fmt: skip
    margins = _margins(site, x)
    on, report = _plan(site, x, margins, time_limit_s=time_limit_s, gap_rel=gap_rel, started=started)
    report = SolverReport(**{**report.__dict__, "runtime_s": time.perf_counter() - started})
    counts = np.array([g.count for g in site.groups])
    all_on = np.repeat(counts[:, None], x.steps, axis=1)
    threshold = np.where(margins >= 0, counts[:, None], 0)
    return CurtailmentPlan(
        step_hours=x.step_hours,
        prices_usd_per_mwh=tuple(float(p) for p in x.prices),
        hashprice_usd_per_th_day=tuple(float(p) for p in x.hashprice),
        cap_kw=tuple(float(c) for c in x.cap),
        plan=figures(site, x, on, "plan"),
        run_all=figures(site, x, all_on, "run_all"),
        threshold=figures(site, x, threshold, "threshold"),
        solver=report,
    )


def _coupled(x: _Inputs) -> bool:
    """Whether one step's choice constrains the next (ramp, min on/off): else every step is its own problem."""
    return x.ramp is not None or x.min_on > 1 or x.min_off > 1 or bool(x.carry_up.any() or x.carry_down.any())


def _plan(
    site: SiteModel, x: _Inputs, margins: np.ndarray, *, time_limit_s: float, gap_rel: float, started: float
) -> tuple[np.ndarray, SolverReport]:
    """CBC on the whole horizon; when steps are coupled, it starts from the LP relaxation rounded into a
    schedule that meets every constraint (``_round``). Alone, CBC found no schedule for a week with a ramp
    limit, min on/off 2 h and contract priorities within 10 s (bench/optimizer.py, "hard"); from the start
    it only has to improve one, and the relaxation's optimum bounds what any schedule can earn."""
    if not _coupled(x):
        result = _solve(site, x, margins, time_limit_s=time_limit_s, gap_rel=gap_rel)
        if result is None:
            _diagnose(site, x, margins, time_limit_s=time_limit_s)
        return result
    deadline = started + time_limit_s
    model = _build(site, x, margins)
    pass_start = time.perf_counter()
    limit = max(time_limit_s, MIN_SOLVE_S)  # an LP: it finishes long before (its time is counted below)
    relaxed = _solve(site, x, margins, time_limit_s=limit, gap_rel=gap_rel, model=model, relax=True)
    pass_s = time.perf_counter() - pass_start  # one CBC run's overhead: writing the model, reading the answer
    if relaxed is None:  # not even the relaxation is feasible: neither is the plan
        _diagnose(site, x, margins, time_limit_s=time_limit_s)
    lp, lp_report = relaxed
    start = _round(site, x, margins, lp)
    cpu_lp, wall_lp, relaxations = lp_report.solve_cpu_s, lp_report.solve_s, 1
    # The relaxation cuts a priority level by fractions that no schedule can follow, so its rounding loses
    # ~3 % on the hard week; fixing each level's curtail/not decision to the rounded schedule's and solving
    # the relaxation again gives counts that round almost without loss (2.7 % → 0.8 % below the bound).
    for _ in range(ROUNDING_PASSES if model.cuts else 0):
        if start is None or time.perf_counter() + pass_s > started + ROUNDING_SHARE * time_limit_s:
            break
        for level, ys in model.cuts:
            for t, y in enumerate(ys):
                y.lowBound = y.upBound = int(any(start[i, t] < site.groups[i].count for i in level))
        try:
            limit = max(deadline - time.perf_counter(), MIN_SOLVE_S)
            again = _solve(site, x, margins, time_limit_s=limit, gap_rel=gap_rel, model=model, relax=True)
        finally:
            for _, ys in model.cuts:
                for y in ys:
                    y.lowBound, y.upBound = 0, 1
        if again is None:
            break
        cpu_lp, wall_lp, relaxations = _add(cpu_lp, again[1].solve_cpu_s), wall_lp + again[1].solve_s, relaxations + 1
        better = _round(site, x, margins, again[0])
        if better is None or float((margins * better).sum()) <= float((margins * start).sum()) + 1e-6:
            break
        start = better
    remaining = deadline - time.perf_counter() - pass_s
    result = None
    if start is None or remaining >= MIN_SOLVE_S:  # else CBC could not even read the start in time
        try:
            limit = max(remaining, MIN_SOLVE_S)
            result = _solve(site, x, margins, time_limit_s=limit, gap_rel=gap_rel, model=model, start=start)
        except PlanError:
            if start is None:
                raise
    if result is None and start is None:
        _diagnose(site, x, margins, time_limit_s=time_limit_s)
    if start is not None:
        start_value = float((margins * start).sum())
    if result is not None:
        on, report = result
        report = SolverReport(
            **{**report.__dict__, "solve_cpu_s": _add(report.solve_cpu_s, cpu_lp), "solve_s": report.solve_s + wall_lp,
               "relaxations": relaxations}
        )  # fmt: skip
        if start is None:
            return on, report
        if float((margins * on).sum()) >= start_value - 1e-9 and not violations(site, x, on):
            return on, SolverReport(**{**report.__dict__, "method": "milp_from_start"})
        bound = report.bound  # CBC returned something worse than its start (not expected): keep the start
    else:  # no time left for CBC, or it gave nothing back: the start, measured against the LP bound
        report = SolverReport(
            status=f"{TIME_LIMIT_STATUS} (the rounded relaxation; no time for CBC's search)", optimal=False,
            runtime_s=0.0, solve_s=wall_lp, solve_cpu_s=cpu_lp,
            gap_rel=None, gap_rel_limit=gap_rel, time_limit_s=time_limit_s, variables=lp_report.variables,
            constraints=lp_report.constraints, relaxations=relaxations, time_limited=True,
        )  # fmt: skip
        bound = None
    if bound is None or (lp_report.objective is not None and lp_report.objective < bound):
        bound = lp_report.objective
    gap = None if bound is None else max(bound - start_value, 0.0) / max(abs(start_value), 1e-9)
    return start, SolverReport(
        **{**report.__dict__, "method": "rounded_lp", "objective": start_value, "bound": bound, "gap_rel": gap,
           "optimal": gap is not None and gap <= gap_rel}
    )  # fmt: skip


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None and b is None else (a or 0.0) + (b or 0.0)


def _envelope(x: _Inputs, slack_kw: float) -> np.ndarray:
    """The most the site may draw in each step and still ramp down to every later cap in time, at the ramp
    limit less ``slack_kw`` (whole miners overshoot a kW target by less than one miner's draw)."""
    out = x.cap.copy()
    if x.ramp is not None:
        for t in range(x.steps - 2, -1, -1):
            out[t] = min(out[t], out[t + 1] + max(x.ramp - slack_kw, 0.0))
    return out


def _round(site: SiteModel, x: _Inputs, margins: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """A schedule near ``target`` (the LP relaxation's on-counts) that meets every constraint, made step by
    step: stops first (lowest contract priority, then least profitable, first; as many as the ramp and the
    caps ahead need), then starts (highest priority, most profitable first). A start is allowed only where
    the site's load stays under every cap within the coming min-on time, reachable at the ramp limit; so a
    miner that may not stop yet never has to. None when some step cannot be met (then CBC is on its own).
    Every schedule it returns passes ``violations``."""
    n = len(site.groups)
    kw = np.array([g.kw_each for g in site.groups])
    count = np.array([g.count for g in site.groups])
    firm = np.array([g.firm_count for g in site.groups])
    prio = np.array([g.priority for g in site.groups])
    zones = [(np.array([g.zone == z for g in site.groups]), float(c)) for z, c in site.zone_capacity_kw.items()]
    ramp = math.inf if x.ramp is None else float(x.ramp)
    env = _envelope(x, float(kw.max()))
    safe = np.array([env[t : t + x.min_on].min() for t in range(x.steps)])
    on = np.zeros((n, x.steps), dtype=int)
    up, down = np.zeros_like(on), np.zeros_like(on)
    prev = x.initial.astype(int)

    def may_stop(v: np.ndarray, i: int) -> bool:  # priority: only when every lower one is down to its firm count
        lower = prio < prio[i]
        return bool((v[lower] <= firm[lower]).all())

    for t in range(x.steps):
        young = x.carry_up[:, t] + up[:, max(0, t - x.min_on + 1) : t].sum(axis=1)
        rested = x.carry_down[:, t] + down[:, max(0, t - x.min_off + 1) : t].sum(axis=1)
        lo, hi = np.maximum(firm, young), count - rested
        want = np.clip(np.rint(target[:, t]).astype(int), lo, hi)
        v = prev.copy()
        before = float(kw @ prev)
        ceiling = min(env[t], before + ramp)

        stop_order = sorted(range(n), key=lambda i: (prio[i], margins[i, t]))
        for i in stop_order:  # the stops the target asks for, within the ramp
            k = v[i] - want[i]
            if math.isfinite(ramp):
                k = min(k, int((float(kw @ v) - before + ramp) // kw[i] + 1e-9))
            if k > 0 and may_stop(v, i):
                v[i] -= k
        for i in stop_order:  # the stops the cap (and the caps ahead) need
            excess = float(kw @ v) - ceiling
            if excess <= 1e-9:
                break
            k = min(v[i] - lo[i], math.ceil(excess / kw[i] - 1e-9))
            if k > 0 and may_stop(v, i):
                v[i] -= k
        for mask, zcap in zones:
            for i in stop_order:
                excess = float(kw[mask] @ v[mask]) - zcap
                if excess <= 1e-9:
                    break
                k = min(v[i] - lo[i], math.ceil(excess / kw[i] - 1e-9)) if mask[i] else 0
                if k > 0 and may_stop(v, i):
                    v[i] -= k
        room = min(ceiling, safe[t]) - float(kw @ v)
        room = room if math.isfinite(room) else float(kw @ count)
        for i in sorted(range(n), key=lambda i: (-prio[i], -margins[i, t])):
            higher = prio > prio[i]
            if want[i] <= v[i] or not (v[higher] >= count[higher]).all():
                continue
            k = min(want[i] - v[i], int(room // kw[i] + 1e-9))
            for mask, zcap in zones:
                if mask[i]:
                    k = min(k, int((zcap - float(kw[mask] @ v[mask])) // kw[i] + 1e-9))
            if k > 0:
                v[i] += k
                room -= k * kw[i]
        on[:, t] = v
        up[:, t], down[:, t] = np.maximum(v - prev, 0), np.maximum(prev - v, 0)
        prev = v
    return None if violations(site, x, on) else on


_RELAXABLE = ("ramp_kw_per_hour", "min_on_hours", "min_off_hours", "zone_capacity_kw", "priority")


def _diagnose(site: SiteModel, x: _Inputs, margins: np.ndarray, *, time_limit_s: float) -> None:
    """CBC found no schedule: name the first constraint family whose removal makes the plan feasible."""
    for name in _RELAXABLE:
        try:
            relaxed = _solve(site, x, margins, time_limit_s=min(time_limit_s, 5.0), gap_rel=0.5, drop=frozenset({name}))
        except PlanError:  # CBC settled nothing in its time: this family is not named, the plan is still infeasible
            continue
        if relaxed is not None:
            message = f"no schedule meets {name} together with the caps and the other constraints"
            details: dict = {}
            if name == "ramp_kw_per_hour":
                start_kw = float(sum(g.kw_each * n for g, n in zip(site.groups, x.initial, strict=True)))
                reachable = np.maximum(start_kw - x.ramp * np.arange(1, x.steps + 1), 0)
                late = np.flatnonzero(x.cap < reachable - 1e-9)
                if late.size:
                    t = int(late[0])
                    message = (
                        f"step {t}: the cap ({x.cap[t]:.1f} kW) cannot be reached from {start_kw:.1f} kW "
                        f"at {x.ramp:.1f} kW per step"
                    )
                    details = {"step": t}
            raise PlanError("infeasible", name, message, details=details)
    raise PlanError("infeasible", "cap_kw", "no schedule meets the caps with these constraints")


@dataclass
class _Model:
    """The MILP as PuLP holds it, with the variables a start or a relaxation needs to reach."""

    prob: object
    on: list  # [group][step]
    flows: list  # [(group, up[step], down[step])]
    cuts: list  # [(level members, y[step])]
    integers: list


def _build(site: SiteModel, x: _Inputs, margins: np.ndarray, drop: frozenset[str] = frozenset()) -> _Model:
    import pulp

    groups, steps = site.groups, x.steps
    prob = pulp.LpProblem("curtailment", pulp.LpMaximize)
    on = [
        [prob.add_variable(f"on_{i}_{t}", g.firm_count, g.count, cat=pulp.LpInteger) for t in range(steps)]
        for i, g in enumerate(groups)
    ]
    model = _Model(prob, on, [], [], [v for row in on for v in row])
    prob.setObjective(
        pulp.LpAffineExpression([(on[i][t], float(margins[i, t])) for i in range(len(groups)) for t in range(steps)])
    )
    kw = [g.kw_each for g in groups]
    n = len(groups)
    expression, constraint = pulp.LpAffineExpression, pulp.LpConstraint
    le, eq = pulp.LpConstraintLE, pulp.LpConstraintEQ

    # Each constraint from its (variable, coefficient) list in one call: PuLP's operators (a − b ≤ c) copy the
    # expression at every step, which made building the hard week's model cost more than CBC's LP (a tenth
    # of the rows here; the same model: the MPS files of bench/optimizer.py's nine scenarios were identical).
    def add(terms: list, sense: int, rhs: float, name: str, constant: float = 0) -> None:
        prob.addConstraint(constraint(expression(terms, constant=constant), sense, name, rhs))

    for t in range(steps):
        if math.isfinite(x.cap[t]):
            add([(on[i][t], kw[i]) for i in range(n)], le, float(x.cap[t]), f"cap_{t}")
    if "zone_capacity_kw" not in drop:
        for z, (zone, zcap) in enumerate(site.zone_capacity_kw.items()):
            members = [i for i, g in enumerate(groups) if g.zone == zone]
            for t in range(steps):
                add([(on[i][t], kw[i]) for i in members], le, float(zcap), f"zone_{z}_{t}")

    def change(i: int, t: int, coefficient: float = 1) -> tuple[list, float]:
        """on[i][t] − on[i][t − 1] (the initial count before the horizon) × coefficient: terms and constant."""
        if t == 0:
            return [(on[i][0], coefficient)], -coefficient * int(x.initial[i])
        return [(on[i][t], coefficient), (on[i][t - 1], -coefficient)], 0

    if x.ramp is not None and "ramp_kw_per_hour" not in drop:
        for t in range(steps):
            terms, constant = [], 0
            for i in range(n):
                part, c = change(i, t, kw[i])
                terms += part
                constant += c
            add(terms, le, x.ramp, f"ramp_up_{t}", constant)
            add(list(terms), pulp.LpConstraintGE, -x.ramp, f"ramp_down_{t}", constant)
    min_on = 1 if "min_on_hours" in drop else x.min_on
    min_off = 1 if "min_off_hours" in drop else x.min_off
    carry_up = 0 * x.carry_up if "min_on_hours" in drop else x.carry_up
    carry_down = 0 * x.carry_down if "min_off_hours" in drop else x.carry_down
    if min_on > 1 or min_off > 1 or carry_up.any() or carry_down.any():
        for i, g in enumerate(groups):
            up = [prob.add_variable(f"up_{i}_{t}", 0, g.count) for t in range(steps)]
            down = [prob.add_variable(f"down_{i}_{t}", 0, g.count) for t in range(steps)]
            model.flows.append((i, up, down))
            for t in range(steps):
                terms, constant = change(i, t)
                add([*terms, (up[t], -1), (down[t], 1)], eq, 0, f"flow_{i}_{t}", constant)
                if min_on > 1 or carry_up[i, t]:  # started in the window (or before the horizon) stay on
                    window = up[max(0, t - min_on + 1) : t + 1]
                    add([*((u, 1) for u in window), (on[i][t], -1)], le, -int(carry_up[i, t]), f"minon_{i}_{t}")
                if min_off > 1 or carry_down[i, t]:
                    window = down[max(0, t - min_off + 1) : t + 1]
                    limit = g.count - int(carry_down[i, t])
                    add([*((d, 1) for d in window), (on[i][t], 1)], le, limit, f"minoff_{i}_{t}")
    levels = sorted({g.priority for g in groups})
    if len(levels) > 1 and "priority" not in drop:
        for p in levels[1:]:
            level = [i for i, g in enumerate(groups) if g.priority == p]
            lower = [i for i, g in enumerate(groups) if g.priority < p]
            ys = []
            for t in range(steps):
                y = prob.add_variable(f"cut_{p}_{t}".replace("-", "m"), 0, 1, cat=pulp.LpBinary)
                ys.append(y)
                for i in level:  # count − on ≤ count · y: a miner of level p is off only if y = 1
                    add([(on[i][t], -1), (y, -groups[i].count)], le, -groups[i].count, f"lvl_{i}_{t}")
                for i in lower:  # on ≤ firm + (count − firm)(1 − y): then every lower miner not firm is off
                    spare = groups[i].count - groups[i].firm_count
                    add([(on[i][t], 1), (y, spare)], le, groups[i].count, f"low_{p}_{i}_{t}")
            model.cuts.append((level, ys))
            model.integers.extend(ys)
    return model


def _solve(
    site: SiteModel,
    x: _Inputs,
    margins: np.ndarray,
    *,
    time_limit_s: float,
    gap_rel: float,
    drop: frozenset[str] = frozenset(),
    model: _Model | None = None,
    start: np.ndarray | None = None,
    relax: bool = False,
) -> tuple[np.ndarray, SolverReport] | None:
    """CBC on the MILP (``model``, or one built here); None when it proves the constraints infeasible.
    ``start``: a schedule that meets every constraint, handed to CBC as its first incumbent (a MIP start).
    ``relax``: the LP relaxation instead (fractional on-counts; its optimum bounds every schedule's)."""
    import pulp

    model = model or _build(site, x, margins, drop)
    prob, on = model.prob, model.on
    groups, steps = site.groups, x.steps
    for v in model.integers:
        v.cat = pulp.LpContinuous if relax else pulp.LpInteger
    if start is not None:
        prev = np.concatenate([x.initial[:, None], start[:, :-1]], axis=1)
        for i in range(len(groups)):
            for t in range(steps):
                on[i][t].setInitialValue(int(start[i, t]))
        for i, up, down in model.flows:
            for t in range(steps):
                up[t].setInitialValue(max(0, int(start[i, t] - prev[i, t])))
                down[t].setInitialValue(max(0, int(prev[i, t] - start[i, t])))
        for level, ys in model.cuts:
            for t, y in enumerate(ys):
                y.setInitialValue(int(any(start[i, t] < groups[i].count for i in level)))

    with tempfile.TemporaryDirectory(prefix="optex-") as tmp:
        log = os.path.join(tmp, "cbc.log")
        with warnings.catch_warnings():
            # PuLP 3.3 warns that 4.0 moves the bundled CBC to an extra; we pin 3.3 and use the bundled one.
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(
                msg=False, timeLimit=time_limit_s, gapRel=gap_rel, logPath=log, keepFiles=False, options=CBC_OPTIONS,
                warmStart=start is not None,
            )  # fmt: skip
        solve_start = time.perf_counter()
        try:
            prob.solve(solver)
        except pulp.PulpSolverError as exc:
            raise PlanError("solver_failed", "solver", f"CBC failed: {exc}") from exc
        solve_s = time.perf_counter() - solve_start
        text = open(log, encoding="utf-8", errors="replace").read() if os.path.exists(log) else ""  # noqa: SIM115
    if prob.status == pulp.LpStatusInfeasible:
        return None
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        if "infeasible" in text.lower():
            return None
        raise PlanError(
            "solver_failed", "solver", f"CBC found no schedule within {time_limit_s} s ({pulp.LpStatus[prob.status]})"
        )
    values = np.array([[on[i][t].value() or 0.0 for t in range(steps)] for i in range(len(groups))])
    if not relax:
        values = np.rint(values).astype(int)
    status_line = re.search(r"^Result - (.+)$", text, re.M)
    objective = re.search(r"^Objective value:\s+([-0-9.eE+]+)", text, re.M)
    bound = re.search(r"^(?:Upper|Lower) bound:\s+([-0-9.eE+]+)", text, re.M)
    gap = re.search(r"^Gap:\s+([-0-9.eE+]+)", text, re.M)  # printed to two decimals only: a fallback
    cpu = re.search(r"^Total time \(CPU seconds\):\s+([0-9.eE+]+)", text, re.M)
    status = status_line.group(1).strip() if status_line else pulp.LpStatus[prob.status]
    value = float((margins * values).sum())
    report = SolverReport(
        status=status,
        optimal=prob.sol_status == pulp.LpSolutionOptimal,
        runtime_s=0.0,
        solve_s=solve_s,
        solve_cpu_s=float(cpu.group(1)) if cpu else None,
        gap_rel=_gap(objective, bound, gap, status),
        gap_rel_limit=gap_rel,
        time_limit_s=time_limit_s,
        variables=prob.numVariables(),
        constraints=prob.numConstraints(),
        objective=value if relax or not objective else float(objective.group(1)),
        bound=value if relax else _bound(bound, objective, status),
        time_limited=status.startswith(TIME_LIMIT_STATUS),
    )
    return values, report


def _bound(bound, objective, status: str) -> float | None:
    """CBC's best bound; a proven optimum (no bound line printed) is its own bound."""
    if bound:
        return float(bound.group(1))
    return float(objective.group(1)) if objective and status == "Optimal solution found" else None


def _gap(objective, bound, printed, status: str) -> float | None:
    """The relative gap from CBC's objective and bound lines (its own "Gap:" line has two decimals only)."""
    if objective and bound:
        obj, best = float(objective.group(1)), float(bound.group(1))
        return abs(best - obj) / max(abs(obj), 1e-9)
    if printed:
        return abs(float(printed.group(1)))
    return 0.0 if status == "Optimal solution found" else None


# ---------------------------------------------------------------------------------------------------------
# The real-time responder's decision (4b)


@dataclass(frozen=True)
class GroupState:
    """A group right now: miners on, and the switches of the recent past as (hours ago, miners) pairs
    (only those within the longer of min on / min off matter)."""

    on_count: int
    started: tuple[tuple[float, int], ...] = ()
    stopped: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class GroupAction:
    group_id: str
    from_on: int
    to_on: int
    reason: str
    forced: bool = False  # the cap made this move even though min on or the ramp limit forbade it

    @property
    def change(self) -> int:
        return self.to_on - self.from_on


@dataclass(frozen=True)
class RealtimeDecision:
    on_counts: dict[str, int]
    actions: tuple[GroupAction, ...]  # only groups that change
    power_kw: float
    cap_kw: float
    unmet_cap_kw: float  # > 0 only when even forced moves cannot reach the cap (firm contracts)
    held: tuple[str, ...]  # why some wanted moves were not made (min on/off, ramp)


def respond_realtime(
    site: SiteModel,
    *,
    state: Mapping[str, GroupState],
    price_usd_per_mwh: float,
    breakeven_usd_per_mwh: Mapping[str, float],
    cap_kw: float | None = None,
    interval_hours: float = 0.25,
    hysteresis_usd_per_mwh: float = 0.0,
) -> RealtimeDecision:
    """Which groups to curtail or restore now that a new real-time price is known.

    A group wants to be entirely off when the price is above its breakeven plus the hysteresis, entirely on
    when below its breakeven minus the hysteresis, and stays as it is in between. Then, in this order:
    (1) contract priority and firm counts shape the wanted counts; (2) min on/off durations limit each
    group to the miners that may switch (started less than min-on ago may not stop; stopped less than
    min-off ago may not start); (3) the ramp limit (kW per hour × ``interval_hours``) is spent on the moves
    worth most per kW first; (4) ``cap_kw`` (the plan's cap for this hour) is then enforced least-efficient
    first within contract priority, and a move the cap forces is made even against min-on or the ramp and
    marked ``forced`` — a demand-response cap is a commitment, a minimum run time is wear protection.
    """
    if not _finite(price_usd_per_mwh):
        raise PlanError("not_finite", "price_usd_per_mwh", "is not a number")
    site.validate()
    cap = math.inf if cap_kw is None else float(cap_kw)
    if not _finite(interval_hours) or interval_hours <= 0:
        raise PlanError("out_of_range", "interval_hours", "must be > 0")
    if not _finite(hysteresis_usd_per_mwh) or hysteresis_usd_per_mwh < 0:
        raise PlanError("out_of_range", "hysteresis_usd_per_mwh", "must be a number ≥ 0")
    if cap < 0 or math.isnan(cap):
        raise PlanError("negative", "cap_kw", "must be ≥ 0")
    current: dict[str, int] = {}
    for g in site.groups:
        gd = {"group": g.id}
        if g.id not in state:
            raise PlanError("unknown", "state", f"no state for group {g.id!r}", details=gd)
        if g.id not in breakeven_usd_per_mwh or not _finite(breakeven_usd_per_mwh[g.id]):
            raise PlanError("unknown", "breakeven_usd_per_mwh", f"no breakeven for {g.id!r}", details=gd)
        n = state[g.id].on_count
        if not 0 <= n <= g.count:
            raise PlanError("out_of_range", "state", f"{g.id}: on_count outside 0…{g.count}", details=gd)
        current[g.id] = n

    h = hysteresis_usd_per_mwh
    wanted: dict[str, int] = {}
    for g in site.groups:
        be = breakeven_usd_per_mwh[g.id]
        if price_usd_per_mwh > be + h:
            wanted[g.id] = g.firm_count
        elif price_usd_per_mwh < be - h:
            wanted[g.id] = g.count
        else:
            wanted[g.id] = current[g.id]
    # Priority: a firmer group is cut only when every group below it is down to its firm count.
    for g in site.groups:
        below = (o for o in site.groups if o.priority < g.priority)
        if wanted[g.id] < g.count and any(wanted[o.id] > o.firm_count for o in below):
            wanted[g.id] = g.count

    def stoppable(g: MinerGroup) -> int:
        young = sum(n for ago, n in state[g.id].started if ago < site.min_on_hours)
        return max(0, min(current[g.id] - g.firm_count, current[g.id] - young))

    def startable(g: MinerGroup) -> int:
        young = sum(n for ago, n in state[g.id].stopped if ago < site.min_off_hours)
        return max(0, g.count - current[g.id] - young)

    held: list[str] = []
    target = dict(current)
    moves = []  # (value per kW, group, change)
    for g in site.groups:
        d = wanted[g.id] - current[g.id]
        if d < 0:
            allowed = min(-d, stoppable(g))
            if allowed < -d:
                held.append(f"min_on_hours: {g.id} keeps {-d - allowed} on")
            if allowed:
                moves.append((abs(price_usd_per_mwh - breakeven_usd_per_mwh[g.id]), g, -allowed))
        elif d > 0:
            allowed = min(d, startable(g))
            if allowed < d:
                held.append(f"min_off_hours: {g.id} keeps {d - allowed} off")
            if allowed:
                moves.append((abs(price_usd_per_mwh - breakeven_usd_per_mwh[g.id]), g, allowed))
    ramp_left = math.inf if site.ramp_kw_per_hour is None else site.ramp_kw_per_hour * interval_hours
    net = 0.0  # the ramp limits the net change of the site's load, as in the plan
    for _, g, n in sorted(moves, key=lambda m: -m[0]):
        step = n * g.kw_each
        if abs(net + step) <= ramp_left + 1e-9:
            target[g.id] += n
            net += step
            continue
        room = ramp_left - net if n > 0 else ramp_left + net
        k = int(max(0.0, room) // g.kw_each + 1e-9)
        k = min(k, abs(n))
        target[g.id] += k if n > 0 else -k
        net += (k if n > 0 else -k) * g.kw_each
        held.append(f"ramp_kw_per_hour: {g.id} moves {k} of {abs(n)}")

    forced: set[str] = set()
    power = sum(g.kw_each * target[g.id] for g in site.groups)
    if power > cap + 1e-9:
        # Least contract priority first, then least efficient first.
        for g in sorted(site.groups, key=lambda g: (g.priority, -g.efficiency_j_per_th)):
            if power <= cap + 1e-9:
                break
            spare = target[g.id] - g.firm_count
            k = min(spare, math.ceil((power - cap) / g.kw_each - 1e-9))
            if k > 0:
                target[g.id] -= k
                power -= k * g.kw_each
                forced.add(g.id)
    net_change = sum(g.kw_each * (target[g.id] - current[g.id]) for g in site.groups)
    ramp_broken = abs(net_change) > ramp_left + 1e-9
    actions = []
    for g in site.groups:
        if target[g.id] == current[g.id]:
            continue
        be = breakeven_usd_per_mwh[g.id]
        side = ">" if target[g.id] < current[g.id] else "<"
        why = f"price {price_usd_per_mwh:.2f} {side} breakeven {be:.2f} $/MWh"
        is_forced = False
        if g.id in forced:
            why = f"cap {cap:.1f} kW"
            is_forced = current[g.id] - target[g.id] > stoppable(g) or ramp_broken
        actions.append(GroupAction(g.id, current[g.id], target[g.id], why, forced=is_forced))
    return RealtimeDecision(
        on_counts=target,
        actions=tuple(actions),
        power_kw=power,
        cap_kw=cap,
        unmet_cap_kw=max(0.0, power - cap),
        held=tuple(held),
    )
