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
  last known price, with the minimum on/off and hysteresis shown;
- ``nowcast``: the same decision fed ``nowcast.DriftNowcast`` (last price + the slot's learnt move), walk-forward:
  the estimate of interval t uses prices up to t − 1 only and the table learns t's price after t ends.

When is a price known? ERCOT's SCED sets a 5-minute LMP at each run and posts it within about a minute; the
15-minute settlement point price (the hub average here) is the mean of the interval's SCED prices and its report
posts a few minutes after the interval ends. So the decision for t made on the price of t − 1 acts a few minutes
into t at the earliest; the first minutes of t still run on the previous decision. Rows "lag 5 min" settle the
first third of each interval at the previous decision; rows "horizon 2" assume only t − 2 is known when t starts
(the strictest reading). Parameters were chosen on 2024 alone; the 2025 column is out of sample.
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
from intelligence.algorithms.nowcast import DriftNowcast, last_price, slots_of, walk_forward
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

    is_2025 = rt.start_utc >= np.datetime64("2025-01-01")
    periods = {"all": np.ones(len(price), bool), "2024": ~is_2025, "2025": is_2025}

    def share_of(on: np.ndarray, keep: np.ndarray) -> float:
        m, c = margin[:, keep], np.broadcast_to(count, margin.shape)[:, keep]
        base = (m * c).sum()
        best = (m * np.where(price[None, keep] <= breakeven[:, keep], c, 0)).sum()
        return float(((m * on[:, keep]).sum() - base) / (best - base) * 100)

    def profit(on: np.ndarray) -> float:
        return float((margin * on).sum())

    run_all = profit(np.broadcast_to(count, margin.shape))
    perfect = profit(np.where(price[None, :] <= breakeven, count, 0))
    print(f"# bench/curtailment_eval.py · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()}")
    print(f"# {len(price):,} intervals {rt.start_utc[0]} → {rt.start_utc[-1]} UTC, fleet 1,000 S19j Pro + 1,000 S21")
    print(f"run everything: profit ${run_all:,.0f}; perfect foresight uplift ${perfect - run_all:,.0f} "
          f"({(perfect - run_all) / run_all * 100:.2f} % of running everything)")  # fmt: skip
    print(f"{'strategy':<58} {'all':>7} {'2024':>7} {'2025':>7}  (% of perfect-foresight uplift)")

    def report(name: str, on: np.ndarray, seconds: float | None = None) -> None:
        took = f"  ({seconds:.1f} s, {seconds / len(price) * 1e6:.0f} µs per decision)" if seconds else ""
        shares = " ".join(f"{share_of(on, keep):6.1f}%" for keep in periods.values())
        print(f"{name:<58} {shares}{took}")

    def lagged(on: np.ndarray, fraction: float) -> np.ndarray:
        """The first ``fraction`` of each interval still runs on the previous interval's decision."""
        return fraction * np.concatenate([on[:, :1], on[:, :-1]], axis=1) + (1 - fraction) * on

    def rule(estimate: np.ndarray) -> np.ndarray:
        return np.where(estimate[None, :] <= breakeven, count, 0)

    report("day-ahead price vs breakeven", rule(da))
    slots = slots_of(rt.start_utc, step_minutes=rt.step_minutes, tz="America/Chicago")
    estimates = {}
    for horizon in (1, 2):
        last = last_price(price, horizon)
        started = time.perf_counter()
        model = DriftNowcast(horizon=horizon, window=180 * 96, clip_usd_per_mwh=100.0, shrink=20.0)
        nowcast = walk_forward(price, slots, model)
        took = time.perf_counter() - started
        estimates[horizon] = nowcast
        if horizon == 1:
            report("last 15-min price vs breakeven", rule(last))
            report("last price, lag 5 min", lagged(rule(last), 1 / 3))
            report("nowcast vs breakeven (walk-forward)", rule(nowcast), took)
            report("nowcast, lag 5 min", lagged(rule(nowcast), 1 / 3))
        else:
            report("price of t-2 vs breakeven (horizon 2)", rule(last))
            report("nowcast horizon 2 (walk-forward)", rule(nowcast))
    for source, min_hours, hysteresis in (
        ("last", 0.0, 0.0), ("last", 0.25, 0.0), ("last", 0.5, 0.0), ("last", 0.0, 5.0),
        ("nowcast", 0.0, 0.0), ("nowcast", 0.25, 0.0), ("nowcast", 0.5, 0.0),
    ):  # fmt: skip
        known = last_price(price, 1) if source == "last" else estimates[1]
        site = SiteModel(groups=GROUPS, min_on_hours=min_hours, min_off_hours=min_hours)
        on = np.empty(margin.shape, dtype=int)
        state = {g.id: GroupState(g.count) for g in GROUPS}
        started = time.perf_counter()
        for k in range(len(price)):
            decision = respond_realtime(
                site, state=state, price_usd_per_mwh=float(known[k]), interval_hours=0.25,
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
        label = f"respond_realtime on {source}, min on/off {min_hours:g} h, hysteresis ${hysteresis:g}"
        report(label, on, time.perf_counter() - started)
        if min_hours == 0.25:
            report("  same, lag 5 min", lagged(on, 1 / 3))


if __name__ == "__main__":
    main()
