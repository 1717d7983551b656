"""The anomaly scan: every 5 minutes, the newest hour of every miner's 5-minute history (hashrate, chip
temperature, power) scored against what is usual for that miner, and alerts raised and resolved through the
telemetry alert service (``telemetry.services.alerts_raise``: one open alert per miner and type).

**What is usual.** Each miner is its own yardstick (``intelligence.algorithms.anomaly``): with at least two days
of history before the newest hour (and 1.5 days of them reported), a seasonal baseline — the per-slot median of a
daily season of 288 windows and the robust spread of the deviations from it — so a daily temperature cycle is
expected, not flagged; with less, a plain robust z against the median and MAD of the last day (at least two
hours of windows; a miner with fewer is not judged). Hashrate and power count only in windows where the miner
hashed at least half the time: a curtailed, idle or offline miner draws and hashes little by design (the
offline rule's business, not an anomaly).

**When it holds.** A metric of a miner is anomalous when at least ``SUSTAIN`` of the newest hour's 12 windows
(15 minutes) are beyond |z| 3.5 in the metric's direction (hashrate: below; chip temperature: above; power:
either way). Its score is the ``SUSTAIN``-th highest |z|, its severity the detector's (info ≥ 3.5, warning ≥ 5,
critical ≥ 8), its message the median of the flagged windows in words. It clears, and the open alert is
resolved, when the newest hour is normal again (fewer than ``SUSTAIN`` windows beyond 3.5); with fewer than
``SUSTAIN`` windows reported it is not decided and an open alert stays as it is.

**Cost.** A run with no new window since the last one is one query (the rollup's cursor and the scan's marker,
both ``RollupCursor`` rows). Otherwise, per chunk of ``CHUNK`` miners: the miners (1), their history as one
binary COPY parsed by numpy on PostgreSQL (1), the open anomaly alerts locked (1), the bulk raise and one
resolve per metric. Scoring is numpy over the chunk, no Python loop per miner except to word the findings.

Scoring (``score_latest``) is a pure function of a miners × windows matrix, so the simulator's evaluation
(bench/anomaly_sim_eval.py) and the API's ``detect_anomalies`` use the same decision as the job."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from intelligence.algorithms.anomaly import (
    DAILY_PERIOD_5MIN,
    DEFAULT_THRESHOLDS,
    Thresholds,
    mad_scores,
    nanmedian,
    reason,
    score_against,
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


def peer_movement(values: np.ndarray, groups) -> np.ndarray:
    """Per row and window, how far the row's peer group (same label in ``groups``, at least ``MIN_PEERS`` rows
    with a value in that window) stands from its own usual level: the group's median in the window minus the
    median of those medians over all windows. Zero for rows without enough peers. What the whole group does
    together — the hall's daily inlet-temperature cycle, a hot afternoon — is common to the group, not an anomaly
    of one miner."""
    a = np.asarray(values, dtype=float)
    move = np.zeros_like(a)
    labels = np.asarray(groups)
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
            level = nanmedian(med[None, :], axis=1)[0]
        if np.isnan(level):
            continue
        move[rows] = np.nan_to_num(med - level, nan=0.0)[None, :]
    return move


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
    """Score the last ``hour`` columns of ``values`` (miners × windows, NaN where missing; column 0 is the first
    window of a UTC day, so column k is slot k % ``period``) against the columns before them. With ``groups``
    (a label per row: site and model, say) each row is first set against its peers (``peer_movement``), so what
    the whole group does at once is not an anomaly of one miner; values and expectations are reported in the
    metric's own terms."""
    raw = np.asarray(values, dtype=float)
    if raw.ndim != 2 or raw.shape[1] <= hour:
        raise ValueError("values must be miners × windows, with history before the newest hour")
    move = peer_movement(raw, groups) if groups is not None else np.zeros_like(raw)
    a = raw - move
    hist, latest = a[:, :-hour], a[:, -hour:]
    n_rows, n_hist = hist.shape
    valid_hist = np.sum(~np.isnan(hist), axis=1)
    z = np.full(latest.shape, np.nan)
    expected = np.full(latest.shape, np.nan)
    seasonal = np.zeros(n_rows, dtype=bool)
    if period and n_hist >= 2 * period:
        rows = valid_hist >= SEASONAL_MIN_POINTS
        if rows.any():
            base = seasonal_baseline(hist[rows], period=period)
            s = score_against(base, latest[rows], first_slot=n_hist % period)
            z[rows], expected[rows], seasonal[rows] = s.z, s.expected, True
    recent = hist[:, -RECENT_WINDOWS:]
    rest = ~seasonal & (np.sum(~np.isnan(recent), axis=1) >= MIN_HISTORY_POINTS)
    if rest.any():
        s = mad_scores(np.concatenate([recent[rest], latest[rest]], axis=1))
        z[rest], expected[rest] = s.z[:, -hour:], s.expected[:, -hour:]
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
    pick = np.where(hit.any(axis=1)[:, None], hit, ~np.isnan(latest))
    shift = move[:, -hour:]  # back to the metric's own terms: what was seen, and the usual level plus the peers'
    value = nanmedian(np.where(pick, latest + shift, np.nan), axis=1)
    exp = nanmedian(np.where(pick, expected + shift, np.nan), axis=1)
    return MetricScan(score=score, value=value, expected=exp, flagged=flagged, seasonal=seasonal, z=z)


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
    metric: Metric, scan: MetricScan, *, window_start: datetime | None = None, window_end: datetime | None = None
) -> list[Finding]:
    """What the scan of one metric decides, per row: holds or cleared (rows not decided are left out)."""
    out = [Finding(int(i), metric, False) for i in np.flatnonzero(scan.clears())]
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
    window_end: str | None = None
    miners: int = 0
    raised: int = 0
    resolved: int = 0
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


