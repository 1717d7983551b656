"""Curtailment plan runtime (PuLP/CBC): 24 h and 168 h, 20 and 50 miner groups, on real ERCOT day-ahead prices.

    .venv/bin/python bench/optimizer.py [--runs 5] [--time-limit 10] [--scenario hard]

No database: the optimizer is pure Python. Each scenario is planned ``--runs`` times; the medians of the
whole call (validation, model build, CBC, figures for the plan and both baselines) and of CBC alone are
printed with CBC's status and the optimality gap it reported, and the CPU seconds of both sides (this process:
validation, model build, rounding, figures; CBC: from its log): on a shared machine the wall times are upper
bounds, CPU seconds are what an idle machine needs. Scenarios:

- ``economic``: prices and hashprice, min on/off 1 h, two zone capacities (the everyday plan);
- ``dr-cap``:   the same plus a demand-response cap of 40 % of full load 17:00–20:00 local each day;
- ``hard``:     the same plus a ramp limit (15 % of full load per hour), min on/off 2 h and three hosting
                -client contract priorities — ramping into the cap under priorities is the hard case for CBC
                (the plan starts CBC from the rounded LP relaxation: ``method`` says what was returned).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _setup import machine

from intelligence.algorithms.optimizer import DEFAULT_GAP_REL, MinerGroup, PlanError, SiteModel, plan_curtailment
from intelligence.algorithms.power_prices import load_hourly

MODELS = [  # (model, kW, TH/s)
    ("Antminer S19j Pro", 3.068, 104),
    ("Antminer S19 XP", 3.01, 140),
    ("Antminer S21", 3.5, 200),
    ("Whatsminer M50S", 3.276, 126),
    ("Antminer S19k Pro", 2.76, 120),
]
SCENARIOS = ("economic", "dr-cap", "hard")
HASHPRICE = 0.055  # USD/TH/s/day, late 2024
START = datetime(2024, 1, 14, 6, tzinfo=UTC)  # local midnight, the week of the January 2024 storm


def site(groups: int, *, hard: bool) -> SiteModel:
    per_group = 2000 // groups
    out = []
    for i in range(groups):
        model, kw, ths = MODELS[i % len(MODELS)]
        out.append(
            MinerGroup(
                f"g{i}", model, count=per_group + (i % 7), kw_each=kw, ths_each=ths, zone=f"hall-{i % 3}",
                client=f"client-{i % 3}", priority=(i % 3) if hard else 0,
            )
        )  # fmt: skip
    full = sum(g.kw for g in out)
    zones = {"hall-0": 0.4 * full, "hall-1": 0.45 * full}  # binding some hours, never at the start
    return SiteModel(
        groups=tuple(out),
        zone_capacity_kw=zones,
        min_on_hours=2 if hard else 1,
        min_off_hours=2 if hard else 1,
        ramp_kw_per_hour=0.15 * full if hard else None,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these (repeatable)")
    args = parser.parse_args()
    prices = load_hourly("da").window(START, 168).usd_per_mwh
    print(f"# bench/optimizer.py · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()}")
    print(f"# ERCOT HB_HUBAVG day-ahead from {START:%Y-%m-%d %H:%M} UTC, hashprice {HASHPRICE} USD/TH/s/day")
    print(f"# runs {args.runs}, CBC time limit {args.time_limit} s, relative gap {DEFAULT_GAP_REL} (medians)")
    head = f"{'scenario':<10} {'hours':>5} {'groups':>6} {'vars':>6} {'total s':>8} {'py cpu':>6} {'CBC s':>7}"
    print(f"{head} {'CBC cpu':>7} {'gap':>8} {'profit $':>10} {'bound $':>10}  method: status")
    for hours, groups in ((24, 20), (168, 20), (168, 50)):
        for scenario in args.scenario or SCENARIOS:
            s = site(groups, hard=scenario == "hard")
            cap = None
            if scenario != "economic":
                cap = [0.4 * s.full_kw if (t % 24) in (17, 18, 19, 20) else 1e12 for t in range(hours)]
            totals, solves, cpus, gaps, statuses, variables = [], [], [], [], set(), 0
            py_cpus, profits, bounds = [], [], []
            for _ in range(args.runs):
                start, start_cpu = time.perf_counter(), time.process_time()
                try:
                    plan = plan_curtailment(s, prices[:hours], HASHPRICE, cap_kw=cap, time_limit_s=args.time_limit)
                except PlanError as exc:
                    totals.append(time.perf_counter() - start)
                    statuses.add(f"{exc.code}: {exc.message}")
                    continue
                totals.append(time.perf_counter() - start)
                py_cpus.append(time.process_time() - start_cpu)
                profits.append(plan.solver.objective if plan.solver.objective is not None else float("nan"))
                bounds.append(plan.solver.bound if plan.solver.bound is not None else float("nan"))
                solves.append(plan.solver.solve_s)
                cpus.append(plan.solver.solve_cpu_s if plan.solver.solve_cpu_s is not None else float("nan"))
                gaps.append(plan.solver.gap_rel if plan.solver.gap_rel is not None else float("nan"))
                statuses.add(f"{plan.solver.method}: {plan.solver.status}")
                variables = plan.solver.variables
                assert plan.plan.violations == (), plan.plan.violations
            print(
                f"{scenario:<10} {hours:>5} {groups:>6} {variables:>6} {statistics.median(totals):>8.3f} "
                f"{_median(py_cpus):>6.2f} {_median(solves):>7.3f} {_median(cpus):>7.2f} {_median(gaps):>8.2e} "
                f"{_median(profits):>10.2f} {_median(bounds):>10.2f}  {'; '.join(sorted(statuses))}"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
