"""The anomaly scan's own decision (intelligence.anomaly_scan: learn_baseline hourly, score_hour every 5 minutes,
as the job runs them) scored against the miner simulator's injected faults (ground truth), in process, with no
network and no database.

``--miners`` simulated miners (edge/simulator: SimMiner, a faults plan, the ground-truth records) are stepped on a
manual clock for ``--days`` days; each 5-minute window gets ``--samples`` readings, aggregated as the rollup does
(average hashrate, chip temperature and power over the samples that answered; uptime = share hashing). Faults are
injected on the last day only (one per picked miner, 1–3 h, all six kinds). The scan is then replayed every
5 minutes over the last day: each run scores the newest hour of every miner against the baseline learned from the
history before the last hour boundary at or before that hour (``learn_baseline``, once per hour, as the job keeps
it in the cache; ``score_hour``) and opens, keeps or resolves an alert per miner and metric exactly as the job
does. An alert episode (open → resolved)
is true when its miner has an injected fault overlapping it (the episode covers the hour before its first run;
the fault's end + 30 min allowed for cool-down).

K = the faults the three metrics can show (overheat, hashboard_failure, fan_failure); pool_rejects (the reject
rate is not a scanned metric) and offline / reboot_loop (missing readings: the offline rule's business) are
listed but not counted in K. Episodes are ranked by their peak score: precision@K = true among the top K;
recall@K = value faults overlapped by the top K; recall = value faults overlapped by any episode; false = episodes
on miners with no fault at that time.

    .venv/bin/python bench/anomaly_sim_eval.py [--miners 200] [--days 2] [--samples 2] [--seed 7]

Target: precision@K ≥ 0.9."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from intelligence import anomaly_scan as scan  # noqa: E402

VALUE_FAULTS = ("overheat", "hashboard_failure", "fan_failure")
OTHER_FAULTS = ("pool_rejects", "offline", "reboot_loop")
T0 = 1_795_564_800.0  # 2026-11-26T00:00Z: column 0 is midnight UTC, as the scan's grid


def simulate(miners: int, days: int, samples: int, seed: int):
    """(matrices per metric key and uptime, miners × windows; ground-truth records)."""
    from edge.simulator.catalog import load_catalog
    from edge.simulator.clock import ManualClock
    from edge.simulator.faults import GroundTruth, parse_plan
    from edge.simulator.server import Simulator, build_miners

    fleet = build_miners(load_catalog(), count=miners, base_port=20000, t0=T0, seed=seed)
    sim = Simulator(fleet, ManualClock(T0), ground_truth=GroundTruth(None))
    rng = np.random.default_rng(seed)
    kinds = [*VALUE_FAULTS, *OTHER_FAULTS]
    picked = rng.permutation(miners)[: max(len(kinds), miners // 5)]
    last_day = (days - 1) * 86400
    plan = []
    for j, index in enumerate(picked):
        start = last_day + int(rng.integers(2, 21)) * 3600 + int(rng.integers(0, 12)) * 300
        plan.append(
            {
                "kind": kinds[j % len(kinds)],
                "start": start,
                "duration": int(rng.integers(1, 4)) * 3600,
                "indexes": [int(index)],
            }
        )
    sim.add_plan(parse_plan(plan, t0=T0, serials=[m.serial for m in fleet]))
    n = days * 288
    sums = {k: np.zeros((miners, n)) for k in ("hashrate", "temperature", "power")}
    answered = np.zeros((miners, n))
    hashing = np.zeros((miners, n))
    offsets = (np.arange(samples) + 0.5) * 300 / samples
    for w in range(n):
        for off in offsets:
            t = T0 + 300 * w + float(off)
            for i, miner in enumerate(fleet):
                r = miner.reading(t)
                if not r.reachable:
                    continue
                answered[i, w] += 1
                hashing[i, w] += r.status == "hashing"
                sums["hashrate"][i, w] += r.hashrate_ths
                sums["temperature"][i, w] += r.chip_max_c
                sums["power"][i, w] += r.power_w
    with np.errstate(invalid="ignore", divide="ignore"):
        mats = {k: np.where(answered > 0, v / answered, np.nan) for k, v in sums.items()}
        uptime = np.where(answered > 0, hashing / answered, np.nan)
    groups = np.array([m.profile.code for m in fleet])  # one site: peers are the miners of the same model
    return mats, uptime, groups, sim.ground_truth.records


@dataclass
class Episode:
    miner: int
    metric: str
    first: int  # first scan (window end index) at which it held
    last: int  # last scan at which it held
    peak: float
    severity: str


def replay(mats, uptime, groups, days: int) -> list[Episode]:
    """Run the scan every 5 minutes over the last day; alert episodes per miner and metric."""
    n = days * 288
    episodes: list[Episode] = []
    for metric in scan.METRICS:
        values = scan.prepare(metric, mats[metric.key], uptime)
        open_: dict[int, Episode] = {}
        baselines: dict[int, scan.MetricBaseline] = {}  # per hour boundary, as the job's cache keeps them
        for end in range((days - 1) * 288 + 1, n + 1):
            start = end - scan.HOUR_WINDOWS
            cutoff = start - start % scan.HOUR_WINDOWS
            if cutoff not in baselines:
                baselines[cutoff] = scan.learn_baseline(values[:, :cutoff], groups=groups)
            result = scan.score_hour(
                baselines[cutoff], values[:, start:end], first_slot=start % scan.DAILY_PERIOD_5MIN,
                direction=metric.direction, groups=groups,
            )  # fmt: skip
            holds, clears = result.holds(), result.clears()
            for i in np.flatnonzero(holds):
                score = float(result.score[i])
                ep = open_.get(i)
                if ep is None:
                    open_[i] = Episode(int(i), metric.key, end, end, score, "")
                else:
                    ep.last, ep.peak = end, max(ep.peak, score)
            for i in np.flatnonzero(clears):
                ep = open_.pop(i, None)
                if ep is not None:
                    episodes.append(ep)
        episodes.extend(open_.values())
    for ep in episodes:
        ep.severity = scan.DEFAULT_THRESHOLDS.severity(ep.peak) or "info"
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--miners", type=int, default=200)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2, help="readings per 5-minute window")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"# anomaly scan on the simulator's faults — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    t0 = time.perf_counter()
    mats, uptime, groups, truth = simulate(args.miners, args.days, args.samples, args.seed)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    episodes = replay(mats, uptime, groups, args.days)
    replay_s = time.perf_counter() - t0

    def when(record, key):
        return (pd.Timestamp(record[key]).timestamp() - T0) / 300  # window index

    faults = [(r["index"], r["kind"], when(r, "start"), when(r, "end") + 6) for r in truth]
    value_faults = [f for f in faults if f[1] in VALUE_FAULTS]

    def matches(ep: Episode, fault) -> bool:
        miner, _kind, a, b = fault
        return ep.miner == miner and ep.first - scan.HOUR_WINDOWS <= b and ep.last >= a

    def true(ep: Episode) -> bool:
        return any(matches(ep, f) for f in faults)

    k = len(value_faults)
    ranked = sorted(episodes, key=lambda e: -e.peak)
    top = ranked[:k]
    tp = sum(true(e) for e in top)
    found_k = {id(f) for f in value_faults for e in top if matches(e, f)}
    found = {id(f) for f in value_faults for e in episodes if matches(e, f)}
    false = [e for e in episodes if not true(e)]
    print(
        f"{args.miners} simulated miners × {args.days} days, {args.samples} readings per 5-minute window "
        f"({sim_s:.0f} s to simulate), {len(faults)} faults injected on the last day: "
        + ", ".join(f"{kind} {sum(f[1] == kind for f in faults)}" for kind in (*VALUE_FAULTS, *OTHER_FAULTS))
    )
    print(f"scan replayed every 5 minutes over the last day: {288 * 3} scoring calls in {replay_s:.1f} s")
    print()
    print(f"| {'K':>3} | {'precision@K':>11} | {'recall@K':>8} | {'recall':>6} | {'episodes':>8} | {'false':>5} |")
    print(f"| {'-' * 3} | {'-' * 11} | {'-' * 8} | {'-' * 6} | {'-' * 8} | {'-' * 5} |")
    nan = float("nan")
    precision = tp / len(top) if top else nan
    print(
        f"| {k:>3} | {precision:>11.2f} | {len(found_k) / k if k else nan:>8.2f} "
        f"| {len(found) / k if k else nan:>6.2f} | {len(episodes):>8} | {len(false):>5} |"
    )
    print()
    print("per fault kind (any episode of the miner during the fault):")
    for kind in (*VALUE_FAULTS, *OTHER_FAULTS):
        these = [f for f in faults if f[1] == kind]
        hit = [f for f in these if any(matches(e, f) for e in episodes)]
        metrics = sorted({e.metric for f in these for e in episodes if matches(e, f)})
        print(f"  {kind:<18} {len(hit)}/{len(these)} seen  (metrics: {', '.join(metrics) or '-'})")
    print("per metric: episodes (true / false), severities of the false ones:")
    for metric in scan.METRICS:
        eps = [e for e in episodes if e.metric == metric.key]
        f = [e for e in eps if not true(e)]
        sev = {s: sum(e.severity == s for e in f) for s in ("info", "warning", "critical")}
        print(f"  {metric.key:<12} {len(eps) - len(f)} / {len(f)}  {sev}")


if __name__ == "__main__":
    main()
