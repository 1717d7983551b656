"""The scan's decision on plain arrays (``score_latest``): sustained windows, the daily season once two days of
history exist, peers setting a common movement apart, and no verdict without enough data."""

from __future__ import annotations

import numpy as np
import pytest

from intelligence import anomaly_scan as scan

RNG = np.random.default_rng(3)


def flat(miners=15, windows=300, level=70.0, noise=0.3):
    return level + noise * RNG.standard_normal((miners, windows))


def test_fifteen_minutes_beyond_the_threshold_hold_ten_do_not():
    a = flat()
    a[2, -3:] += 8  # 15 min
    a[5, -2:] += 8  # 10 min: a blip
    s = scan.score_latest(a, direction="high")
    assert list(np.flatnonzero(s.holds())) == [2]
    assert s.flagged[2] == 3 and s.flagged[5] == 2
    assert s.value[2] == pytest.approx(78, abs=1) and s.expected[2] == pytest.approx(70, abs=0.3)


def test_the_direction_decides_what_counts():
    a = flat(level=200.0, noise=0.5)
    a[1, -6:] *= 0.7
    a[3, -6:] *= 1.3
    assert list(np.flatnonzero(scan.score_latest(a, direction="low").holds())) == [1]
    assert list(np.flatnonzero(scan.score_latest(a, direction="high").holds())) == [3]
    assert list(np.flatnonzero(scan.score_latest(a, direction="both").holds())) == [1, 3]


def test_what_the_whole_peer_group_does_at_once_is_not_one_miners_anomaly():
    a = flat()
    a[:, -12:] += 10  # a hot afternoon for the whole hall
    a[4, -12:] += 10  # and one miner hotter still
    assert scan.score_latest(a, direction="high").holds().sum() == 15
    with_peers = scan.score_latest(a, direction="high", groups=np.zeros(15, dtype=int))
    assert list(np.flatnonzero(with_peers.holds())) == [4]
    assert with_peers.value[4] == pytest.approx(90, abs=1)  # told in the metric's own terms
    assert with_peers.expected[4] == pytest.approx(80, abs=1)  # the usual level plus the hall's movement


def test_a_group_too_small_is_not_set_against_itself():
    a = flat(miners=5)
    a[:, -12:] += 10
    assert scan.score_latest(a, direction="high", groups=np.zeros(5, dtype=int)).holds().sum() == 5


def test_two_days_of_history_use_the_daily_season_and_a_cycle_stays_quiet():
    n = 2 * 288 + 24
    t = np.arange(n)
    a = 70 + 8 * np.sin(2 * np.pi * t / 288)[None, :] + 0.3 * RNG.standard_normal((6, n))
    s = scan.score_latest(a, direction="high")
    assert s.seasonal.all() and not s.holds().any()
    a[0, -4:] += 5
    assert list(np.flatnonzero(scan.score_latest(a, direction="high").holds())) == [0]


def test_no_verdict_without_enough_history_or_enough_windows():
    a = flat(miners=3)
    a[0, :-12] = np.nan  # a new miner: no history
    a[0, -12:] = 200.0
    a[1, -12:-2] = np.nan  # only two windows in the newest hour
    s = scan.score_latest(a, direction="both")
    assert np.isnan(s.score[0]) and np.isnan(s.score[1])
    assert not s.holds()[0] and not s.clears()[0] and not s.clears()[1]
    assert s.clears()[2]


def test_idle_windows_are_taken_out_of_hashrate_and_power_only():
    values = np.full((1, 20), 200.0)
    uptime = np.ones((1, 20))
    uptime[0, -3:] = 0.0
    hashrate = scan.prepare(scan.METRIC_BY_KEY["hashrate"], values, uptime)
    temperature = scan.prepare(scan.METRIC_BY_KEY["temperature"], values, uptime)
    assert np.isnan(hashrate[0, -3:]).all() and not np.isnan(temperature).any()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        scan.score_latest(np.ones(30))
    with pytest.raises(ValueError):
        scan.score_latest(np.ones((3, 12)))
