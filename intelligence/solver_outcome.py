"""What the plan's solver achieved, in the reader's language.

A plan's ``solver`` report (``optimizer.CurtailmentPlan.as_dict``) keeps CBC's own English ``status`` ("Optimal
solution found", "Stopped on time limit", …), which no reader of the 中文 pages should have to parse. Pages show
``solver_outcome`` instead: a sentence made from the report's structured fields (``method``, ``optimal``,
``gap_rel``, ``time_limited``), with CBC's text kept for experts as the element's title. A plan stored before
``time_limited`` existed has it read from the status (CBC's "Stopped on time limit" prefix)."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext

from intelligence.algorithms.optimizer import TIME_LIMIT_STATUS

PROVEN = 1e-6  # a gap this small is CBC's rounding: the schedule is proven optimal


def time_limited(solver: Mapping) -> bool:
    if "time_limited" in solver:
        return bool(solver["time_limited"])
    return str(solver.get("status") or "").startswith(TIME_LIMIT_STATUS)


def gap_text(gap_rel) -> str:
    """The relative gap as a percentage with two decimals ("0.04 %"), or "unknown" when CBC printed none."""
    if gap_rel is None:
        return gettext("unknown")
    return f"{float(gap_rel) * 100:.2f} %"


def solver_outcome(solver: Mapping | None) -> str:
    """One translated phrase for what the solver returned; "" for a plan without a report."""
    if not solver or ("status" not in solver and "optimal" not in solver):
        return ""
    gap_rel = solver.get("gap_rel")
    gap = gap_text(gap_rel)
    stopped = time_limited(solver)
    if solver.get("method") == "rounded_lp":
        if stopped:
            return gettext("Rounded relaxation (no time for the search; gap %(gap)s)") % {"gap": gap}
        return gettext("Rounded relaxation (the search found nothing better; gap %(gap)s)") % {"gap": gap}
    if solver.get("optimal"):
        if gap_rel is None or abs(float(gap_rel)) <= PROVEN:
            return gettext("Optimal")
        return gettext("Within the gap limit (gap %(gap)s)") % {"gap": gap}
    if stopped:
        return gettext("Best found in the time limit (gap %(gap)s)") % {"gap": gap}
    return gettext("Stopped before proving the optimum (gap %(gap)s)") % {"gap": gap}
