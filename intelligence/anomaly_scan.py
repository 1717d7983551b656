"""The anomaly scan: every 5 minutes, the newest hour of every miner's 5-minute history (hashrate, chip
temperature, power) scored against what is usual for that miner, and alerts raised and resolved through the
telemetry alert service (``telemetry.services.alerts_raise``: one open alert per miner and type).

**What is usual.** Each miner is its own yardstick (``intelligence.algorithms.anomaly``): with at least two days
of history before the baseline's hour boundary (and 1.5 days of them reported), a seasonal baseline — the per-slot
median of a daily season of 288 windows and the robust spread of the deviations from it — so a daily temperature
cycle is expected, not flagged; with less, a plain robust z against the median and MAD of the last day (at least
two hours of windows; a miner with fewer is not judged). Hashrate and power count only in windows where the miner
hashed at least half the time: a curtailed, idle or offline miner draws and hashes little by design (the
offline rule's business, not an anomaly). The baseline is learned from the history before the last hour boundary
at or before the newest hour (``baseline_cutoff``), once per hour and chunk of miners, and kept in the cache for
that hour's 12 scans (``chunk_baseline``; learned again from the database when missing or stale, so the cache
changes the cost, never the alerts).

**When it holds.** A metric of a miner is anomalous when at least ``SUSTAIN`` of the newest hour's 12 windows
(15 minutes) are beyond |z| 3.5 in the metric's direction (hashrate: below; chip temperature: above; power:
either way). Its score is the ``SUSTAIN``-th highest |z|, its severity the detector's (info ≥ 3.5, warning ≥ 5,
critical ≥ 8), its message the median of the flagged windows in words. It clears, and the open alert is
resolved, when the newest hour is normal again (fewer than ``SUSTAIN`` windows beyond 3.5); with fewer than
``SUSTAIN`` windows reported it is not decided and an open alert stays as it is.

**Cost.** A run with no new window since the last one is one query (the rollup's cursor and the scan's marker,
both ``RollupCursor`` rows). Otherwise, per chunk of ``CHUNK`` miners: the miners (1), their baselines from the
cache (1 round trip), their newest hour only as one binary COPY parsed by numpy on PostgreSQL (1), the open anomaly
alerts locked (1), the bulk raise and one resolve per metric. Scoring is numpy over the chunk, no Python loop per
miner except to word the findings. Learning a chunk's baselines reads its ``history_days`` of history (the
hourly ``refresh_baselines``, or a scan that finds none cached). One scan at a time (``_exclusive``).

Scoring (``learn_baseline``, ``score_hour``; ``score_latest`` both on one matrix) is pure functions of miners ×
windows matrices, so the simulator's evaluation (bench/anomaly_sim_eval.py) replays the job's own decision."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max

from hashinsight.core.cache import cache_key
from intelligence.algorithms.anomaly import (
    DAILY_PERIOD_5MIN,
    DEFAULT_THRESHOLDS,
    Thresholds,
    nanmedian,
    reason,
    robust_scale,
    seasonal_baseline,
)

logger = logging.getLogger(__name__)

SCAN_LAYER = "anomaly_scan"  # the scan's marker among the RollupCursor rows: the last window end it scored
WINDOW = timedelta(minutes=5)
WINDOW_S = 300
HOUR_WINDOWS = 12  # the newest hour, scored
SUSTAIN = 3  # windows beyond the threshold (15 min) for a metric to hold
CHUNK = 5000
MIN_HISTORY_POINTS = 24  # two hours of windows before the newest hour: below this a miner is not judged
SEASONAL_MIN_POINTS = DAILY_PERIOD_5MIN * 3 // 2  # 1.5 days reported, for the seasonal baseline
RECENT_WINDOWS = DAILY_PERIOD_5MIN  # the plain MAD's window: the last day
HASHING_MIN_UPTIME = 0.5  # hashrate and power count in windows hashed at least half the time
UNMONITORED_MINER_STATUSES = ("maintenance", "retired")  # as telemetry.rules: no alert on these
MIN_PEERS = 10  # a peer group (site and model) this large sets its common movement apart
BASELINE_SLOTS = 2 * HOUR_WINDOWS  # a baseline serves the scans whose newest hour starts within its next hour
BASELINE_FORMAT = 1  # of a cached baseline: an entry of another format is stale (learned again)
BASELINE_TTL_S = 3 * 3600  # stored up to an hour before the first scan that needs it, which it serves an hour
SCAN_LOCK_KEY = 0x7E1E_A5CA  # pg_try_advisory_lock key of the scan, next to telemetry.rollups' one
SCAN_LOCK_CACHE_KEY = "lock:anomaly_scan"  # the same guard where there is no PostgreSQL


@dataclass(frozen=True)
class Metric:
    key: str
    alert_type: str
    column: str  # History5m's
    label: str  # in the reason's words
    unit: str
    direction: str  # "low" | "high" | "both"
    needs_hashing: bool


METRICS = (
    Metric("hashrate", "anomaly_hashrate", "avg_hashrate_ths", "hashrate", "TH/s", "low", True),
    Metric("temperature", "anomaly_temperature", "avg_temp_chip_max_c", "chip temperature", "°C", "high", False),
    Metric("power", "anomaly_power", "avg_power_w", "power", "W", "both", True),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
ALERT_TYPES = tuple(m.alert_type for m in METRICS)


def history_days() -> int:
    """Days of history read before the newest hour (2: the least a daily season needs)."""
    return int(getattr(settings, "INTELLIGENCE_ANOMALY_HISTORY_DAYS", 2))


# ---------------------------------------------------------------------------------------------------
# Scoring (pure: arrays in, arrays out).


@dataclass
class MetricScan:
    """Per miner (arrays of length miners): ``score`` the sustained directional |z| over the newest hour (NaN:
    not decided), ``value``/``expected`` the medians over the flagged windows (all windows when none), ``flagged``
    the windows beyond the threshold, ``seasonal`` which baseline judged it, ``z`` the newest hour's signed z."""

    score: np.ndarray
    value: np.ndarray
    expected: np.ndarray
    flagged: np.ndarray
    seasonal: np.ndarray
    z: np.ndarray

    def holds(self, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.score >= thresholds.info

    def clears(self, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.score < thresholds.info


def _peer_medians(a: np.ndarray, labels: np.ndarray):
    """(rows, median per window) of each peer group of ``labels`` with at least ``MIN_PEERS`` rows: the group's
    median in every window where at least ``MIN_PEERS`` of them have a value (NaN elsewhere)."""
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < MIN_PEERS:
            continue
        block = a[rows]
        valid = np.sum(~np.isnan(block), axis=0)
        med = np.full(block.shape[1], np.nan)
        full = valid == len(rows)  # most windows: every peer reported; np.median partitions, no full sort
        with np.errstate(all="ignore"):
            if full.any():
                med[full] = np.median(block[:, full], axis=0)
            some = (valid >= MIN_PEERS) & ~full
            if some.any():
                med[some] = nanmedian(block[:, some], axis=0)
        yield rows, med


def peer_movement(values: np.ndarray, groups) -> np.ndarray:
    """Per row and window, how far the row's peer group (same label in ``groups``, at least ``MIN_PEERS`` rows
    with a value in that window) stands from its own usual level: the group's median in the window minus the
    median of those medians over all windows. Zero for rows without enough peers. What the whole group does
    together — the hall's daily inlet-temperature cycle, a hot afternoon — is common to the group, not an anomaly
    of one miner."""
    a = np.asarray(values, dtype=float)
    move = np.zeros_like(a)
    for rows, med in _peer_medians(a, np.asarray(groups)):
        level = _level(med)
        if not np.isnan(level):
            move[rows] = np.nan_to_num(med - level, nan=0.0)[None, :]
    return move


def _level(med: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(nanmedian(med[None, :], axis=1)[0]) if len(med) else math.nan


@dataclass
class MetricBaseline:
    """What is usual for one metric of each row (a miner), learned from the history before an hour boundary (the
    cutoff) and kept for the scans of the next hour (``BASELINE_SLOTS`` slots from the cutoff's). Arrays of length
    rows, float32 (the cached form is the form scored, so a baseline read from the cache and one rebuilt from the
    database give the same alerts): ``expected`` (rows × slots) the usual value per slot of the day, ``center``
    the median deviation from it, ``scale`` the floored robust spread (NaN: too little history, not judged),
    ``seasonal`` which baseline it is, ``level`` the row's peer group's usual level (NaN: no peer group)."""

    expected: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    seasonal: np.ndarray
    level: np.ndarray
    first_slot: int  # the slot of the day of expected[:, 0]: the cutoff's
    period: int

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def learn_baseline(
    history, *, groups=None, period: int = DAILY_PERIOD_5MIN, slots: int = BASELINE_SLOTS
) -> MetricBaseline:
    """Learn each row's :class:`MetricBaseline` from ``history`` (rows × windows; column 0 is the first window of a
    UTC day, the last column the window just before the cutoff). With ``groups`` each row is first set against
    its peers (``peer_movement``). With two days of history (1.5 of them reported) the seasonal baseline — the
    per-slot median over the days and the robust spread of the leave-one-day-out deviations; with less, the
    median and floored MAD of the last day (at least ``MIN_HISTORY_POINTS`` windows); with fewer, not judged.
    The expensive half of the scan: run hourly, not every 5 minutes."""
    a = np.asarray(history, dtype=float)
    if a.ndim != 2:
        raise ValueError("history must be miners × windows")
    n_rows, n_hist = a.shape
    period = period or DAILY_PERIOD_5MIN
    first_slot = n_hist % period
    level = np.full(n_rows, np.nan)
    if groups is not None and n_hist:
        move = np.zeros_like(a)
        for rows, med in _peer_medians(a, np.asarray(groups)):
            lvl = _level(med)
            if not np.isnan(lvl):
                move[rows] = np.nan_to_num(med - lvl, nan=0.0)[None, :]
                level[rows] = lvl
        a = a - move
    expected = np.full((n_rows, slots), np.nan)
    center = np.zeros(n_rows)
    scale = np.full(n_rows, np.nan)
    seasonal = np.zeros(n_rows, dtype=bool)
    valid = np.sum(~np.isnan(a), axis=1)
    if n_hist >= 2 * period:
        rows = valid >= SEASONAL_MIN_POINTS
        if rows.any():
            base = seasonal_baseline(a[rows], period=period)
            expected[rows] = base.profile[:, (first_slot + np.arange(slots)) % period]
            center[rows], scale[rows], seasonal[rows] = base.center[:, 0], base.scale[:, 0], True
    recent = a[:, -RECENT_WINDOWS:]
    rest = ~seasonal & (np.sum(~np.isnan(recent), axis=1) >= MIN_HISTORY_POINTS)
    if rest.any():
        r = recent[rest]
        with np.errstate(all="ignore"):
            med = nanmedian(r, axis=1, keepdims=True)
            resid = r - med
            spread = robust_scale(resid, nanmedian(np.abs(r), axis=1, keepdims=True), 0.005, 1e-9)
            expected[rest] = med
            center[rest] = nanmedian(resid, axis=1)
            scale[rest] = spread[:, 0]
    f32 = np.float32
    return MetricBaseline(
        expected=expected.astype(f32), center=center.astype(f32), scale=scale.astype(f32), seasonal=seasonal,
        level=level.astype(f32), first_slot=first_slot, period=period,
    )  # fmt: skip


def score_hour(
    baseline: MetricBaseline,
    latest,
    *,
    first_slot: int,
    direction: str = "both",
    groups=None,
    sustain: int = SUSTAIN,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> MetricScan:
    """Score ``latest`` (rows × the newest hour's windows, the first at slot ``first_slot`` of the day) against
    ``baseline``: per row one subtraction and one division per window. With ``groups`` (the labels the baseline
    was learned with) the peer group's median in each window, less its usual level, is set apart first; values
    and expectations are reported in the metric's own terms."""
    raw = np.asarray(latest, dtype=float)
    n_rows, hour = raw.shape
    if n_rows != len(baseline.scale):
        raise ValueError(f"{n_rows} rows for a baseline of {len(baseline.scale)}")
    offset = (first_slot - baseline.first_slot) % baseline.period
    if offset + hour > baseline.expected.shape[1]:
        raise ValueError("the newest hour lies beyond the slots the baseline keeps")
    move = np.zeros_like(raw)
    if groups is not None:
        for rows, med in _peer_medians(raw, np.asarray(groups)):
            lvl = float(baseline.level[rows[0]])
            if not np.isnan(lvl):
                move[rows] = np.nan_to_num(med - lvl, nan=0.0)[None, :]
    a = raw - move
    expected = baseline.expected[:, offset : offset + hour].astype(float)
    with np.errstate(invalid="ignore"):
        z = (a - expected - baseline.center[:, None]) / baseline.scale[:, None]
    if direction == "low":
        d = -z
    elif direction == "high":
        d = z
    else:
        d = np.abs(z)
    with np.errstate(invalid="ignore"):
        ranked = np.sort(np.where(np.isnan(d), -np.inf, d), axis=1)
        known = np.sum(~np.isnan(d), axis=1)
        score = np.where(known >= sustain, np.maximum(ranked[:, -sustain], 0.0), np.nan)
        hit = d >= thresholds.info
    flagged = hit.sum(axis=1)
    pick = np.where(hit.any(axis=1)[:, None], hit, ~np.isnan(a))
    # back to the metric's own terms: what was seen, and the usual level plus the peers' movement
    value = nanmedian(np.where(pick, raw, np.nan), axis=1)
    exp = nanmedian(np.where(pick, expected + move, np.nan), axis=1)
    return MetricScan(score=score, value=value, expected=exp, flagged=flagged, seasonal=baseline.seasonal.copy(), z=z)


def score_latest(
    values,
    *,
    direction: str = "both",
    groups=None,
    hour: int = HOUR_WINDOWS,
    period: int = DAILY_PERIOD_5MIN,
    sustain: int = SUSTAIN,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> MetricScan:
    """The job's decision on one matrix: score the last ``hour`` columns of ``values`` (miners × windows, NaN
    where missing; column 0 is the first window of a UTC day, so column k is slot k % ``period``) against the
    baseline learned from the columns before the last hour boundary before them (``learn_baseline``), exactly as
    the job scores against its hourly baseline. With ``groups`` (a label per row: site and model, say) each row is
    first set against its peers, so what the whole group does at once is not an anomaly of one miner."""
    raw = np.asarray(values, dtype=float)
    if raw.ndim != 2 or raw.shape[1] <= hour:
        raise ValueError("values must be miners × windows, with history before the newest hour")
    start = raw.shape[1] - hour
    cutoff = start - start % HOUR_WINDOWS
    base = learn_baseline(raw[:, :cutoff], groups=groups, period=period)
    return score_hour(
        base, raw[:, start:], first_slot=start % (period or DAILY_PERIOD_5MIN), direction=direction, groups=groups,
        sustain=sustain, thresholds=thresholds,
    )  # fmt: skip


def prepare(metric: Metric, values: np.ndarray, uptime: np.ndarray | None) -> np.ndarray:
    """The metric's matrix as scored: hashrate and power only where the miner hashed at least half the window."""
    if metric.needs_hashing and uptime is not None:
        with np.errstate(invalid="ignore"):
            return np.where(uptime >= HASHING_MIN_UPTIME, values, np.nan)
    return values


# ---------------------------------------------------------------------------------------------------
# Words: the English message (stored in Alert.message) and its id + parameters (evidence["msg"]), which
# telemetry.alert_messages.CATALOG translates; the two read identically in English (a test checks).

MESSAGES = {
    "anomaly_hashrate_below": (
        "Hashrate {value} TH/s over the last hour is {pct} % below its usual {expected} TH/s (robust z {score})."
    ),
    "anomaly_hashrate_below_tod": (
        "Hashrate {value} TH/s over the last hour is {pct} % below its usual {expected} TH/s for this time of day "
        "(robust z {score})."
    ),
    "anomaly_temperature_above": (
        "Chip temperature {value} °C over the last hour is {delta} °C above its usual {expected} °C (robust z {score})."
    ),
    "anomaly_temperature_above_tod": (
        "Chip temperature {value} °C over the last hour is {delta} °C above its usual {expected} °C for this time "
        "of day (robust z {score})."
    ),
    "anomaly_power_above": (
        "Power {value} W over the last hour is {pct} % above its usual {expected} W (robust z {score})."
    ),
    "anomaly_power_above_tod": (
        "Power {value} W over the last hour is {pct} % above its usual {expected} W for this time of day "
        "(robust z {score})."
    ),
    "anomaly_power_below": (
        "Power {value} W over the last hour is {pct} % below its usual {expected} W (robust z {score})."
    ),
    "anomaly_power_below_tod": (
        "Power {value} W over the last hour is {pct} % below its usual {expected} W for this time of day "
        "(robust z {score})."
    ),
}
CLEARED_NOTES = {
    "hashrate": "Condition cleared: hashrate back within its usual range over the last hour.",
    "temperature": "Condition cleared: chip temperature back within its usual range over the last hour.",
    "power": "Condition cleared: power back within its usual range over the last hour.",
}
NOT_MONITORED_NOTE = "Condition cleared: the miner is in maintenance or retired and is not monitored."


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def describe(metric: Metric, *, value: float, expected: float, score: float, seasonal: bool) -> tuple[str, dict]:
    """(English message, {"id", "params"}) for one finding."""
    # One-way metrics are worded their way (the flagged windows are all on that side of their expectation).
    word = {"low": "below", "high": "above"}.get(metric.direction) or ("above" if value > expected else "below")
    msg_id = f"anomaly_{metric.key}_{word}" + ("_tod" if seasonal else "")
    digits = 0 if metric.unit == "W" else 1
    params = {"value": _fmt(value, digits), "expected": _fmt(expected, digits), "score": _fmt(score)}
    if metric.unit == "°C":
        params["delta"] = _fmt(abs(value - expected))
    else:
        params["pct"] = _fmt(abs(value - expected) / abs(expected) * 100 if expected else 0.0, 0)
    return MESSAGES[msg_id].format(**params), {"id": msg_id, "params": params}


@dataclass(frozen=True)
class Finding:
    """One miner's metric: ``holds`` raise (with ``severity``, ``message`` and ``evidence``), else cleared."""

    row: int
    metric: Metric
    holds: bool
    severity: str = ""
    message: str = ""
    evidence: dict | None = None


def findings_for(
    metric: Metric,
    scan: MetricScan,
    *,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    cleared: bool = True,
) -> list[Finding]:
    """What the scan of one metric decides, per row: holds or (with ``cleared``) cleared; rows not decided are
    left out."""
    out = [Finding(int(i), metric, False) for i in np.flatnonzero(scan.clears())] if cleared else []
    for i in np.flatnonzero(scan.holds()):
        score, value, expected = float(scan.score[i]), float(scan.value[i]), float(scan.expected[i])
        seasonal = bool(scan.seasonal[i])
        if not (math.isfinite(value) and math.isfinite(expected)):
            continue
        message, msg = describe(metric, value=value, expected=expected, score=score, seasonal=seasonal)
        relative = metric.unit != "°C"
        evidence = {
            "metric": metric.key,
            "detector": "mad_seasonal" if seasonal else "mad",
            "score": round(score, 3),
            f"value_{metric.unit}": round(value, 3),
            f"expected_{metric.unit}": round(expected, 3),
            "unit": metric.unit,
            "windows_flagged": int(scan.flagged[i]),
            "windows_scored": HOUR_WINDOWS,
            "reason": reason(
                metric=metric.label, value=value, expected=expected, seasonal=seasonal, unit=metric.unit,
                relative=relative,
            ),
            "msg": msg,
        }  # fmt: skip
        if window_start is not None:
            evidence["window_start"] = window_start.isoformat()
        if window_end is not None:
            evidence["window_end"] = window_end.isoformat()
        severity = DEFAULT_THRESHOLDS.severity(score) or "info"
        out.append(Finding(int(i), metric, True, severity, message, evidence))
    return out


# ---------------------------------------------------------------------------------------------------
# Reading the history as matrices.


def _floor(ts: datetime) -> datetime:
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_S, tz=UTC)


def grid_for(end: datetime, *, days: int | None = None) -> tuple[datetime, int]:
    """The matrix grid for a scan whose newest hour ends at ``end``: it starts at midnight UTC ``days`` days
    before the newest hour (slot 0 of a day, as the seasonal baseline needs) and has ``n`` windows."""
    days = history_days() if days is None else days
    hour_start = end - HOUR_WINDOWS * WINDOW
    start = datetime.combine((hour_start - timedelta(days=days)).astimezone(UTC).date(), datetime.min.time(), UTC)
    return start, int((end - start) / WINDOW)


# Fixed-width tuples of a binary COPY (no NULLs: COALESCE to NaN): field count, then (length, value) × 6.
_COPY_DTYPE = np.dtype(
    [("n", ">i2"), ("l0", ">i4"), ("miner", ">i4"), ("l1", ">i4"), ("slot", ">i4")]
    + [item for k in ("h", "t", "p", "u") for item in ((f"l{k}", ">i4"), (k, ">f4"))]
)
_COPY_SQL = (
    "COPY (SELECT miner_id::int4, ((EXTRACT(EPOCH FROM bucket) - {start}) / 300)::int4, "
    "COALESCE(avg_hashrate_ths, 'NaN')::float4, COALESCE(avg_temp_chip_max_c, 'NaN')::float4, "
    "COALESCE(avg_power_w, 'NaN')::float4, uptime_fraction::float4 FROM telemetry_history_5m "
    "WHERE miner_id = ANY({ids}) AND bucket >= {lo} AND bucket < {hi}) TO STDOUT (FORMAT BINARY)"
)


def _rows_postgres(ids: list[int], start: datetime, end: datetime) -> np.ndarray:
    from psycopg import sql

    query = sql.SQL(_COPY_SQL).format(
        start=sql.Literal(int(start.timestamp())), ids=sql.Literal(ids), lo=sql.Literal(start), hi=sql.Literal(end)
    )
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(query) as copy:
        data = b"".join(bytes(block) for block in copy)
    ext = int.from_bytes(data[15:19], "big")
    body = data[19 + ext : -2]  # header (signature, flags, extension), then the tuples, then the trailer
    return np.frombuffer(body, dtype=_COPY_DTYPE)


def load_matrices(ids: list[int], start: datetime, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The history of miners ``ids`` (sorted) on the grid from ``start`` (n windows): one matrix per metric key
    and the uptime fraction, NaN where a window has no row. One query."""
    end = start + n * WINDOW
    shape = (len(ids), n)
    mats = {m.key: np.full(shape, np.nan) for m in METRICS}
    uptime = np.full(shape, np.nan)
    if not ids:
        return mats, uptime
    index = np.asarray(ids, dtype=np.int64)
    if connection.vendor == "postgresql":
        rec = _rows_postgres(ids, start, end)
        miner, slot = rec["miner"].astype(np.int64), rec["slot"].astype(np.int64)
        cols = {"hashrate": rec["h"], "temperature": rec["t"], "power": rec["p"]}
        up = rec["u"]
    else:
        from telemetry.models import History5m

        rows = list(
            History5m.objects.filter(miner_id__in=ids, bucket__gte=start, bucket__lt=end).values_list(
                "miner_id", "bucket", *(m.column for m in METRICS), "uptime_fraction"
            )
        )
        if not rows:
            return mats, uptime
        miner = np.array([r[0] for r in rows], dtype=np.int64)
        slot = np.array([int((r[1] - start).total_seconds()) // WINDOW_S for r in rows], dtype=np.int64)
        cols = {
            m.key: np.array([np.nan if r[2 + k] is None else r[2 + k] for r in rows]) for k, m in enumerate(METRICS)
        }
        up = np.array([r[5] for r in rows], dtype=float)
    row = np.searchsorted(index, miner)
    ok = (row < len(index)) & (slot >= 0) & (slot < n)
    ok &= index[np.minimum(row, len(index) - 1)] == miner
    row, slot = row[ok], slot[ok]
    for key, values in cols.items():
        mats[key][row, slot] = np.asarray(values, dtype=float)[ok]
    uptime[row, slot] = np.asarray(up, dtype=float)[ok]
    return mats, uptime


# ---------------------------------------------------------------------------------------------------
# The job.


@dataclass
class ScanResult:
    skipped: bool = False
    busy: bool = False  # skipped because another scan holds the lock
    window_end: str | None = None
    baseline_hour: str | None = None
    miners: int = 0
    raised: int = 0
    resolved: int = 0
    baselines_cached: int = 0  # chunks scored against their cached baseline
    baselines_learned: int = 0  # chunks whose baseline was missing or stale: learned from the long history now
    cache_down: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _marker_and_end() -> tuple[datetime | None, datetime | None]:
    """(the scan's marker, the end of the newest complete window): one query; a second only when the rollup
    has no cursor yet (history written some other way)."""
    from telemetry.models import History5m, RollupCursor
    from telemetry.rollups import CURSOR_5M

    rows = dict(RollupCursor.objects.filter(layer__in=[CURSOR_5M, SCAN_LAYER]).values_list("layer", "done_until"))
    end = rows.get(CURSOR_5M)
    if end is None:
        newest = History5m.objects.aggregate(newest=Max("bucket"))["newest"]
        end = None if newest is None else newest + WINDOW
    return rows.get(SCAN_LAYER), None if end is None else _floor(end)


@contextmanager
def _exclusive():
    """Whether this process may scan: two runs at once (a slow run still going at the next Beat tick, on a
    worker of concurrency 2) would each count onto the same alerts. PostgreSQL: a session advisory lock, freed
    with the connection if the worker dies mid-run; elsewhere a cache lock that expires with the task's time
    limit (without a cache there is no second worker to guard against)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SCAN_LOCK_KEY])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [SCAN_LOCK_KEY])
        return
    try:
        held = bool(cache.add(SCAN_LOCK_CACHE_KEY, 1, settings.CELERY_TASK_TIME_LIMIT))
    except Exception:
        held = True
    try:
        yield held
    finally:
        if held:
            try:
                cache.delete(SCAN_LOCK_CACHE_KEY)
            except Exception:
                logger.warning("cache unavailable; the anomaly scan's lock expires by itself")


def anomaly_scan(*, force: bool = False) -> ScanResult:
    """Score the newest hour of every miner against its hourly baseline and raise/resolve the anomaly alerts. A
    run with no window newer than the last run's is skipped (one query) unless ``force``; a run while another is
    going is skipped too (``busy``)."""
    import time

    t0 = time.perf_counter()
    marker, end = _marker_and_end()
    if end is None or (marker is not None and end <= marker and not force):
        return ScanResult(skipped=True, window_end=None if end is None else end.isoformat())
    with _exclusive() as held:
        if not held:
            logger.info("anomaly scan already running; this run skipped", extra={"window_end": end.isoformat()})
            return ScanResult(skipped=True, busy=True, window_end=end.isoformat())
        if not force:  # the run that held the lock may have scored this window meanwhile
            marker, end = _marker_and_end()
            if marker is not None and end <= marker:
                return ScanResult(skipped=True, window_end=end.isoformat())
        result = _scan(end)
    result.seconds = round(time.perf_counter() - t0, 3)
    logger.info("anomaly scan", extra={"anomaly_scan": result.as_dict()})
    return result


def _scan(end: datetime) -> ScanResult:
    from telemetry.models import RollupCursor

    cutoff = baseline_cutoff(end)
    result = ScanResult(window_end=end.isoformat(), baseline_hour=cutoff.isoformat())
    store = _BaselineCache()
    for chunk in miner_chunks():
        baseline, cached = chunk_baseline(chunk, cutoff=cutoff, store=store)
        raised, resolved = scan_chunk(chunk, baseline, end=end)
        result.miners += len(chunk)
        result.raised += raised
        result.resolved += resolved
        result.baselines_cached += cached
        result.baselines_learned += not cached
    RollupCursor.objects.update_or_create(layer=SCAN_LAYER, defaults={"done_until": end})
    result.cache_down = store.down
    _prepare_next_baselines(end, store)
    return result


def miner_chunks():
    """The miners in chunks of ``CHUNK`` by primary key (pk, site_id, customer_id, status, model_id): one keyset
    page each. The chunks are the baselines' unit, so the scan and the hourly refresh cut them alike."""
    from miners.models import Miner

    after = 0
    while True:
        chunk = list(
            Miner.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "site_id", "customer_id", "status", "model_id")[:CHUNK]
        )
        if not chunk:
            return
        after = chunk[-1][0]
        yield chunk


def scan_chunk(chunk: list[tuple], baseline: dict, *, end: datetime) -> tuple[int, int]:
    """Score and alert one chunk of miners (pk, site_id, customer_id, status, model_id), sorted by pk, against
    its baselines (``chunk_baseline``): the newest hour only is read. Peers: the miners of the same site and model
    in the chunk."""
    ids = [c[0] for c in chunk]
    hour_start = end - HOUR_WINDOWS * WINDOW
    mats, uptime = load_matrices(ids, hour_start, HOUR_WINDOWS)
    groups = baseline["groups"]
    findings: list[Finding] = []
    clears: dict[str, np.ndarray] = {}
    for metric in METRICS:
        values = prepare(metric, mats[metric.key], uptime)
        scan = score_hour(
            MetricBaseline(**baseline["metrics"][metric.key]), values, first_slot=_slot(hour_start),
            direction=metric.direction, groups=groups,
        )  # fmt: skip
        findings += findings_for(metric, scan, window_start=hour_start, window_end=end, cleared=False)
        clears[metric.alert_type] = scan.clears()
    return _apply(chunk, findings, clears)


# ---------------------------------------------------------------------------------------------------
# Baselines: learned once an hour per chunk from the long history, kept in the cache (hashinsight.core.cache's
# key names; entries of their own lifetime), learned again from the database whenever one is missing or stale.


def _floor_hour(ts: datetime) -> datetime:
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 3600, tz=UTC)


def _slot(ts: datetime) -> int:
    return int(ts.timestamp()) % 86400 // WINDOW_S


def baseline_cutoff(end: datetime) -> datetime:
    """The hour boundary whose baseline scores the newest hour ending at ``end``: the last one at or before that
    hour's start, so the history learned from and the hour scored never overlap and every scan of an hour (12 of
    them) shares one baseline."""
    return _floor_hour(end - HOUR_WINDOWS * WINDOW)


class _BaselineCache:
    """The cache as the scan uses it. The first failure (Redis down) is logged and the rest of the run does
    without, learning each baseline from the database, rather than waiting out the socket timeout per chunk."""

    def __init__(self):
        self.down = False

    def get(self, key: str):
        if self.down:
            return None
        try:
            return cache.get(key)
        except Exception:
            self._failed(key)
            return None

    def set(self, key: str, value) -> None:
        if self.down:
            return
        try:
            cache.set(key, value, BASELINE_TTL_S)
        except Exception:
            self._failed(key)

    def _failed(self, key: str) -> None:
        self.down = True
        logger.warning("cache unavailable; anomaly baselines learned from the database", extra={"cache_key": key})


def _identity(chunk: list[tuple], cutoff: datetime) -> tuple[np.ndarray, np.ndarray, str]:
    """(miner ids, peer-group labels, cache key) of a chunk's baseline for the hour ``cutoff``."""
    ids = np.array([c[0] for c in chunk], dtype=np.int64)
    groups = np.array([(c[1] << 32) | (c[4] or 0) for c in chunk], dtype=np.int64)
    return ids, groups, cache_key("anomaly_baseline", chunk=int(ids[0]), hour=f"{cutoff:%Y%m%dT%H}")


def learn_chunk_baseline(ids: np.ndarray, groups: np.ndarray, cutoff: datetime) -> dict:
    """The baselines of one chunk for the hour ``cutoff`` (one per metric), learned from the ``history_days``
    days of history before it (from midnight UTC: slot 0 of a day), in the form cached: one query."""
    days = history_days()
    start = datetime.combine((cutoff - timedelta(days=days)).astimezone(UTC).date(), datetime.min.time(), UTC)
    mats, uptime = load_matrices([int(i) for i in ids], start, int((cutoff - start) / WINDOW))
    metrics = {
        m.key: learn_baseline(prepare(m, mats[m.key], uptime), groups=groups).as_dict() for m in METRICS
    }  # fmt: skip
    return {
        "format": BASELINE_FORMAT, "cutoff": cutoff.isoformat(), "days": days, "ids": ids, "groups": groups,
        "metrics": metrics,
    }  # fmt: skip


def _fits(entry, ids: np.ndarray, groups: np.ndarray, cutoff: datetime) -> bool:
    """An entry serves only the hour, the history setting, the miners and the peer groups it was learned for: a
    miner added, deleted or moved to another site or model makes its chunk's entry stale."""
    return (
        isinstance(entry, dict)
        and entry.get("format") == BASELINE_FORMAT
        and entry.get("cutoff") == cutoff.isoformat()
        and entry.get("days") == history_days()
        and np.array_equal(entry.get("ids"), ids)
        and np.array_equal(entry.get("groups"), groups)
    )


def chunk_baseline(chunk: list[tuple], *, cutoff: datetime, store: _BaselineCache) -> tuple[dict, bool]:
    """(the chunk's baselines for the hour ``cutoff``, whether they came from the cache): cached when an entry
    fits, else learned from the database now and stored. Learned or cached, the arrays are the same, so losing
    the cache loses time, never alerts."""
    ids, groups, key = _identity(chunk, cutoff)
    entry = store.get(key)
    if _fits(entry, ids, groups, cutoff):
        return entry, True
    entry = learn_chunk_baseline(ids, groups, cutoff)
    store.set(key, entry)
    return entry, False


def refresh_baselines(*, cutoff: datetime | None = None) -> dict:
    """Learn and store every chunk's baselines for the hour ``cutoff`` (default: the newest hour boundary the
    history reaches, whose baseline the scans of the next hour need), leaving the chunks already stored. Without a
    cache it learns nothing (the scans learn their own)."""
    import time

    t0 = time.perf_counter()
    if cutoff is None:
        _marker, end = _marker_and_end()
        if end is None:
            return {"skipped": True, "reason": "no history"}
        cutoff = _floor_hour(end)
    store = _BaselineCache()
    out = {"baseline_hour": cutoff.isoformat(), "miners": 0, "chunks_learned": 0, "chunks_cached": 0}
    for chunk in miner_chunks():
        ids, groups, key = _identity(chunk, cutoff)
        entry = store.get(key)
        if store.down:
            return {**out, "skipped": True, "reason": "cache unavailable"}
        if _fits(entry, ids, groups, cutoff):
            out["chunks_cached"] += 1
        else:
            store.set(key, learn_chunk_baseline(ids, groups, cutoff))
            out["chunks_learned"] += 1
        out["miners"] += len(chunk)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    logger.info("anomaly baselines", extra={"anomaly_baselines": out})
    return out


def _prepare_next_baselines(end: datetime, store: _BaselineCache) -> None:
    """Queue the refresh of the next hour's baselines once (the first scan that finds the history past the next
    hour boundary): it has the rest of the hour before the first scan that needs them."""
    if store.down:
        return
    nxt = _floor_hour(end)
    lock = f"lock:anomaly_baselines:{nxt:%Y%m%dT%H}"
    try:
        if not cache.add(lock, 1, BASELINE_TTL_S):
            return
    except Exception:
        return
    from intelligence.anomaly_tasks import anomaly_baselines_task

    try:
        anomaly_baselines_task.delay(cutoff=nxt.isoformat())
    except Exception:
        logger.warning("anomaly baselines not queued; the scans will learn them", exc_info=True)
        with suppress(Exception):
            cache.delete(lock)


@transaction.atomic
def _apply(chunk: list[tuple], findings: list[Finding], clears: dict[str, np.ndarray] | None = None) -> tuple[int, int]:
    """Raise what holds and resolve the open alerts of what cleared. ``clears`` (alert type → per-row mask) stands
    for the cleared findings, which the scan does not build one by one (5,000 rows × 3 metrics a chunk)."""
    from telemetry import services
    from telemetry.models import Alert

    row_of = {c[0]: i for i, c in enumerate(chunk)}
    unmonitored = {i for i, c in enumerate(chunk) if c[3] in UNMONITORED_MINER_STATUSES}
    if clears is None:
        clears = {m.alert_type: np.zeros(len(chunk), dtype=bool) for m in METRICS}
        for f in findings:
            if not f.holds:
                clears[f.metric.alert_type][f.row] = True
    # The open anomaly alerts of these miners, locked up front in primary-key order (as the rule engine does),
    # so two runs over the same miners wait for each other instead of deadlocking. The chunk is a keyset page,
    # so its id range is its miners (a range, not an IN list of 5,000 parameters); others are left alone below.
    open_rows = list(
        Alert.objects.select_for_update()
        .filter(miner_id__gte=chunk[0][0], miner_id__lte=chunk[-1][0], alert_type__in=ALERT_TYPES)
        .exclude(status=Alert.Status.RESOLVED)
        .order_by("pk")
        .values_list("pk", "miner_id", "alert_type")
    )
    to_raise = [
        services.AlertToRaise(
            site_id=chunk[f.row][1], alert_type=f.metric.alert_type, severity=f.severity, message=f.message,
            miner_id=chunk[f.row][0], customer_id=chunk[f.row][2], evidence=f.evidence,
        )
        for f in findings
        if f.holds and f.row not in unmonitored
    ]  # fmt: skip
    services.alerts_raise(to_raise)
    key_of = {m.alert_type: m.key for m in METRICS}
    groups: dict[str, list[int]] = defaultdict(list)
    for pk, miner_id, alert_type in open_rows:
        i = row_of.get(miner_id)
        if i is None:
            continue
        if i in unmonitored:
            groups["unmonitored"].append(pk)
        elif clears[alert_type][i]:
            groups[key_of[alert_type]].append(pk)
    resolved = 0
    for why, alert_ids in sorted(groups.items()):
        note = NOT_MONITORED_NOTE if why == "unmonitored" else CLEARED_NOTES[why]
        resolved += len(services.alerts_resolve(alert_ids=alert_ids, actor=None, note=note))
    return len(to_raise), resolved
