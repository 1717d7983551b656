"""Miner failure risk, 0–1 per miner, from its recent history: a transparent logistic score (no Django here).

Each signal an operator would look at becomes a "badness" ``x`` in its own units, zero while the miner is fine
and growing past a threshold (capped at ``X_CAP`` so one wild reading cannot decide alone):

===================  ======================================================================  ======
signal               x                                                                       weight
===================  ======================================================================  ======
temp_margin          (15 °C − (limit − chip temperature now)) / 5 °C                         1.5
temp_rise            (chip temperature, last 3 days − the 11 before, − 1 °C) / 3 °C           0.8
hashrate_low         (95 % − hashrate last 3 days ÷ nominal) / 10 points                     1.0
hashrate_falling     (hashrate drop from the 11 days before to the last 3, ÷ nominal − 2 %)  0.8
                     / 5 points
restarts             (restarts in 7 days − 1) / 3                                            0.7
reject_rate          (rejected share of shares in 7 days − 1 %) / 1 point                    0.5
fan_drop             (slowest fan's drop from the same hours yesterday − 10 %) / 10 points   0.8
===================  ======================================================================  ======

score = 1 / (1 + e^−z), z = ``BIAS`` + Σ weight × x. With every signal quiet, score ≈ 1.8 %; one signal at its
cap adds 4 × its weight: a chip at its limit alone is at risk (0.62), 5 °C below it watch (0.27), 10 °C below
it ok (0.08). Tiers: ``at_risk`` from 0.5, ``watch`` from 0.2, else ``ok``. Each signal adding at least
``REASON_MIN`` logits becomes a reason in words, strongest first; the logits are kept so a page can show why.
A missing signal (no fan data, a new miner) adds nothing: the score never punishes absence of data, and the
features say what was missing.

The weights are set by hand from what the hosting rules already treat as trouble (90 °C critical, hashrate under
80 % of nominal, reject rate over 2 %: ``telemetry.rules.default_rules``), not learned: without labelled failures a
learned model would be a black box fitted to nothing. Vectorised: arrays in, arrays out, 100,000 miners in
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIAS = -4.0
X_CAP = 4.0
REASON_MIN = 0.3
AT_RISK, WATCH = 0.5, 0.2
# Firmware cuts hashing at about 95 °C on air-cooled SHA-256 ASICs; hydro and immersion models are rated for lower
# chip temperatures (their coolant keeps them far below), so the same margin means more there.
TEMP_LIMIT_C = {"air": 95.0, "hydro": 85.0, "immersion": 85.0}
WEIGHTS = {
    "temp_margin": 1.5,
    "temp_rise": 0.8,
    "hashrate_low": 1.0,
    "hashrate_falling": 0.8,
    "restarts": 0.7,
    "reject_rate": 0.5,
    "fan_drop": 0.8,
}
SIGNALS = tuple(WEIGHTS)
FEATURES = (
    "nominal_ths", "temp_limit_c", "temp_now_c", "temp_recent_c", "temp_prior_c", "hashrate_recent_ths",
    "hashrate_prior_ths", "restarts_7d", "accepted_7d", "rejected_7d", "fan_recent_rpm", "fan_prior_rpm", "days",
)  # fmt: skip


@dataclass(frozen=True)
class Scores:
    score: np.ndarray  # (n,)
    tier: np.ndarray  # (n,) of "ok" | "watch" | "at_risk"
    contributions: np.ndarray  # (n, len(SIGNALS)) logits added by each signal
    values: dict[str, np.ndarray]  # each signal's reading in its own unit (margin °C, ratio %, …)


def _nan(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, X_CAP)


def score(features: dict[str, np.ndarray]) -> Scores:
    """Scores for n miners; ``features`` holds an array per name in ``FEATURES`` (NaN where unknown)."""
    f = {k: _nan(features[k]) for k in FEATURES}
    with np.errstate(invalid="ignore", divide="ignore"):
        temp_now = np.where(np.isnan(f["temp_now_c"]), f["temp_recent_c"], f["temp_now_c"])
        margin = f["temp_limit_c"] - temp_now
        rise = f["temp_recent_c"] - f["temp_prior_c"]
        ratio = np.where(f["nominal_ths"] > 0, f["hashrate_recent_ths"] / f["nominal_ths"], np.nan)
        decline = np.where(f["nominal_ths"] > 0, (f["hashrate_prior_ths"] - f["hashrate_recent_ths"]) /
                           f["nominal_ths"], np.nan)  # fmt: skip
        shares = f["accepted_7d"] + f["rejected_7d"]
        reject_pct = np.where(shares > 0, 100.0 * f["rejected_7d"] / shares, np.nan)
        fan_drop = np.where(f["fan_prior_rpm"] > 0, 1.0 - f["fan_recent_rpm"] / f["fan_prior_rpm"], np.nan)
    x = {
        "temp_margin": (15.0 - margin) / 5.0,
        "temp_rise": (rise - 1.0) / 3.0,
        "hashrate_low": (0.95 - ratio) / 0.10,
        "hashrate_falling": (decline - 0.02) / 0.05,
        "restarts": (f["restarts_7d"] - 1.0) / 3.0,
        "reject_rate": (reject_pct - 1.0) / 1.0,
        "fan_drop": (fan_drop - 0.10) / 0.10,
    }
    contributions = np.column_stack([WEIGHTS[k] * _clip(x[k]) for k in SIGNALS])
    z = BIAS + contributions.sum(axis=1)
    s = 1.0 / (1.0 + np.exp(-z))
    tier = np.where(s >= AT_RISK, "at_risk", np.where(s >= WATCH, "watch", "ok"))
    values = {
        "temp_now_c": temp_now, "temp_margin_c": margin, "temp_rise_c": rise, "hashrate_pct": 100.0 * ratio,
        "hashrate_decline_pct": 100.0 * decline, "restarts_7d": f["restarts_7d"], "reject_pct": reject_pct,
        "fan_drop_pct": 100.0 * fan_drop, "temp_limit_c": f["temp_limit_c"],
    }  # fmt: skip
    return Scores(s, tier, contributions, values)


def _fmt(v: float, digits: int = 0) -> str:
    return f"{v:.{digits}f}"


def reason(signal: str, values: dict[str, float]) -> tuple[str, dict]:
    """The reason in English words and its parameters (a page words it in its own language from the params)."""
    v = values
    if signal == "temp_margin":
        p = {"temp_c": _fmt(v["temp_now_c"]), "margin_c": _fmt(v["temp_margin_c"]), "limit_c": _fmt(v["temp_limit_c"])}
        return f"chip temperature {p['temp_c']} °C, {p['margin_c']} °C below its {p['limit_c']} °C limit", p
    if signal == "temp_rise":
        p = {"rise_c": _fmt(v["temp_rise_c"], 1)}
        return f"chip temperature up {p['rise_c']} °C over the last 3 days", p
    if signal == "hashrate_low":
        p = {"pct": _fmt(v["hashrate_pct"])}
        return f"hashrate at {p['pct']} % of nominal over the last 3 days", p
    if signal == "hashrate_falling":
        p = {"pct": _fmt(v["hashrate_decline_pct"], 1)}
        return f"hashrate fell by {p['pct']} % of nominal in the last 3 days", p
    if signal == "restarts":
        p = {"count": _fmt(v["restarts_7d"])}
        return f"{p['count']} restarts in 7 days", p
    if signal == "reject_rate":
        p = {"pct": _fmt(v["reject_pct"], 1)}
        return f"{p['pct']} % of shares rejected in 7 days", p
    if signal == "fan_drop":
        p = {"pct": _fmt(v["fan_drop_pct"])}
        return f"slowest fan {p['pct']} % slower than at the same hours yesterday", p
    raise ValueError(signal)


def reasons_for(scores: Scores, i: int) -> list[dict]:
    """Miner i's reasons, strongest first: ``{"code", "logit", "text", "params"}``."""
    row = scores.contributions[i]
    values = {k: float(a[i]) for k, a in scores.values.items()}
    out = []
    for j in np.argsort(-row, kind="stable"):
        if row[j] < REASON_MIN:
            break
        text, params = reason(SIGNALS[j], values)
        out.append({"code": SIGNALS[j], "logit": round(float(row[j]), 2), "text": text, "params": params})
    return out
