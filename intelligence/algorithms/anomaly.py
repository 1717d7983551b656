"""Anomaly detection for telemetry series (hashrate, temperatures, power; 5-minute points, a daily season of 288):
robust z-scores against the usual level, by MAD (median absolute deviation, vectorised over many series at once)
or by STL (seasonal-trend decomposition, statsmodels, one series at a time), and the scoring of detections
against labelled windows (precision@K, recall).

Scores are robust z: (value − expected) / (1.4826 × MAD of the deviations), so one broken miner or one spike
does not widen the yardstick it is measured with. Severity by |z|: info ≥ 3.5, warning ≥ 5, critical ≥ 8.
Input is plain data: an array of shape (series, points) on a regular grid (NaN where a point is missing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826  # MAD × this estimates σ for normal data
DAILY_PERIOD_5MIN = 288
TEMPERATURE_UNITS = ("°C", "C", "degC", "°F", "F")


@dataclass(frozen=True)
class Thresholds:
    """|robust z| at which a point becomes info / warning / critical."""

    info: float = 3.5
    warning: float = 5.0
    critical: float = 8.0

    def severity(self, score: float) -> str | None:
        if score >= self.critical:
            return "critical"
        if score >= self.warning:
            return "warning"
        if score >= self.info:
            return "info"
        return None


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class AnomalyPoint:
    """One anomalous point: which series, where, what was seen and expected, how unusual, and why in words."""

    series: str
    index: int
    timestamp: pd.Timestamp | None
    value: float
    expected: float
    score: float  # |robust z|
    severity: str
    reason: str
    detector: str

    def as_dict(self) -> dict:
        return {
            "series": self.series,
            "index": self.index,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
            "value": self.value,
            "expected": self.expected,
            "score": round(self.score, 3),
            "severity": self.severity,
            "reason": self.reason,
            "detector": self.detector,
        }


@dataclass(frozen=True)
class Scores:
    """Per-point results of a detector, arrays of shape (series, points): signed z and the expected value."""

    z: np.ndarray
    expected: np.ndarray
    detector: str
    seasonal: bool


def _as_2d(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError("values must be one series (1-D) or many (2-D: series × points)")
    if np.isinf(a).any():
        raise ValueError("values contain infinite numbers")
    return a


def nanmedian(a: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """Median ignoring NaN, vectorised: sort (NaN sorts last), then pick the middle of each row's valid values.
    numpy's own nanmedian falls back to a Python loop per row on large arrays (seconds per 10,000 series)."""
    a = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
    srt = np.sort(a, axis=-1)
    n = np.sum(~np.isnan(a), axis=-1)
    lo = np.clip((n - 1) // 2, 0, None)[..., None]
    hi = np.clip(n // 2, 0, None)[..., None]
    m = (np.take_along_axis(srt, lo, -1) + np.take_along_axis(srt, hi, -1))[..., 0] / 2
    m = np.where(n > 0, m, np.nan)
    return np.expand_dims(m, axis) if keepdims else m


def robust_scale(resid: np.ndarray, level: np.ndarray, rel_floor: float, abs_floor: float) -> np.ndarray:
    """1.4826 × MAD of each row's residuals, floored at rel_floor × |level| + abs_floor, so a flat series (a miner
    whose reading never moves) does not turn a rounding step into an infinite score."""
    with np.errstate(all="ignore"):
        center = nanmedian(resid, axis=1, keepdims=True)
        mad = nanmedian(np.abs(resid - center), axis=1, keepdims=True)
    scale = MAD_TO_SIGMA * np.nan_to_num(mad, nan=0.0)
    floor = rel_floor * np.abs(np.nan_to_num(level, nan=0.0)) + abs_floor
    return np.maximum(scale, floor)


def mad_scores(
    values,
    *,
    period: int | None = None,
    smooth: int = 2,
    rel_floor: float = 0.005,
    abs_floor: float = 1e-9,
) -> Scores:
    """Robust z of every point, vectorised over all series.

    Without ``period``: expected = the series' median. With ``period`` (288 for a daily season of 5-minute
    points; the grid must start at the same time of day for all rows): expected = the median of the points in
    the same slot on the *other* days (then smoothed over ± ``smooth`` neighbouring slots), so a daily cycle is
    expected, not flagged, and a point never sets its own expectation (with a few days of history it would
    otherwise often be the median itself: a zero residual that shrinks the MAD and inflates every other score).
    Missing points get NaN."""
    a = _as_2d(values)
    n_series, n = a.shape
    with np.errstate(all="ignore"):
        if period:
            if period < 2 or n < 2 * period:
                raise ValueError(f"a seasonal MAD needs at least two periods ({2 * period} points), got {n}")
            days = math.ceil(n / period)
            padded = np.full((n_series, days * period), np.nan)
            padded[:, :n] = a
            by_day = padded.reshape(n_series, days, period)
            expected = np.empty_like(by_day)
            for d in range(days):
                others = np.delete(by_day, d, axis=1)  # the point's own day never sets its expectation
                slot = nanmedian(others, axis=1)
                if smooth:  # then the median of the neighbouring slots (wrapping round midnight): less noise
                    near = np.stack([np.roll(slot, k, axis=1) for k in range(-smooth, smooth + 1)], axis=2)
                    slot = nanmedian(near, axis=2)
                expected[:, d] = slot
            expected = expected.reshape(n_series, -1)[:, :n]
        else:
            expected = np.repeat(nanmedian(a, axis=1, keepdims=True), n, axis=1)
        resid = a - expected
        level = nanmedian(np.abs(a), axis=1, keepdims=True)
        scale = robust_scale(resid, level, rel_floor, abs_floor)
        z = (resid - nanmedian(resid, axis=1, keepdims=True)) / scale
    return Scores(z=z, expected=expected, detector="mad_seasonal" if period else "mad", seasonal=bool(period))


@dataclass(frozen=True)
class Baseline:
    """What is usual for each series, learned from its history, so a scan scores only the newest points:
    ``profile`` (series × period) the expected value per slot of the day, ``center`` and ``scale`` (series × 1)
    the median and 1.4826 × MAD of the history's deviations from it."""

    profile: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    period: int


def seasonal_baseline(
    history, *, period: int = DAILY_PERIOD_5MIN, smooth: int = 2, rel_floor: float = 0.005, abs_floor: float = 1e-9
) -> Baseline:
    """Learn a :class:`Baseline` from ``history`` (series × points, starting at slot 0 of a day; at least two
    days). The spread comes from the leave-one-day-out deviations of :func:`mad_scores`; the profile is the
    per-slot median over all days, smoothed like there. Costs about what one ``mad_scores`` call costs: refresh it
    now and then (hourly, daily), not at every scan."""
    a = _as_2d(history)
    scores = mad_scores(a, period=period, smooth=smooth, rel_floor=rel_floor, abs_floor=abs_floor)
    n_series, n = a.shape
    days = math.ceil(n / period)
    padded = np.full((n_series, days * period), np.nan)
    padded[:, :n] = a
    slot = nanmedian(padded.reshape(n_series, days, period), axis=1)
    if smooth:
        slot = nanmedian(np.stack([np.roll(slot, k, axis=1) for k in range(-smooth, smooth + 1)], axis=2), axis=2)
    with np.errstate(all="ignore"):
        resid = a - scores.expected
        level = nanmedian(np.abs(a), axis=1, keepdims=True)
        center = nanmedian(resid, axis=1, keepdims=True)
        scale = robust_scale(resid, level, rel_floor, abs_floor)
    return Baseline(profile=slot, center=np.nan_to_num(center), scale=scale, period=period)


def score_against(baseline: Baseline, values, *, first_slot: int) -> Scores:
    """Robust z of new points (series × m, consecutive, the first at slot ``first_slot`` of the day) against a
    baseline: one subtraction and one division per point, vectorised over every series."""
    a = _as_2d(values)
    if a.shape[0] != baseline.profile.shape[0]:
        raise ValueError(f"{a.shape[0]} series for a baseline of {baseline.profile.shape[0]}")
    slots = (first_slot + np.arange(a.shape[1])) % baseline.period
    expected = baseline.profile[:, slots]
    with np.errstate(invalid="ignore"):
        z = (a - expected - baseline.center) / baseline.scale
    return Scores(z=z, expected=expected, detector="mad_seasonal", seasonal=True)


def stl_scores(
    values,
    *,
    period: int = DAILY_PERIOD_5MIN,
    robust: bool = True,
    seasonal_window: int = 15,
    rel_floor: float = 0.005,
    abs_floor: float = 1e-9,
) -> Scores:
    """Robust z of the STL residual (value − trend − season), one series at a time (statsmodels' STL has no batch
    form). Robust STL down-weights outliers while fitting, so a fault stays in the residual instead of bending the
    trend. Missing points are interpolated for the fit and scored NaN. Needs two full periods, and about seven for
    an honest scale: with only a few, the robust seasonal fit passes close to the middle day's point, many residuals
    are near zero, the MAD shrinks and pure noise reaches |z| ≈ 7 (3 days) instead of ≈ 4.5 (7 days)."""
    from statsmodels.tsa.seasonal import STL  # imported here: heavy, and only this detector needs it

    a = _as_2d(values)
    n_series, n = a.shape
    if n < 2 * period:
        raise ValueError(f"STL needs at least two periods ({2 * period} points), got {n}")
    expected = np.full_like(a, np.nan)
    for i in range(n_series):
        row = a[i]
        ok = np.isfinite(row)
        if ok.sum() < 2 * period:
            continue
        filled = pd.Series(row).interpolate(limit_direction="both").to_numpy()
        # jumps: LOESS evaluated every ~period/20 points and interpolated between (statsmodels' own option);
        # 20-50× faster at period 288 and the fitted curves differ by well under the noise
        # seasonal_deg=0 and a wide seasonal window: each slot's seasonal value is a (robust) level across the
        # days, not a line through them; with a few days a local line fits every day's value, fault included,
        # and leaves no residual to score
        jump = max(1, period // 20)
        fit = STL(
            filled,
            period=period,
            seasonal=seasonal_window,
            seasonal_deg=0,
            robust=robust,
            seasonal_jump=jump,
            trend_jump=jump,
            low_pass_jump=jump,
        ).fit()
        expected[i] = fit.trend + fit.seasonal
        expected[i, ~ok] = np.nan
    with np.errstate(all="ignore"):
        resid = a - expected
        level = nanmedian(np.abs(a), axis=1, keepdims=True)
        scale = robust_scale(resid, level, rel_floor, abs_floor)
        z = (resid - nanmedian(resid, axis=1, keepdims=True)) / scale
    return Scores(z=z, expected=expected, detector="stl", seasonal=True)


def reason(
    *, metric: str, value: float, expected: float, seasonal: bool, unit: str = "", relative: bool | None = None
) -> str:
    """The finding in words, e.g. "hashrate 38 % below its usual level for this time of day (expected 200 TH/s,
    got 124 TH/s)". Temperatures (or ``relative=False``) are told in degrees, the rest in per cent."""
    when = " for this time of day" if seasonal else ""
    direction = "below" if value < expected else "above"
    u = f" {unit}" if unit else ""
    if relative is None:
        relative = unit not in TEMPERATURE_UNITS and expected != 0
    seen = f"(expected {expected:.4g}{u}, got {value:.4g}{u})"
    if relative and expected != 0:
        pct = abs(value - expected) / abs(expected) * 100
        return f"{metric} {pct:.0f} % {direction} its usual level{when} {seen}"
    return f"{metric} {abs(value - expected):.1f}{u} {direction} its usual level{when} {seen}"


def detect(
    values,
    *,
    method: str = "mad",
    period: int | None = DAILY_PERIOD_5MIN,
    names: Sequence[str] | None = None,
    timestamps=None,
    metric: str = "value",
    unit: str = "",
    relative: bool | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    since: int = 0,
    direction: str = "both",
) -> list[AnomalyPoint]:
    """Anomalous points, highest score first. ``method`` "mad" (vectorised; seasonal when ``period``) or "stl".
    ``since``: report only points at or after this index (the scan's newest hour, say) while the whole array is
    the baseline. ``direction`` "low"/"high" keeps only drops/rises (hashrate: a rise is rarely a fault)."""
    a = _as_2d(values)
    if method == "mad":
        scores = mad_scores(a, period=period)
    elif method == "stl":
        scores = stl_scores(a, period=period or DAILY_PERIOD_5MIN)
    else:
        raise ValueError(f"method must be mad or stl, got {method!r}")
    names = list(names) if names is not None else [str(i) for i in range(a.shape[0])]
    if len(names) != a.shape[0]:
        raise ValueError(f"{len(names)} names for {a.shape[0]} series")
    ts = None if timestamps is None else pd.DatetimeIndex(timestamps)
    z = scores.z.copy()
    z[:, :since] = np.nan
    if direction == "low":
        z[z > 0] = np.nan
    elif direction == "high":
        z[z < 0] = np.nan
    with np.errstate(invalid="ignore"):
        hits = np.argwhere(np.abs(z) >= thresholds.info)
    points = []
    for i, j in hits:
        score = float(abs(z[i, j]))
        value, expected = float(a[i, j]), float(scores.expected[i, j])
        points.append(
            AnomalyPoint(
                series=names[i],
                index=int(j),
                timestamp=None if ts is None else ts[j],
                value=value,
                expected=expected,
                score=score,
                severity=thresholds.severity(score),
                reason=reason(
                    metric=metric,
                    value=value,
                    expected=expected,
                    seasonal=scores.seasonal,
                    unit=unit,
                    relative=relative,
                ),
                detector=scores.detector,
            )
        )
    points.sort(key=lambda p: -p.score)
    return points


# --- evaluation against labelled windows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A run of flagged points (gaps of at most ``gap`` points merged): one alert, scored by its peak."""

    series: str
    start: int
    end: int  # inclusive
    score: float


def events(score: np.ndarray, *, threshold: float, gap: int = 6, series: str = "") -> list[Event]:
    """Group the points of one series whose |score| ≥ threshold into events."""
    s = np.abs(np.nan_to_num(np.asarray(score, dtype=float), nan=0.0))
    idx = np.flatnonzero(s >= threshold)
    out: list[Event] = []
    if not len(idx):
        return out
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    for a, b in zip(starts, ends, strict=True):
        out.append(Event(series, int(a), int(b), float(s[a : b + 1].max())))
    return out


def windows_to_index(timestamps, windows) -> list[tuple[int, int]]:
    """Labelled [start, end] time windows → inclusive index ranges on the series' timestamps (sorted)."""
    ts = pd.DatetimeIndex(timestamps)
    out = []
    for start, end in windows:
        a = int(ts.searchsorted(pd.Timestamp(start), side="left"))
        b = int(ts.searchsorted(pd.Timestamp(end), side="right")) - 1
        if b >= a:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class Evaluation:
    k: int
    precision_at_k: float
    recall_at_k: float  # windows hit by at least one of the top-K events
    true_positives: int
    windows: int


def precision_recall_at_k(
    found: Sequence[Event], windows: dict[str, list[tuple[int, int]]], *, k: int | None = None
) -> Evaluation:
    """Rank events by score; of the top K (default: as many as there are windows), the share that overlaps a
    labelled window of its series (precision@K) and the share of windows overlapped by one of them (recall).
    Windows-based, as NAB labels are windows: several events in one window all count as true, which is why
    the events are merged runs rather than single points."""
    total = sum(len(w) for w in windows.values())
    k = total if k is None else k
    top = sorted(found, key=lambda e: -e.score)[:k]
    hit_windows: set[tuple[str, int]] = set()
    tp = 0
    for e in top:
        hit = False
        for wi, (a, b) in enumerate(windows.get(e.series, [])):
            if e.start <= b and e.end >= a:
                hit = True
                hit_windows.add((e.series, wi))
        tp += hit
    precision = tp / len(top) if top else float("nan")
    recall = len(hit_windows) / total if total else float("nan")
    return Evaluation(k=k, precision_at_k=precision, recall_at_k=recall, true_positives=tp, windows=total)