def anomaly_scan(*, force: bool = False) -> ScanResult:
    """Score the newest hour of every miner and raise/resolve the anomaly alerts. A run with no window newer than
    the last run's is skipped (one query) unless ``force``."""
    import time

    t0 = time.perf_counter()
    marker, end = _marker_and_end()
    if end is None or (marker is not None and end <= marker and not force):
        return ScanResult(skipped=True, window_end=None if end is None else end.isoformat())
    from miners.models import Miner
    from telemetry.models import RollupCursor

    result = ScanResult(window_end=end.isoformat())
    start, n = grid_for(end)
    after = 0
    while True:
        chunk = list(
            Miner.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "site_id", "customer_id", "status", "model_id")[:CHUNK]
        )
        if not chunk:
            break
        after = chunk[-1][0]
        raised, resolved = scan_chunk(chunk, start=start, n=n, end=end)
        result.miners += len(chunk)
        result.raised += raised
        result.resolved += resolved
    RollupCursor.objects.update_or_create(layer=SCAN_LAYER, defaults={"done_until": end})
    result.seconds = round(time.perf_counter() - t0, 3)
    logger.info("anomaly scan", extra={"anomaly_scan": result.as_dict()})
    return result


def scan_chunk(chunk: list[tuple], *, start: datetime, n: int, end: datetime) -> tuple[int, int]:
    """Score and alert one chunk of miners (pk, site_id, customer_id, status, model_id), sorted by pk. Peers: the
    miners of the same site and model in the chunk."""
    ids = [c[0] for c in chunk]
    mats, uptime = load_matrices(ids, start, n)
    groups = np.array([(c[1] << 32) | (c[4] or 0) for c in chunk], dtype=np.int64)
    findings: list[Finding] = []
    window_start = end - HOUR_WINDOWS * WINDOW
    for metric in METRICS:
        values = prepare(metric, mats[metric.key], uptime)
        scan = score_latest(values, direction=metric.direction, groups=groups)
        findings += findings_for(metric, scan, window_start=window_start, window_end=end)
    return _apply(chunk, findings)


@transaction.atomic
def _apply(chunk: list[tuple], findings: list[Finding]) -> tuple[int, int]:
    from telemetry import services
    from telemetry.models import Alert

    ids = [c[0] for c in chunk]
    unmonitored = {i for i, c in enumerate(chunk) if c[3] in UNMONITORED_MINER_STATUSES}
    # The open anomaly alerts of these miners, locked up front in primary-key order (as the rule engine does),
    # so two runs over the same miners wait for each other instead of deadlocking.
    open_rows = list(
        Alert.objects.select_for_update()
        .filter(miner_id__in=ids, alert_type__in=ALERT_TYPES)
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
    cleared = {(chunk[f.row][0], f.metric.alert_type): f.metric.key for f in findings if not f.holds}
    cleared.update({(chunk[i][0], m.alert_type): "unmonitored" for i in unmonitored for m in METRICS})
    groups: dict[str, list[int]] = defaultdict(list)
    for pk, miner_id, alert_type in open_rows:
        why = cleared.get((miner_id, alert_type))
        if why is not None:
            groups[why].append(pk)
    resolved = 0
    for why, alert_ids in sorted(groups.items()):
        note = NOT_MONITORED_NOTE if why == "unmonitored" else CLEARED_NOTES[why]
        resolved += len(services.alerts_resolve(alert_ids=alert_ids, actor=None, note=note))
    return len(to_raise), resolved
