"""``intelligence.algorithms.miner_health``: each signal on a hand-checkable miner, the logistic sum, tiers,
reasons in words, missing data adding nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intelligence.algorithms import miner_health as mh

HEALTHY = {
    "nominal_ths": 200.0, "temp_limit_c": 95.0, "temp_now_c": 70.0, "temp_recent_c": 70.0, "temp_prior_c": 70.0,
    "hashrate_recent_ths": 200.0, "hashrate_prior_ths": 200.0, "restarts_7d": 0.0, "accepted_7d": 10_000.0,
    "rejected_7d": 10.0, "fan_recent_rpm": 6000.0, "fan_prior_rpm": 6000.0, "days": 14.0,
}  # fmt: skip


def one(**changes) -> mh.Scores:
    return mh.score({k: np.array([changes.get(k, v)]) for k, v in HEALTHY.items()})


def logit(s: float) -> float:
    return math.log(s / (1 - s))


def test_a_healthy_miner_scores_the_bias_only():
    s = one()
    assert s.score[0] == pytest.approx(1 / (1 + math.exp(4.0)))
    assert s.tier[0] == "ok" and mh.reasons_for(s, 0) == []


@pytest.mark.parametrize(
    ("changes", "signal", "x"),
    [
        ({"temp_now_c": 90.0}, "temp_margin", 2.0),  # 5 °C margin: (15 − 5) / 5
        ({"temp_recent_c": 77.0, "temp_now_c": 70.0}, "temp_rise", 2.0),  # +7 °C: (7 − 1) / 3
        ({"hashrate_recent_ths": 170.0, "hashrate_prior_ths": 170.0}, "hashrate_low", 1.0),  # 85 %: (95 − 85) / 10
        ({"hashrate_prior_ths": 224.0}, "hashrate_falling", 2.0),  # 12 % drop: (12 − 2) / 5
        ({"restarts_7d": 7.0}, "restarts", 2.0),  # (7 − 1) / 3
        ({"rejected_7d": 300.0, "accepted_7d": 9_700.0}, "reject_rate", 2.0),  # 3 %: (3 − 1) / 1
        ({"fan_recent_rpm": 4800.0}, "fan_drop", 1.0),  # 20 % slower: (20 − 10) / 10
    ],
)
def test_each_signal_adds_weight_times_its_badness(changes, signal, x):
    s = one(**changes)
    assert logit(s.score[0]) == pytest.approx(mh.BIAS + mh.WEIGHTS[signal] * x)
    [r] = mh.reasons_for(s, 0)
    assert r["code"] == signal and r["logit"] == pytest.approx(mh.WEIGHTS[signal] * x, abs=0.01)


def test_reasons_are_words_with_units_strongest_first():
    s = one(temp_now_c=93.0, restarts_7d=10.0, fan_recent_rpm=3000.0)
    reasons = mh.reasons_for(s, 0)
    assert [r["code"] for r in reasons] == ["temp_margin", "fan_drop", "restarts"]
    assert reasons[0]["text"] == "chip temperature 93 °C, 2 °C below its 95 °C limit"
    assert reasons[1]["text"] == "slowest fan 50 % slower than at the same hours yesterday"
    assert reasons[2]["text"] == "10 restarts in 7 days"
    assert s.tier[0] == "at_risk"


def test_each_signal_is_capped():
    s = one(temp_now_c=150.0)
    assert logit(s.score[0]) == pytest.approx(mh.BIAS + mh.WEIGHTS["temp_margin"] * mh.X_CAP)


def test_tiers_follow_the_thresholds():
    # z = −4 + 1.5 × (15 − margin) / 5: watch from 0.2 (z ≥ −1.386), at risk from 0.5 (z ≥ 0)
    temps = np.array([70.0, 85.0, 90.0, 95.0])
    f = {k: np.full(4, v) for k, v in HEALTHY.items()}
    f["temp_now_c"] = temps
    s = mh.score(f)
    assert s.tier.tolist() == ["ok", "ok", "watch", "at_risk"]


def test_missing_data_adds_nothing():
    nan = float("nan")
    s = one(temp_now_c=nan, temp_recent_c=nan, temp_prior_c=nan, fan_recent_rpm=nan, fan_prior_rpm=nan,
            accepted_7d=0.0, rejected_7d=0.0, hashrate_recent_ths=nan, hashrate_prior_ths=nan)  # fmt: skip
    assert s.score[0] == pytest.approx(1 / (1 + math.exp(4.0)))


def test_the_chip_temperature_now_falls_back_to_the_daily_one():
    s = one(temp_now_c=float("nan"), temp_recent_c=90.0, temp_prior_c=90.0)
    assert s.values["temp_margin_c"][0] == 5.0


def test_a_hundred_thousand_miners_at_once():
    n = 100_000
    rng = np.random.default_rng(0)
    f = {k: np.full(n, v) for k, v in HEALTHY.items()}
    f["temp_now_c"] = rng.uniform(60, 96, n)
    s = mh.score(f)
    assert s.score.shape == (n,) and set(np.unique(s.tier)) <= {"ok", "watch", "at_risk"}
