"""Hourly power forecasts for one asset (a site, a zone or a miner) from its own history: plain numpy in and out.

A farm's power has a daily shape (curtailment at the afternoon price peak, hotter hours throttling, operators'
shifts) on top of a level that moves with how many machines run. The model says exactly that:

    forecast(t + h) = profile[hour of day of t + h] + level × φ^h

``profile`` is the mean of each hour of day over the last ``PROFILE_DAYS`` days before the origin (NaN-aware, so
hours missing from the history do not pull it down); ``level`` is how far the last ``LEVEL_HOURS`` hours ran above
or below that profile, and it fades by ``φ`` per hour ahead (a fleet partly curtailed now is likely still partly
curtailed next hour, much less so tomorrow). Intervals are empirical: the same rule is replayed from every past
hour that has a week of future after it and its errors at each lead become the 2.5/10/90/97.5 % quantiles; where
fewer than ``MIN_ERRORS`` errors exist at a lead, the 1-hour spread is scaled by √h.

With less than two days of hours there is no daily profile to speak of, so the **flat** fallback serves: the mean
of the last day (or what there is), spread by the hourly changes seen, and the answer says why.

Bounds are clipped at 0 kW (a machine does not give power back). Energy per hour is power × 1 h.

Also here: ``parse_series_csv`` for uploaded training series (``ts,value`` with one regular step).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

QUANTILES = (0.025, 0.10, 0.90, 0.975)  # lower95, lower80, upper80, upper95
Z = np.array([-1.959963984540054, -1.2815515655446004, 1.2815515655446004, 1.959963984540054])
HOUR_S = 3600
MAX_HORIZON = 168
MIN_HOURS = 3  # below this nothing can be said
SEASONAL_MIN_HOURS = 48  # two full days: a profile with every hour of day seen twice
PROFILE_DAYS = 7
LEVEL_HOURS = 6
PHI = 0.95  # the level's fade per hour ahead: half of it left after ~13.5 h
MIN_ERRORS = 20
MAX_GAP_HOURS = 6  # interior gaps up to this long are interpolated; longer ones stay missing
SEASONAL = "seasonal_level"
FLAT = "flat"


class AssetDataError(ValueError):
    """Input the forecaster cannot use; ``code`` is the API's error code, ``index`` the offending point if any."""

    def __init__(self, code: str, message: str, *, index: int | None = None):
        super().__init__(message)
        self.code, self.message, self.index = code, message, index


@dataclass(frozen=True)
class HourlySeries:
    """Mean power (kW) per UTC hour; ``start`` is the first hour (epoch seconds, a multiple of 3600)."""

    start: int
    kw: np.ndarray

    @property
    def end(self) -> int:
        """The hour after the last one (the first forecast hour)."""
        return self.start + len(self.kw) * HOUR_S


def to_hourly(secs: np.ndarray, kw: np.ndarray, *, interval_s: float | None = None) -> HourlySeries:
    """Points at any regular step (epoch seconds, kW) as the mean power of each UTC hour they fall in. Hours
    without a point are missing; interior gaps up to ``MAX_GAP_HOURS`` are filled linearly. Leading and trailing
    missing hours are dropped. ``interval_s`` (the points' step) only serves to say that a point stands for the
    hour it starts in, whatever the step: a point is never spread over later hours."""
    secs = np.asarray(secs, dtype=float)
    kw = np.asarray(kw, dtype=float)
    if len(secs) == 0:
        raise AssetDataError("too_few_points", "No points.")
    hours = np.floor(secs / HOUR_S).astype(np.int64)
    first, last = int(hours.min()), int(hours.max())
    n = last - first + 1
    if n > 24 * 400:
        raise AssetDataError("invalid_ts", "The points span more than 400 days.")
    total = np.bincount(hours - first, weights=kw, minlength=n)
    count = np.bincount(hours - first, minlength=n)
    out = np.full(n, np.nan)
    seen = count > 0
    out[seen] = total[seen] / count[seen]
    return HourlySeries(first * HOUR_S, fill_gaps(out))


