"""Why profit (and ROI) changed between two periods: exact Shapley values over four market factors (no Django).

The model of a period's profit (USD)::

    profit = days × (1 − offline_rate) × (fleet TH/s × hashprice × (1 − pool fee) − fleet kW × 24 × power price)
             − other costs
    hashprice = intelligence.algorithms.hashprice.hashprice_usd_per_th_day(BTC price, difficulty, subsidy, fees)

An offline miner neither earns nor draws power. The four factors are the BTC price, the difficulty, the offline
rate and the power price. ``v(S)`` is the modelled profit with the factors in ``S`` at the new period's values and
everything else at the old period's; each factor's part is its Shapley value over all 16 coalitions (the same as
averaging its marginal effect over all 24 orders of switching the factors), so the four parts add up to
``v(all four) − v(none)`` and the interaction of, say, a price rise with a difficulty rise is shared evenly,
not given to whichever factor happens to be evaluated first.

Two parts close the account so that everything sums to the actual change:

- ``fees``: the effect of the change in fees per block, evaluated at the new price, difficulty, offline rate and
  power price;
- ``residual``: everything else — fleet size and efficiency, the block subsidy (a halving lands here), the
  number of days, the pool fee, other costs, and the gap between the model and the measured profit when the
  caller gives ``actual_profit_usd``.

Exactness: all arithmetic is on ``fractions.Fraction`` (Decimal inputs convert exactly; the hashprice formula
uses integer constants only), so the exact parts add up to the exact change with no error at all. Only the
shown figures are rounded, to the cent: the profits before and after are rounded half-even, and the change
shown is their difference, so "after − before" on the page is exactly the change. Each part is rounded
half-even too, and the cents that the rounded parts lack (or have in excess) against that change — a few at
most — go one each to the parts whose rounding moved them furthest the other way. So the shown parts add up
exactly to the shown change and each stays within one cent of its exact value. ROI parts (percentage points,
to 0.0001) are rounded the same way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from fractions import Fraction

from intelligence.algorithms.hashprice import hashprice_usd_per_th_day

FACTORS = ("btc_price", "difficulty", "offline_rate", "power_price")
PARTS = (*FACTORS, "fees", "residual")
# Which PeriodInputs field each factor moves.
FACTOR_FIELDS = {
    "btc_price": "btc_price_usd",
    "difficulty": "difficulty",
    "offline_rate": "offline_rate",
    "power_price": "power_price_usd_per_kwh",
}
CENT = Decimal("0.01")
ROI_QUANTUM = Decimal("0.0001")  # percentage points


class ExplainError(ValueError):
    """Input the attribution cannot use; ``field`` names it (the API maps this to a 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.code = "invalid_input"
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PeriodInputs:
    """One period's averages (money in Decimal, USD; the power price in USD per kWh)."""

    days: Decimal
    btc_price_usd: Decimal
    difficulty: Decimal
    offline_rate: Decimal  # share of fleet-time offline, 0…1
    power_price_usd_per_kwh: Decimal
    fees_btc_per_block: Decimal
    block_subsidy_btc: Decimal
    fleet_ths: Decimal
    fleet_kw: Decimal
    pool_fee_pct: Decimal = Decimal(0)
    other_costs_usd: Decimal = Decimal(0)
    capex_usd: Decimal | None = None  # the investment ROI is measured against
    actual_profit_usd: Decimal | None = None  # measured; None: the modelled profit is the actual one

    def validate(self, label: str) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            try:
                ok = math.isfinite(value)
            except TypeError:
                ok = False
            if not ok or isinstance(value, float):
                raise ExplainError(f"{label}.{f.name}", "must be a finite Decimal or int")
        positive = ("days", "btc_price_usd", "difficulty")
        non_negative = (
            "power_price_usd_per_kwh", "fees_btc_per_block", "block_subsidy_btc", "fleet_ths", "fleet_kw",
            "other_costs_usd",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ExplainError(f"{label}.{name}", "must be greater than zero")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ExplainError(f"{label}.{name}", "must not be negative")
        if not 0 <= self.offline_rate <= 1:
            raise ExplainError(f"{label}.offline_rate", "must be within 0…1")
        if not 0 <= self.pool_fee_pct < 100:
            raise ExplainError(f"{label}.pool_fee_pct", "must be within 0…100")
        if self.capex_usd is not None and self.capex_usd <= 0:
            raise ExplainError(f"{label}.capex_usd", "must be greater than zero")


def modelled_profit(p: PeriodInputs) -> Fraction:
    """The period's profit by the model above, exactly."""
    q = {f.name: Fraction(getattr(p, f.name)) for f in fields(p) if getattr(p, f.name) is not None}
    hp = hashprice_usd_per_th_day(q["btc_price_usd"], q["difficulty"], q["block_subsidy_btc"], q["fees_btc_per_block"])
    revenue_day = q["fleet_ths"] * hp * (1 - q["pool_fee_pct"] / 100)
    cost_day = q["fleet_kw"] * 24 * q["power_price_usd_per_kwh"]
    return q["days"] * (1 - q["offline_rate"]) * (revenue_day - cost_day) - q["other_costs_usd"]


def shapley_values(players: Sequence[Hashable], value: Callable[[frozenset], Fraction]) -> dict[Hashable, Fraction]:
    """Exact Shapley values: φ_i = Σ_{S ⊆ N∖{i}} |S|! (n−|S|−1)! / n! · (v(S ∪ {i}) − v(S)).

    ``value`` is called once per coalition (2ⁿ calls; n = 4 here) and must return exact numbers."""
    n = len(players)
    v = {frozenset(s): Fraction(value(frozenset(s))) for k in range(n + 1) for s in itertools.combinations(players, k)}
    total = math.factorial(n)
    out = {}
    for i in players:
        others = [p for p in players if p != i]
        phi = Fraction(0)
        for k in range(n):
            weight = Fraction(math.factorial(k) * math.factorial(n - k - 1), total)
            for s in itertools.combinations(others, k):
                s = frozenset(s)
                phi += weight * (v[s | {i}] - v[s])
        out[i] = phi
    return out


def round_preserving_sum(parts: dict[str, Fraction], target: Decimal, quantum: Decimal) -> dict[str, Decimal]:
    """Round ``parts`` to ``quantum`` so that they add up to ``target`` exactly (``target`` is within a quantum
    or two of their exact sum: the difference of two rounded figures). Each part is rounded half-even; the
    quanta still missing (or in excess) go one each to the parts whose rounding moved them furthest the other
    way (ties: in the order the parts are listed). Each part stays within one quantum of its exact value."""
    q = Fraction(quantum)
    units = {k: _round_units(v / q) for k, v in parts.items()}
    error = {k: parts[k] / q - units[k] for k in parts}  # within ±1/2
    missing = int(Fraction(target) / q) - sum(units.values())
    if abs(missing) > len(parts):
        raise ArithmeticError("the parts do not add up to the total")
    sign = 1 if missing > 0 else -1
    order = sorted(parts, key=lambda k: -sign * error[k])  # stable: ties keep the listed order
    for k in order[: abs(missing)]:
        units[k] += sign
    return {k: (Decimal(units[k]) * quantum).quantize(quantum) for k in parts}


def _round_units(x: Fraction) -> int:
    """Round half to even."""
    down = math.floor(x)
    rest = x - down
    return down + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and down % 2 == 1) else 0)


