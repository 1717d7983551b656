"""Anomaly detectors (MAD seasonal, MAD plain, STL) scored two ways:

1. on the real labelled series of the Numenta Anomaly Benchmark (intelligence/data/anomaly: the two shipped
   series; ``--data-dir ../shared/data/anomaly`` for all thirteen): precision@K and recall@K per detector, K = the
   series' number of labelled windows, events = merged runs of points with |z| ≥ 3.5, and recall of windows at
   warning level (any event with |z| ≥ 5 inside);
2. on the miner simulator's injected faults (edge/simulator, stepped in-process, no network): ``--miners`` miners
   for ``--days`` days of 5-minute readings, faults on the last day; an event (per miner and metric) is true when
   its miner has a fault overlapping it (the fault's end + 30 min allowed for cool-down). K = the faults the values
   can show (offline and reboot_loop are missing readings: the offline rule's job, not a value detector's).
   R@K counts faults found among the top K events (one fault often gives events in two metrics, e.g. hashrate
   and power, which takes two of the K places); R@warn counts faults with any event at warning level or above;
   false@warn counts events at warning level or above on miners without a fault at that time.

    .venv/bin/python bench/anomaly_eval.py [--data-dir DIR] [--miners 60] [--days 3] [--skip-stl] [--skip-sim]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from intelligence.algorithms.anomaly import (  # noqa: E402
    DEFAULT_THRESHOLDS,
    Baseline,
    Event,
    events,
    mad_scores,
    precision_recall_at_k,
    score_against,
    seasonal_baseline,
    stl_scores,
    windows_to_index,
)

DATA_DIR = ROOT / "intelligence" / "data" / "anomaly"
DETECTORS = ("mad_seasonal", "mad", "stl")
VALUE_FAULTS = ("overheat", "hashboard_failure", "fan_failure", "pool_rejects")
METRICS = ("hashrate_ths", "chip_max_c", "power_w", "reject_pct")


def scores_for(detector: str, values: np.ndarray, period: int) -> np.ndarray:
    if detector == "mad_seasonal":
        return mad_scores(values, period=period).z
    if detector == "mad":
        return mad_scores(values).z
    return stl_scores(values, period=period).z


def load_series(path: Path) -> pd.Series:
    df = pd.read_csv(path, parse_dates=["timestamp"])
    s = df.groupby("timestamp")["value"].mean().sort_index()  # NAB has a few repeated timestamps
    step = s.index.to_series().diff().median()
    grid = pd.date_range(s.index[0], s.index[-1], freq=step)
    return s.reindex(s.index.union(grid)).interpolate(method="time").reindex(grid)


def nab(data_dir: Path, detectors) -> None:
    labels = json.loads((data_dir / "labels.json").read_text())["series"]
    print(f"\n## NAB real labelled series ({data_dir}), {len(labels)} series")
    print(f"{'detector':<13} {'series':<42} {'K':>2} {'P@K':>5} {'R@K':>5} {'R@warn':>6} {'events':>6} {'s':>6}")
    pooled = {d: {"found": [], "windows": {}, "hit_warn": 0, "total": 0, "p": [], "r": []} for d in detectors}
    for name, meta in labels.items():
        path = data_dir / name
        if not path.exists():
            continue
        s = load_series(path)
        step_s = (s.index[1] - s.index[0]).total_seconds()
        period = round(86400 / step_s)
        win = windows_to_index(s.index, meta["windows"])
        for d in detectors:
            t0 = time.perf_counter()
            z = scores_for(d, s.to_numpy(), period)[0]
            took = time.perf_counter() - t0
            found = events(z, threshold=DEFAULT_THRESHOLDS.info, gap=max(1, period // 48), series=name)
            ev = precision_recall_at_k(found, {name: win})
            warn = [e for e in found if e.score >= DEFAULT_THRESHOLDS.warning]
            hit = sum(any(e.start <= b and e.end >= a for e in warn) for a, b in win)
            p = pooled[d]
            p["found"] += found
            p["windows"][name] = win
            p["hit_warn"] += hit
            p["total"] += len(win)
            p["p"].append(0.0 if np.isnan(ev.precision_at_k) else ev.precision_at_k)  # no event at all: 0
            p["r"].append(ev.recall_at_k)
            print(f"{d:<13} {name[:42]:<42} {ev.k:>2} {ev.precision_at_k:>5.2f} {ev.recall_at_k:>5.2f} "
                  f"{hit / len(win):>6.2f} {len(found):>6} {took:>6.2f}")  # fmt: skip
    print("mean over series (each series' own K; a series with no event counts precision 0):")
    for d in detectors:
        p = pooled[d]
        print(f"  {d:<13} precision@K {np.mean(p['p']):.2f}  recall@K {np.mean(p['r']):.2f}")
    print("pooled (all series ranked together, K = all windows; z-scores of very different series compete):")
    for d in detectors:
        p = pooled[d]
        ev = precision_recall_at_k(p["found"], p["windows"])
        print(f"  {d:<13} K={ev.k:<3} precision@K {ev.precision_at_k:.2f}  recall@K {ev.recall_at_k:.2f}  "
              f"recall at warning {p['hit_warn'] / p['total']:.2f}")  # fmt: skip


def simulate(miners: int, days: int, seed: int = 7):
    """Readings of ``miners`` simulated miners every 5 minutes for ``days`` days, faults on the last day.
    Returns (arrays per metric (miners × points), ground truth rows, point times)."""
    from edge.simulator.catalog import load_catalog
    from edge.simulator.clock import ManualClock
    from edge.simulator.faults import GroundTruth, parse_plan
    from edge.simulator.server import Simulator, build_miners

    t0 = 1_795_564_800.0  # 2026-11-26T00:00Z: slot 0 is midnight
    fleet = build_miners(load_catalog(), count=miners, base_port=20000, t0=t0, seed=seed)
    sim = Simulator(fleet, ManualClock(t0), ground_truth=GroundTruth(None))
    rng = np.random.default_rng(seed)
    kinds = [*VALUE_FAULTS, "offline", "reboot_loop"]
    picked = rng.permutation(miners)[: max(len(kinds), miners // 5)]
    plan = []
    last_day = (days - 1) * 86400
    for j, index in enumerate(picked):
        kind = kinds[j % len(kinds)]
        start = last_day + int(rng.integers(1, 20)) * 3600
        hours = int(rng.integers(1, 4))
        plan.append({"kind": kind, "start": start, "duration": hours * 3600, "indexes": [int(index)]})
    sim.add_plan(parse_plan(plan, t0=t0, serials=[m.serial for m in fleet]))
    n = days * 288
    arrays = {m: np.full((miners, n), np.nan) for m in METRICS}
    times = t0 + 300 * np.arange(n)
    for k, t in enumerate(times):
        for i, miner in enumerate(fleet):
            r = miner.reading(float(t))
            if r.reachable:
                arrays["hashrate_ths"][i, k] = r.hashrate_ths
                arrays["chip_max_c"][i, k] = r.chip_max_c
                arrays["power_w"][i, k] = r.power_w
                arrays["reject_pct"][i, k] = r.reject_pct
    return arrays, sim.ground_truth.records, times


def sim_eval(miners: int, days: int, detectors) -> None:
    t0 = time.perf_counter()
    arrays, truth, times = simulate(miners, days)
    took = time.perf_counter() - t0
    since = (days - 1) * 288
    in_scope = [r for r in truth if r["kind"] in VALUE_FAULTS]
    print(f"\n## simulator: {miners} miners × {days} days of 5-minute readings ({took:.0f} s to simulate), "
          f"{len(truth)} injected faults, {len(in_scope)} visible in values "
          f"({', '.join(sorted({r['kind'] for r in in_scope}))})")  # fmt: skip
    faults_by_miner: dict[int, list[tuple[float, float]]] = {}
    for r in in_scope:
        start = pd.Timestamp(r["start"]).timestamp()
        end = pd.Timestamp(r["end"]).timestamp() + 1800
        faults_by_miner.setdefault(r["index"], []).append((start, end))
    # label windows per (miner, metric) series as index ranges, for the shared precision@K
    print(f"{'detector':<13} {'K':>3} {'P@K':>5} {'R@K':>5} {'R@warn':>6} {'events':>6} {'false@warn':>10} {'s':>6}")
    for d in detectors:
        t1 = time.perf_counter()
        found: list[Event] = []
        windows: dict[str, list[tuple[int, int]]] = {}
        for metric, values in arrays.items():
            z = scores_for(d, values, 288)
            z[:, :since] = np.nan
            for i in range(miners):
                key = f"{i}:{metric}"
                found += events(z[i], threshold=DEFAULT_THRESHOLDS.info, gap=6, series=key)
                windows[key] = [
                    (int(np.searchsorted(times, a)), int(np.searchsorted(times, b)) - 1)
                    for a, b in faults_by_miner.get(i, [])
                ]
        took = time.perf_counter() - t1
        # one fault shows in several metrics: count a fault as found when any metric's event overlaps it,
        # and rank events across all metrics
        k = len(in_scope)
        top = sorted(found, key=lambda e: -e.score)[:k]
        true = [e for e in top if any(e.start <= b and e.end >= a for a, b in windows[e.series])]
        hit = {
            (i, w)
            for e in top
            for i in [int(e.series.split(":")[0])]
            for w, (a, b) in enumerate(windows[e.series])
            if e.start <= b and e.end >= a
        }
        false_warn = sum(
            1
            for e in found
            if e.score >= DEFAULT_THRESHOLDS.warning
            and not any(e.start <= b and e.end >= a for a, b in windows[e.series])
        )
        warned = {
            (int(e.series.split(":")[0]), w)
            for e in found
            if e.score >= DEFAULT_THRESHOLDS.warning
            for w, (a, b) in enumerate(windows[e.series])
            if e.start <= b and e.end >= a
        }
        print(
            f"{d:<13} {k:>3} {len(true) / k:>5.2f} {len(hit) / k:>5.2f} {len(warned) / k:>6.2f} {len(found):>6} "
            f"{false_warn:>10} {took:>6.2f}"
        )


def scan_speed(miners: int = 100_000, metrics: int = 3, history_miners: int = 10_000, days: int = 7) -> None:
    """The 5-minute scan: score the newest hour (12 points) of ``miners`` × ``metrics`` series against stored
    baselines; and the cost of learning those baselines from a week of history (measured on fewer miners)."""
    rng = np.random.default_rng(0)
    history = 100 * (1 + 0.01 * rng.standard_normal((history_miners, days * 288)))
    t0 = time.perf_counter()
    base = seasonal_baseline(history, period=288)
    learn = time.perf_counter() - t0
    series = miners * metrics
    reps = series // history_miners
    big = Baseline(
        profile=np.tile(base.profile, (reps, 1)),
        center=np.tile(base.center, (reps, 1)),
        scale=np.tile(base.scale, (reps, 1)),
        period=288,
    )
    newest = 100 * (1 + 0.01 * rng.standard_normal((series, 12)))
    t0 = time.perf_counter()
    z = score_against(big, newest, first_slot=100).z
    flagged = int((np.abs(z) >= DEFAULT_THRESHOLDS.info).sum())
    scan = time.perf_counter() - t0
    print(f"\n## scan speed: newest hour of {miners:,} miners × {metrics} metrics ({series:,} series × 12 points) "
          f"scored against stored baselines: {scan:.2f} s ({flagged} points ≥ info on pure noise)")  # fmt: skip
    print(f"   learning baselines from {days} days × 288 points: {learn:.1f} s per {history_miners:,} series "
          f"→ {learn * series / history_miners / 60:.1f} min for all {series:,} (a daily job, chunked)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--miners", type=int, default=60)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--skip-stl", action="store_true")
    parser.add_argument("--skip-sim", action="store_true")
    args = parser.parse_args()
    detectors = [d for d in DETECTORS if not (args.skip_stl and d == "stl")]
    print(f"# anomaly evaluation — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    nab(args.data_dir, detectors)
    if not args.skip_sim:
        sim_eval(args.miners, args.days, detectors)
    scan_speed()


if __name__ == "__main__":
    main()
