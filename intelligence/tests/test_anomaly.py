"""Anomaly detectors on hand-made seasonal series, on a real labelled series (NAB) and on the miner simulator."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intelligence.algorithms.anomaly import (
    Event,
    detect,
    events,
    mad_scores,
    nanmedian,
    precision_recall_at_k,
    reason,
    score_against,
    seasonal_baseline,
    stl_scores,
    windows_to_index,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "anomaly"
P = 288


def daily_cycle(days=3, amplitude=10.0, level=70.0, noise=0.3, series=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(days * P)
    cycle = level + amplitude * np.sin(2 * np.pi * t / P)
    return cycle + rng.normal(0, noise, (series, days * P))


def test_mad_flags_an_injected_spike_and_not_the_daily_cycle():
    x = daily_cycle()
    x[0, 700] += 6.0  # within the cycle's range (60…80) but far off its time of day
    seasonal = detect(x, method="mad", period=P, metric="chip_temp", unit="°C")
    assert [p.index for p in seasonal] == [700]
    assert seasonal[0].severity == "critical"
    assert "above its usual level for this time of day" in seasonal[0].reason
    # the plain MAD (no season) cannot tell a 6 °C spike inside the cycle's range from the cycle ...
    assert 700 not in [p.index for p in detect(x, method="mad", period=None)]
    # ... but neither does it call the cycle's peaks and troughs anomalous
    assert detect(daily_cycle(), method="mad", period=None) == []
    big = daily_cycle()
    big[0, 700] = 150.0
    assert [p.index for p in detect(big, method="mad", period=None)] == [700]


def test_hashrate_drop_is_reported_in_words_with_its_severity():
    rng = np.random.default_rng(1)
    hashrate = 200 * (1 + 0.01 * rng.standard_normal((1, 3 * P)))
    hashrate[0, 600:612] *= 0.62  # a hashboard lost
    points = detect(hashrate, method="mad", period=P, metric="hashrate", unit="TH/s", since=576, direction="low")
    assert {p.index for p in points} == set(range(600, 612))
    assert all(p.severity == "critical" for p in points)
    # 38 % lost; the 1 % noise moves the figure of any one point by a per cent or so
    assert re.fullmatch(
        r"hashrate 3[6-9] % below its usual level for this time of day \(expected 2\d\d\.\d TH/s, got 1\d\d\.\d TH/s\)",
        points[0].reason,
    )
    text = reason(metric="power", value=2400, expected=3000, seasonal=False, unit="W")
    assert text == "power 20 % below its usual level (expected 3000 W, got 2400 W)"


def test_vectorised_over_many_series_finds_the_one_broken():
    x = daily_cycle(series=50, seed=3)
    x[17, 650:660] -= 8.0
    points = detect(x, method="mad", period=P, names=[f"m{i}" for i in range(50)])
    assert {p.series for p in points if p.severity != "info"} == {"m17"}
    assert {p.index for p in points if p.series == "m17"} >= set(range(651, 659))


def test_stl_handles_the_season_and_finds_a_dip_inside_its_range():
    x = daily_cycle(days=4, seed=5)
    x[0, 3 * P + 72 : 3 * P + 80] -= 5.0  # at the cycle's peak (80 °C → 75 °C): a normal level at other hours
    z = stl_scores(x, period=P).z[0]
    top = np.argsort(-np.abs(z))[:8]
    assert set(top) <= set(range(3 * P + 72, 3 * P + 80))
    assert np.nanmax(np.abs(np.delete(z, range(3 * P + 70, 3 * P + 82)))) < 5  # no warning elsewhere
    assert not (np.abs(mad_scores(x).z[0, 3 * P + 72 : 3 * P + 80]) >= 3.5).any()  # plain MAD misses it


def test_short_or_bad_input_is_refused():
    with pytest.raises(ValueError, match="two periods"):
        mad_scores(np.ones(300), period=P)
    with pytest.raises(ValueError, match="two periods"):
        stl_scores(np.ones(300), period=P)
    with pytest.raises(ValueError, match="infinite"):
        mad_scores([1.0, np.inf, 2.0])
    with pytest.raises(ValueError, match="method"):
        detect(np.ones(10), method="magic")


def test_flat_series_and_missing_points():
    x = np.full((1, 2 * P), 100.0)
    x[0, 10] = 100.4  # a rounding step on a perfectly flat reading: not an anomaly
    x[0, 20] = np.nan
    z = mad_scores(x, period=P).z
    assert np.isnan(z[0, 20])
    assert abs(z[0, 10]) < 3.5


def test_nanmedian_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 5, 13))
    a[a > 1.2] = np.nan
    a[2, 3, :] = np.nan
    for axis in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns about the all-NaN slice
            expected = np.nanmedian(a, axis=axis)
        assert np.allclose(nanmedian(a, axis=axis), expected, equal_nan=True)


def test_baseline_then_scan_scores_only_the_newest_points():
    x = daily_cycle(days=4, series=5, seed=9)
    history, newest = x[:, : 3 * P], x[:, 3 * P : 3 * P + 12].copy()
    newest[2, 5] += 5.0
    base = seasonal_baseline(history, period=P)
    z = score_against(base, newest, first_slot=0).z
    flagged = np.argwhere(np.abs(z) >= 3.5)
    assert flagged.tolist() == [[2, 5]]
    with pytest.raises(ValueError, match="series"):
        score_against(base, newest[:2], first_slot=0)


def test_events_and_precision_recall_at_k_by_hand():
    score = np.zeros(100)
    score[[10, 12, 13]] = [4, 9, 5]  # one event (gap ≤ 6)
    score[50] = 6
    score[90] = 3  # below the threshold
    found = events(score, threshold=3.5, gap=6, series="s")
    assert found == [Event("s", 10, 13, 9.0), Event("s", 50, 50, 6.0)]
    windows = {"s": [(8, 20), (60, 70)], "t": [(0, 5)]}
    ev = precision_recall_at_k([*found, Event("t", 40, 41, 7.0)], windows)
    # K = 3 windows; top 3 by score: s10-13 (hit), t40 (miss), s50 (miss) → precision 1/3; recall 1 of 3
    assert ev.k == 3 and ev.true_positives == 1
    assert ev.precision_at_k == pytest.approx(1 / 3) and ev.recall_at_k == pytest.approx(1 / 3)
    assert precision_recall_at_k(found, windows, k=1).precision_at_k == 1.0


def test_real_labelled_series_nab_ec2_latency():
    meta = json.loads((DATA / "labels.json").read_text())["series"]["ec2_request_latency_system_failure.csv"]
    df = pd.read_csv(DATA / "ec2_request_latency_system_failure.csv", parse_dates=["timestamp"])
    s = df.groupby("timestamp")["value"].mean()
    grid = pd.date_range(s.index[0], s.index[-1], freq="5min")
    s = s.reindex(s.index.union(grid)).interpolate(method="time").reindex(grid)
    windows = windows_to_index(s.index, meta["windows"])
    assert len(windows) == 3
    z = mad_scores(s.to_numpy(), period=P).z[0]
    ev = precision_recall_at_k(events(z, threshold=3.5, series="ec2"), {"ec2": windows})
    assert ev.precision_at_k >= 2 / 3 and ev.recall_at_k >= 2 / 3


def test_simulator_hashboard_failure_is_the_top_finding():
    from edge.simulator.catalog import load_catalog
    from edge.simulator.clock import ManualClock
    from edge.simulator.faults import GroundTruth, parse_plan
    from edge.simulator.server import Simulator, build_miners

    t0 = 1_795_564_800.0  # midnight UTC
    miners = build_miners(load_catalog(), count=3, base_port=21000, t0=t0, seed=5)
    sim = Simulator(miners, ManualClock(t0), ground_truth=GroundTruth(None))
    plan = [{"kind": "hashboard_failure", "start": 86400 + 6 * 3600, "duration": 3600, "indexes": [1]}]
    sim.add_plan(parse_plan(plan, t0=t0, serials=[m.serial for m in miners]))
    truth = sim.ground_truth.records[0]
    times = t0 + 300 * np.arange(2 * P)
    hashrate = np.array([[m.reading(float(t)).hashrate_ths for t in times] for m in miners])
    points = detect(hashrate, method="mad", period=P, names=[m.serial for m in miners], metric="hashrate", since=P)
    start, end = pd.Timestamp(truth["start"]).timestamp(), pd.Timestamp(truth["end"]).timestamp()
    warned = [p for p in points if p.severity != "info"]
    assert warned and {p.series for p in warned} == {truth["serial"]}
    assert all(start <= times[p.index] < end for p in warned)
    assert re.match(r"hashrate 3[2-5] % below its usual level for this time of day", warned[0].reason)  # 1 of 3 chains