def _quantize(x: Fraction, quantum: Decimal) -> Decimal:
    return (Decimal(_round_units(x / Fraction(quantum))) * quantum).quantize(quantum)


@dataclass(frozen=True)
class Attribution:
    profit_before_usd: Decimal  # to the cent
    profit_after_usd: Decimal
    change_usd: Decimal  # = after − before, and = Σ parts_usd exactly
    parts_usd: dict[str, Decimal]  # btc_price, difficulty, offline_rate, power_price, fees, residual
    exact_parts_usd: dict[str, Fraction]
    roi_before_pct: Decimal | None
    roi_after_pct: Decimal | None
    roi_change_pp: Decimal | None  # percentage points, = Σ roi_parts_pp exactly
    roi_parts_pp: dict[str, Decimal] | None  # the same parts, plus "capex" when the investment changed

    def as_dict(self) -> dict:
        def s(x):
            return None if x is None else str(x)

        return {
            "profit_before_usd": s(self.profit_before_usd),
            "profit_after_usd": s(self.profit_after_usd),
            "change_usd": s(self.change_usd),
            "parts_usd": {k: str(v) for k, v in self.parts_usd.items()},
            "roi_before_pct": s(self.roi_before_pct),
            "roi_after_pct": s(self.roi_after_pct),
            "roi_change_pp": s(self.roi_change_pp),
            "roi_parts_pp": None if self.roi_parts_pp is None else {k: str(v) for k, v in self.roi_parts_pp.items()},
            "method": "exact Shapley values over 4 factors (16 coalitions); fees at the new market; residual",
        }


