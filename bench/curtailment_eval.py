"""How much of perfect foresight the curtailment strategies capture on the shipped ERCOT prices (issue 9, 4).

    .venv/bin/python bench/curtailment_eval.py

Fleet: 1,000 Antminer S19j Pro (104 TH/s, 3.068 kW) and 1,000 S21 (200 TH/s, 3.5 kW), settled at the real-time
15-minute prices 2024-01 → 2025-11 with each day's actual hashprice (shipped BTC history: price, difficulty,
the subsidy with the April 2024 halving, and fees — 0.02 BTC per block where the history has no fee figure).
Figures: profit uplift over running everything, as a share of perfect foresight on the same 15-minute prices
(every group on exactly when the interval's price is at or below its breakeven).

- ``day-ahead``: each group runs in an hour iff the hour's day-ahead price is at or below its breakeven (the
  unconstrained plan: ``plan_curtailment`` gives the same schedule when nothing else binds; see its tests);
- ``responder``: ``optimizer.respond_realtime`` on each new 15-minute price, deciding the next interval from the
  last known price, with the minimum on/off and hysteresis shown.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _setup import machine

from intelligence.algorithms.hashprice import block_subsidy_btc_on, hashprice_series
from intelligence.algorithms.optimizer import GroupState, MinerGroup, SiteModel, respond_realtime
from intelligence.algorithms.power_prices import load_15min, load_hourly
from intelligence.market import DATA as BTC_DAILY

GROUPS = (
    MinerGroup("s19jpro", "Antminer S19j Pro", count=1000, kw_each=3.068, ths_each=104),
    MinerGroup("s21", "Antminer S21", count=1000, kw_each=3.5, ths_each=200),
)
FALLBACK_FEES_BTC_PER_BLOCK = 0.02


def daily_hashprice(days: np.ndarray) -> np.ndarray:
    with BTC_DAILY.open(newline="") as fh:
        rows = {r["date"]: r for r in csv.DictReader(fh)}
    out, last_difficulty = [], None
    for d in days:
        row = rows[str(d)]
        difficulty = float(row["difficulty"]) if row["difficulty"] else last_difficulty  # 3 days missing
        last_difficulty = difficulty
        fees = float(row["fees_btc"]) / 144 if row["fees_btc"] else FALLBACK_FEES_BTC_PER_BLOCK
        subsidy = float(block_subsidy_btc_on(date.fromisoformat(str(d))))
        out.append(float(hashprice_series(float(row["price_usd"]), difficulty, subsidy, fees)))
    return np.array(out)


def main() -> None:
    rt = load_15min()
    da = np.repeat(load_hourly("da").usd_per_mwh, 4)
    day_of = rt.start_utc.astype("datetime64[D]")
    days, index = np.unique(day_of, return_inverse=True)
    hashprice = daily_hashprice(days)[index]  # per 15-minute interval
    price = rt.usd_per_mwh
    ths = np.array([g.ths_each for g in GROUPS])[:, None]
    kw = np.array([g.kw_each for g in GROUPS])[:, None]
    count = np.array([g.count for g in GROUPS])[:, None]
    breakeven = ths * hashprice[None, :] / 24 / kw * 1000  # (groups, intervals)
    margin = 0.25 * (ths * hashprice[None, :] / 24 - kw * price[None, :] / 1000)  # per miner per interval

    def profit(on: np.ndarray) -> float:
        return float((margin * on).sum())

    run_all = profit(np.broadcast_to(count, margin.shape))
    perfect = profit(np.where(price[None, :] <= breakeven, count, 0))
    print(f"# bench/curtailment_eval.py · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()}")
    print(f"# {len(price):,} intervals {rt.start_utc[0]} → {rt.start_utc[-1]} UTC, fleet 1,000 S19j Pro + 1,000 S21")
    print(f"run everything: profit ${run_all:,.0f}; perfect foresight uplift ${perfect - run_all:,.0f} "
          f"({(perfect - run_all) / run_all * 100:.2f} % of running everything)")  # fmt: skip

    def report(name: str, on: np.ndarray, seconds: float | None = None) -> None:
        share = (profit(on) - run_all) / (perfect - run_all) * 100
        took = f"  ({seconds:.1f} s, {seconds / len(price) * 1e6:.0f} µs per decision)" if seconds else ""
        print(f"{name:<46} {share:6.1f} % of perfect foresight{took}")

    report("day-ahead price vs breakeven", np.where(da[None, :] <= breakeven, count, 0))
    last = np.concatenate([[price[0]], price[:-1]])
    report("last 15-min price vs breakeven (vectorised)", np.where(last[None, :] <= breakeven, count, 0))
    for min_hours, hysteresis in ((0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (0.0, 5.0)):
        site = SiteModel(groups=GROUPS, min_on_hours=min_hours, min_off_hours=min_hours)
        on = np.empty(margin.shape, dtype=int)
        state = {g.id: GroupState(g.count) for g in GROUPS}
        started = time.perf_counter()
        for k in range(len(price)):
            known = price[k - 1] if k else price[0]
            decision = respond_realtime(
                site, state=state, price_usd_per_mwh=float(known), interval_hours=0.25,
                breakeven_usd_per_mwh={g.id: float(breakeven[i, k]) for i, g in enumerate(GROUPS)},
                hysteresis_usd_per_mwh=hysteresis,
            )  # fmt: skip
            new_state = {}
            for i, g in enumerate(GROUPS):
                n, old = decision.on_counts[g.id], state[g.id]
                on[i, k] = n
                age = lambda pairs: tuple((a + 0.25, m) for a, m in pairs if a + 0.25 < 2)  # noqa: E731
                started_now = ((0.0, n - old.on_count),) if n > old.on_count else ()
                stopped_now = ((0.0, old.on_count - n),) if n < old.on_count else ()
                # The next decision comes 15 minutes later: everything, this switch included, is 0.25 h older.
                new_state[g.id] = GroupState(n, age(old.started + started_now), age(old.stopped + stopped_now))
            state = new_state
        label = f"responder, min on/off {min_hours:g} h, hysteresis ${hysteresis:g}"
        report(label, on, time.perf_counter() - started)


if __name__ == "__main__":
    main()