def fill_gaps(x: np.ndarray, max_gap: int = MAX_GAP_HOURS) -> np.ndarray:
    """Linear interpolation over interior runs of NaN up to ``max_gap`` long; longer runs stay NaN."""
    x = np.array(x, dtype=float)
    missing = np.isnan(x)
    if not missing.any() or missing.all():
        return x
    idx = np.arange(len(x))
    filled = np.interp(idx, idx[~missing], x[~missing])
    # run lengths of NaN
    edges = np.diff(np.r_[0, missing.astype(int), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for s, e in zip(starts, ends, strict=True):
        if s > 0 and e < len(x) and e - s <= max_gap:
            x[s:e] = filled[s:e]
    return x


def trim(series: HourlySeries) -> HourlySeries:
    """Without leading and trailing missing hours."""
    known = np.flatnonzero(~np.isnan(series.kw))
    if not len(known):
        return HourlySeries(series.start, series.kw[:0])
    a, b = int(known[0]), int(known[-1]) + 1
    return HourlySeries(series.start + a * HOUR_S, series.kw[a:b])


@dataclass(frozen=True)
class AssetForecast:
    """``horizon`` hourly forecasts after the history's last hour: kW, with 80 % and 95 % bounds."""

    method: str
    reason: str
    start: int  # epoch seconds of the first forecast hour
    mean: np.ndarray
    lower80: np.ndarray
    upper80: np.ndarray
    lower95: np.ndarray
    upper95: np.ndarray
    history_hours: int
    details: dict = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return len(self.mean)

    def head(self, horizon: int) -> AssetForecast:
        return AssetForecast(
            self.method, self.reason, self.start, self.mean[:horizon], self.lower80[:horizon],
            self.upper80[:horizon], self.lower95[:horizon], self.upper95[:horizon], self.history_hours,
            self.details,
        )  # fmt: skip

    def as_dict(self) -> dict:
        """JSON-safe, for the cache."""
        return {
            "method": self.method, "reason": self.reason, "start": self.start, "history_hours": self.history_hours,
            "details": self.details,
            **{k: [round(float(v), 4) for v in getattr(self, k)]
               for k in ("mean", "lower80", "upper80", "lower95", "upper95")},
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> AssetForecast:
        arrays = {k: np.asarray(d[k], dtype=float) for k in ("mean", "lower80", "upper80", "lower95", "upper95")}
        return cls(d["method"], d["reason"], int(d["start"]), history_hours=int(d["history_hours"]),
                   details=d.get("details", {}), **arrays)  # fmt: skip

    def points(self) -> list[dict]:
        """One row per hour: power (kW) and energy (kWh) with their bounds."""
        rows = []
        for i in range(self.horizon):
            ts = datetime.fromtimestamp(self.start + i * HOUR_S, tz=UTC).isoformat().replace("+00:00", "Z")
            kw = [round(float(a[i]), 3) for a in (self.mean, self.lower80, self.upper80, self.lower95, self.upper95)]
            rows.append({
                "ts": ts, "power_kw": kw[0], "power_kw_lo80": kw[1], "power_kw_hi80": kw[2],
                "power_kw_lo95": kw[3], "power_kw_hi95": kw[4],
                # one hour at the mean power: the same figures in kWh
                "energy_kwh": kw[0], "energy_kwh_lo80": kw[1], "energy_kwh_hi80": kw[2],
                "energy_kwh_lo95": kw[3], "energy_kwh_hi95": kw[4],
            })  # fmt: skip
        return rows

    def energy_total(self) -> dict:
        """Energy over the whole horizon. The bounds add the hourly bounds, i.e. they assume the hours' errors move
        together (a fleet that is down stays down): wider than independent errors would give, never narrower."""
        return {
            "energy_kwh": round(float(self.mean.sum()), 3),
            "energy_kwh_lo80": round(float(self.lower80.sum()), 3),
            "energy_kwh_hi80": round(float(self.upper80.sum()), 3),
            "energy_kwh_lo95": round(float(self.lower95.sum()), 3),
            "energy_kwh_hi95": round(float(self.upper95.sum()), 3),
        }


def _hod(start: int, n: int, offset: int = 0) -> np.ndarray:
    return ((start // HOUR_S + offset + np.arange(n)) % 24).astype(int)


def _profile(x: np.ndarray, hod: np.ndarray, t: int, days: int) -> np.ndarray:
    """Mean per hour of day over the ``days`` days ending at index t (inclusive); NaN where an hour is unseen."""
    lo = max(0, t + 1 - 24 * days)
    window, hours = x[lo : t + 1], hod[lo : t + 1]
    ok = ~np.isnan(window)
    sums = np.bincount(hours[ok], weights=window[ok], minlength=24)
    counts = np.bincount(hours[ok], minlength=24)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    if np.isnan(prof).any():  # an hour of day never seen: the window's mean stands in
        prof = np.where(np.isnan(prof), np.nanmean(window) if ok.any() else 0.0, prof)
    return prof


def _seasonal_point(x: np.ndarray, hod: np.ndarray, t: int, horizon: int) -> np.ndarray:
    """The seasonal-plus-level rule standing at index t, for t+1..t+horizon."""
    days = min(PROFILE_DAYS, (t + 1) // 24)
    prof = _profile(x, hod, t, days)
    recent = slice(max(0, t + 1 - LEVEL_HOURS), t + 1)
    dev = x[recent] - prof[hod[recent]]
    level = float(np.nanmean(dev)) if np.isfinite(dev).any() else 0.0
    h = np.arange(1, horizon + 1)
    future_hod = (hod[t] + h) % 24
    return prof[future_hod] + level * PHI**h


def _empirical_bands(x: np.ndarray, hod: np.ndarray, center: np.ndarray, rule, *, first: int) -> np.ndarray:
    """Quantiles of the rule's own errors at each lead, replayed from past origins (no look-ahead: each origin
    uses only what came before it). Returns (4, horizon) bounds around ``center``."""
    n, horizon = len(x), len(center)
    # Every hour as an origin is enough data but costs O(n × horizon); every 3rd hour keeps all hours of day
    # (3 divides 24, so the pick shifts by one hour each day) and a third of the work.
    origins = [t for t in range(first, n - 1) if (t + t // 24) % 3 == 0 and not np.isnan(x[t])]
    err = np.full((len(origins), horizon), np.nan)
    for row, t in enumerate(origins):
        lead = min(horizon, n - 1 - t)
        err[row, :lead] = x[t + 1 : t + 1 + lead] - rule(t, lead)
    counts = np.sum(~np.isnan(err), axis=0)
    enough = counts >= MIN_ERRORS
    q = np.empty((4, horizon))
    if enough.any():
        q[:, enough] = np.nanquantile(err[:, enough], QUANTILES, axis=0)
        sigma1 = float(np.nanstd(err[:, int(np.argmax(enough))]))
    else:
        d = np.diff(x[~np.isnan(x)])
        sigma1 = float(np.std(d)) if len(d) > 1 else 0.0
    for i in np.flatnonzero(~enough):
        q[:, i] = Z * sigma1 * math.sqrt(i + 1)
    # uncertainty never shrinks further ahead
    q[:2] = -np.maximum.accumulate(-q[:2], axis=1)
    q[2:] = np.maximum.accumulate(q[2:], axis=1)
    return center + q


def _finish(method, reason, series, center, bands, details) -> AssetForecast:
    center = np.maximum(center, 0.0)
    lo95, lo80, hi80, hi95 = (np.maximum(b, 0.0) for b in bands)
    lo80, hi80 = np.minimum(lo80, center), np.maximum(hi80, center)
    lo95, hi95 = np.minimum(lo95, lo80), np.maximum(hi95, hi80)
    return AssetForecast(method, reason, series.end, center, lo80, hi80, lo95, hi95, len(series.kw), details)


def forecast_power(series: HourlySeries, horizon: int = MAX_HORIZON) -> AssetForecast:
    """The seasonal-plus-level forecast of ``horizon`` hours after the series, or the flat fallback with the
    reason when the history is shorter than ``SEASONAL_MIN_HOURS``."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise AssetDataError("invalid_horizon", f"The horizon is 1 to {MAX_HORIZON} hours.")
    series = trim(series)
    x = series.kw
    known = int(np.sum(~np.isnan(x)))
    if known < MIN_HOURS:
        raise AssetDataError("too_few_points", f"At least {MIN_HOURS} hours with data are needed, got {known}.")
    if np.nanmin(x) < 0:
        raise AssetDataError("negative_value", "Power cannot be negative.")
    n = len(x)
    hod = _hod(series.start, n)
    if n < SEASONAL_MIN_HOURS:
        recent = x[-24:]
        level = float(np.nanmean(recent))
        d = np.diff(x[~np.isnan(x)])
        sigma1 = float(np.std(d)) if len(d) > 1 else 0.0
        h = np.arange(1, horizon + 1)
        center = np.full(horizon, level)
        bands = center + np.outer(Z, sigma1 * np.sqrt(h))
        reason = (
            f"flat fallback: only {n} hours of history; the daily profile needs {SEASONAL_MIN_HOURS} "
            f"(the mean of the last {len(recent)} hours serves)"
        )
        return _finish(FLAT, reason, series, center, bands, {"level_kw": round(level, 3), "sigma1_kw": sigma1})
    t = n - 1
    if np.isnan(x[t]):  # cannot happen after trim; kept so the rule never stands on a hole
        raise AssetDataError("too_few_points", "The last hour has no data.")
    center = _seasonal_point(x, hod, t, horizon)

    def rule(origin: int, lead: int) -> np.ndarray:
        return _seasonal_point(x, hod, origin, lead)

    bands = _empirical_bands(x, hod, center, rule, first=47)
    days = min(PROFILE_DAYS, n // 24)
    return _finish(SEASONAL, "", series, center, bands, {"profile_days": days, "phi": PHI})


# --- uploaded training series ----------------------------------------------------------------------------------------

MAX_UPLOAD_ROWS = 200_000


class SeriesDataError(ValueError):
    """An uploaded series that cannot be used: ``row`` is the 1-based data row (None: the file as a whole)."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None, code: str = "invalid_csv"):
        super().__init__(message if row is None else f"row {row}: {message}")
        self.code, self.message, self.row, self.column = code, message, row, column


@dataclass(frozen=True)
class UploadSeries:
    times: list[datetime]  # UTC, strictly increasing, one regular step
    values: np.ndarray
    interval_minutes: int


def _parse_time(raw: str, row: int) -> datetime:
    text = (raw or "").strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SeriesDataError(f"{raw!r} is not an ISO-8601 time", row=row, column="ts", code="invalid_ts") from None
    if moment.tzinfo is None:
        raise SeriesDataError(f"{raw!r} has no time zone (give UTC, e.g. 'Z')", row=row, column="ts",
                              code="invalid_ts")  # fmt: skip
    return moment.astimezone(UTC)


def parse_series_csv(text: str, *, interval_minutes: int | None = None, min_rows: int = 2) -> UploadSeries:
    """A CSV with a header ``ts,value`` (other columns ignored): ISO-8601 UTC times, strictly increasing at one
    regular step (detected from the first two rows, or ``interval_minutes``), finite values, at most
    ``MAX_UPLOAD_ROWS`` rows. The first bad row raises, naming the row (1-based, after the header) and why."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"ts", "value"} - {(f or "").strip() for f in (reader.fieldnames or ())}
    if missing:
        raise SeriesDataError(f"missing column(s): {', '.join(sorted(missing))}", code="missing_columns")
    reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
    times: list[datetime] = []
    values: list[float] = []
    step = interval_minutes * 60 if interval_minutes else None
    for i, row in enumerate(reader, start=1):
        if i > MAX_UPLOAD_ROWS:
            raise SeriesDataError(f"more than {MAX_UPLOAD_ROWS} rows", code="too_many_rows")
        moment = _parse_time(row.get("ts") or "", i)
        raw = (row.get("value") or "").strip()
        try:
            value = float(raw)
        except ValueError:
            raise SeriesDataError(f"{raw!r} is not a number", row=i, column="value", code="invalid_value") from None
        if not math.isfinite(value):
            raise SeriesDataError("value is not a finite number", row=i, column="value", code="invalid_value")
        if times:
            gap = (moment - times[-1]).total_seconds()
            if gap <= 0:
                raise SeriesDataError("times must be strictly increasing", row=i, column="ts", code="invalid_ts")
            if step is None:
                step = gap
            elif gap != step:
                raise SeriesDataError(f"gap or irregular step (expected {int(step // 60)} min)", row=i, column="ts",
                                      code="irregular_step")  # fmt: skip
        times.append(moment)
        values.append(value)
    if len(times) < min_rows:
        raise SeriesDataError(f"at least {min_rows} rows are needed, got {len(times)}", code="too_few_rows")
    if step is None or step % 60 or not 1 <= step // 60 <= 1440 * 7:
        raise SeriesDataError("the step must be a whole number of minutes, from 1 minute to 7 days",
                              code="irregular_step")  # fmt: skip
    return UploadSeries(times, np.asarray(values, dtype=float), int(step // 60))