def explain_profit_change(before: PeriodInputs, after: PeriodInputs) -> Attribution:
    """Split ``profit(after) − profit(before)`` over the four factors, fees and a residual (see the module)."""
    before.validate("before")
    after.validate("after")

    def with_factors(coalition: frozenset) -> PeriodInputs:
        return replace(before, **{FACTOR_FIELDS[f]: getattr(after, FACTOR_FIELDS[f]) for f in coalition})

    phi = shapley_values(FACTORS, lambda s: modelled_profit(with_factors(s)))
    market_after = with_factors(frozenset(FACTORS))
    fees = modelled_profit(replace(market_after, fees_btc_per_block=after.fees_btc_per_block)) - modelled_profit(
        market_after
    )
    p0 = Fraction(before.actual_profit_usd) if before.actual_profit_usd is not None else modelled_profit(before)
    p1 = Fraction(after.actual_profit_usd) if after.actual_profit_usd is not None else modelled_profit(after)
    exact = {**phi, "fees": fees}
    exact["residual"] = (p1 - p0) - sum(exact.values())
    shown_before, shown_after = _quantize(p0, CENT), _quantize(p1, CENT)
    shown = round_preserving_sum(exact, shown_after - shown_before, CENT)
    roi = _roi(before, after, p0, p1, exact)
    return Attribution(
        profit_before_usd=shown_before,
        profit_after_usd=shown_after,
        change_usd=sum(shown.values(), Decimal(0)),
        parts_usd=shown,
        exact_parts_usd=exact,
        **roi,
    )


def _roi(before: PeriodInputs, after: PeriodInputs, p0: Fraction, p1: Fraction, exact: dict) -> dict:
    """ROI = profit ÷ capex × 100. Its change splits as each profit part ÷ the new capex, plus — when the
    capex changed — a "capex" part p0 × (1/c1 − 1/c0) × 100; these add up to roi1 − roi0 exactly."""
    if before.capex_usd is None and after.capex_usd is None:
        return {"roi_before_pct": None, "roi_after_pct": None, "roi_change_pp": None, "roi_parts_pp": None}
    c0 = Fraction(before.capex_usd if before.capex_usd is not None else after.capex_usd)
    c1 = Fraction(after.capex_usd if after.capex_usd is not None else before.capex_usd)
    roi0, roi1 = p0 / c0 * 100, p1 / c1 * 100
    parts = {k: v / c1 * 100 for k, v in exact.items()}
    if c0 != c1:
        parts["capex"] = p0 * (1 / c1 - 1 / c0) * 100
    shown_before, shown_after = _quantize(roi0, ROI_QUANTUM), _quantize(roi1, ROI_QUANTUM)
    shown = round_preserving_sum(parts, shown_after - shown_before, ROI_QUANTUM)
    return {
        "roi_before_pct": shown_before,
        "roi_after_pct": shown_after,
        "roi_change_pp": sum(shown.values(), Decimal(0)),
        "roi_parts_pp": shown,
    }
