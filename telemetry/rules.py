"""Alert rules, evaluated: a pure function of a site's rules and a batch of miner states (no ORM).

The rule engine (``telemetry.rule_engine``) loads the rows and acts on the answer; this module only
decides, per miner and rule kind, one of three outcomes:

- ``holds``: the condition is met (for its full duration) — raise the alert, or count onto the open one;
- ``clear``: the condition is not met now — resolve the open alert, if any;
- pending (no finding): not decided — the condition is met but not yet for long enough, or the data
  needed is missing (a 5-minute window not rolled up yet, a stale live row, a miner idle or offline
  for a hashrate rule). An open alert stays open and nothing new is raised.

Raising needs the condition to have lasted; clearing needs only the value to be back now. That
asymmetry is the hysteresis that keeps an alert from flapping, and it is why a late rollup or a
collector's backlog can delay an alert but never invent one.

Durations are measured in whole 5-minute windows of ``history_5m`` (a rule "for 15 min" needs the
three windows before the current one, and the live value now, all beyond the threshold); a duration
that is not a multiple of 5 is rounded up. Windowed metrics are the window averages (hashrate, chip
temperature, power) and the window's share deltas (reject rate).

Everything is computed on numpy arrays, one column per miner, so a batch of thousands of miners costs
a few array operations per rule rather than a Python loop per miner."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

CHIP_TEMP_ABOVE = "chip_temp_above"
HASHRATE_BELOW_PCT = "hashrate_below_pct"
OFFLINE_FOR = "offline_for"
POWER_DEVIATION_PCT = "power_deviation_pct"
REJECT_RATE_ABOVE_PCT = "reject_rate_above_pct"
KINDS = (CHIP_TEMP_ABOVE, HASHRATE_BELOW_PCT, OFFLINE_FOR, POWER_DEVIATION_PCT, REJECT_RATE_ABOVE_PCT)

# Which rule kinds each trigger evaluates (see ``rules_for_phase``). Ingest sees fresh live rows (the
# reject rate needs share deltas, which only the 5-minute windows have); a rollup sees new windows; an
# offline miner sends nothing, so only the periodic job notices it (ingest clears it when it is back).
PHASE_KINDS = {
    "ingest": (CHIP_TEMP_ABOVE, HASHRATE_BELOW_PCT, OFFLINE_FOR, POWER_DEVIATION_PCT),
    "rollup": (CHIP_TEMP_ABOVE, HASHRATE_BELOW_PCT, POWER_DEVIATION_PCT, REJECT_RATE_ABOVE_PCT),
    "offline": (OFFLINE_FOR,),
}

WINDOW = timedelta(minutes=5)
WINDOW_S = 300
DEFAULT_STALE_AFTER_S = 300
# Fewer shares than this in the rule's windows say nothing about a reject rate (1 of 10 is not 10 %).
MIN_SHARES_FOR_REJECT_RATE = 20
# A miner in these asset states is being worked on or gone: no rule alerts on it.
UNMONITORED_MINER_STATUSES = frozenset({"maintenance", "retired"})
# Hashrate and power are only judged while the miner means to hash: an idle miner (curtailed, paused)
# draws little and hashes nothing by design, and an offline one is the offline rule's business.
WORKING_STATES = ("hashing", "error")

SEVERITIES = ("info", "warning", "critical")
MAX_DURATION_MINUTES = 1440

# Per kind: the unit of the threshold and its allowed range (inclusive). The offline rule has no
# threshold: its minutes are the duration.
THRESHOLD_UNITS = {
    CHIP_TEMP_ABOVE: "°C",
    HASHRATE_BELOW_PCT: "%",
    OFFLINE_FOR: "",
    POWER_DEVIATION_PCT: "%",
    REJECT_RATE_ABOVE_PCT: "%",
}
THRESHOLD_RANGES = {
    CHIP_TEMP_ABOVE: (40.0, 130.0),
    HASHRATE_BELOW_PCT: (1.0, 100.0),
    OFFLINE_FOR: (0.0, 0.0),
    POWER_DEVIATION_PCT: (1.0, 100.0),
    REJECT_RATE_ABOVE_PCT: (0.1, 100.0),
}


@dataclass(frozen=True)
class Rule:
    kind: str
    threshold: float
    duration_minutes: int = 0
    severity: str = "warning"
    enabled: bool = True

    @property
    def windows(self) -> int:
        """How many complete 5-minute windows before the current one the duration needs."""
        return math.ceil(self.duration_minutes / 5) if self.duration_minutes > 0 else 0


def default_rules() -> list[Rule]:
    """What every site starts with. Modern SHA-256 ASICs (Antminer S19/S21, Whatsminer M50/M60) run
    their hottest chips at 65–80 °C and their firmware cuts hashing at about 95 °C, so 90 °C is the
    last moment to act; the other figures are the usual hosting thresholds."""
    return [
        Rule(CHIP_TEMP_ABOVE, 90.0, 0, "critical"),
        Rule(HASHRATE_BELOW_PCT, 80.0, 15, "warning"),
        Rule(OFFLINE_FOR, 0.0, 10, "warning"),
        Rule(POWER_DEVIATION_PCT, 20.0, 15, "warning"),
        Rule(REJECT_RATE_ABOVE_PCT, 2.0, 15, "warning"),
    ]


@dataclass(frozen=True)
class MinerState:
    """One miner as the live layer and the catalog know it. Units are in the names; None = unknown."""

    miner_id: int
    nominal_hashrate_ths: float | None = None
    nominal_power_w: float | None = None
    last_seen: datetime | None = None
    status: str | None = None  # the last sample's: hashing | idle | offline | error
    hashrate_ghs: float | None = None  # the live 5-minute moving average
    temp_chip_max_c: float | None = None
    power_w: float | None = None
    miner_status: str = "active"  # the asset's own status (Miner.status)
    # Since when the samples have said "offline" (the first of the current run), if they do.
    offline_since: datetime | None = None
    # The freshest sample of the miner's peers (its zone): silence is measured against it, so a
    # collector that stopped, or ingest that is behind, does not make every miner look offline.
    peers_last_seen: datetime | None = None


@dataclass(frozen=True)
class Window:
    """One 5-minute window of ``history_5m`` for one miner."""

    miner_id: int
    bucket: datetime
    avg_hashrate_ths: float | None = None
    avg_temp_chip_max_c: float | None = None
    avg_power_w: float | None = None
    accepted_shares: int = 0
    rejected_shares: int = 0


@dataclass(frozen=True)
class Finding:
    miner_id: int
    kind: str
    holds: bool  # True: raise; False: the condition has cleared
    severity: str = ""
    message: str = ""
    evidence: dict = field(default_factory=dict)
    reason: str = ""  # why it cleared: "cleared" or "not_monitored"


def floor_window(ts: datetime) -> datetime:
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_S, tz=UTC)


def _epoch(values: Iterable[datetime | None]) -> np.ndarray:
    return np.array([v.timestamp() if v is not None else np.nan for v in values], dtype=float)


def _floats(values: Iterable) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


class _Batch:
    """The miner states as columns, and their windows as (miner × window) matrices, oldest first."""

    def __init__(self, miners: Sequence[MinerState], windows: Iterable[Window], *, now: datetime, depth: int):
        self.now = now.timestamp()
        self.ids = np.array([m.miner_id for m in miners], dtype=np.int64)
        self.monitored = np.array([m.miner_status not in UNMONITORED_MINER_STATUSES for m in miners], dtype=bool)
        self.nominal_ths = _floats(m.nominal_hashrate_ths for m in miners)
        self.nominal_w = _floats(m.nominal_power_w for m in miners)
        self.last_seen = _epoch(m.last_seen for m in miners)
        self.status = np.array([m.status or "" for m in miners], dtype=object)
        self.hashrate_ths = _floats(m.hashrate_ghs for m in miners) / 1000.0
        self.temp = _floats(m.temp_chip_max_c for m in miners)
        self.power = _floats(m.power_w for m in miners)
        self.offline_since = _epoch(m.offline_since for m in miners)
        self.peers_last_seen = _epoch(m.peers_last_seen for m in miners)
        self.depth = depth
        n = len(miners)
        shape = (n, depth)
        self.w_hashrate = np.full(shape, np.nan)
        self.w_temp = np.full(shape, np.nan)
        self.w_power = np.full(shape, np.nan)
        self.w_accepted = np.full(shape, np.nan)
        self.w_rejected = np.full(shape, np.nan)
        if depth:
            first = floor_window(now).timestamp() - depth * WINDOW_S
            row_of = {int(pk): i for i, pk in enumerate(self.ids)}
            for w in windows:
                row = row_of.get(w.miner_id)
                col = int((w.bucket.timestamp() - first) // WINDOW_S)
                if row is None or not 0 <= col < depth:
                    continue
                self.w_hashrate[row, col] = np.nan if w.avg_hashrate_ths is None else w.avg_hashrate_ths
                self.w_temp[row, col] = np.nan if w.avg_temp_chip_max_c is None else w.avg_temp_chip_max_c
                self.w_power[row, col] = np.nan if w.avg_power_w is None else w.avg_power_w
                self.w_accepted[row, col] = w.accepted_shares or 0
                self.w_rejected[row, col] = w.rejected_shares or 0

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class _Outcome:
    holds: np.ndarray
    clear: np.ndarray
    value: np.ndarray  # the value now, for the message and the evidence


def _sustained(now_bad, now_good, win_bad, win_known, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Holds when the value is beyond the threshold now and in each of the last ``k`` windows (all of
    which must be there); clears as soon as the value is back now."""
    if k == 0:
        return now_bad, now_good
    all_bad = np.all(win_bad[:, -k:] & win_known[:, -k:], axis=1)
    return now_bad & all_bad, now_good


def _fresh(b: _Batch, stale_after_s: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (b.now - b.last_seen) < stale_after_s


def _chip_temp(rule: Rule, b: _Batch, stale_after_s: float) -> _Outcome:
    thr = rule.threshold
    fresh = _fresh(b, stale_after_s) & ~np.isnan(b.temp)
    with np.errstate(invalid="ignore"):
        holds, clear = _sustained(
            fresh & (b.temp > thr), fresh & (b.temp <= thr), b.w_temp > thr, ~np.isnan(b.w_temp), rule.windows
        )
    return _Outcome(holds, clear, b.temp)


def _working(b: _Batch, stale_after_s: float) -> np.ndarray:
    return _fresh(b, stale_after_s) & np.isin(b.status, WORKING_STATES)


def _hashrate(rule: Rule, b: _Batch, stale_after_s: float) -> _Outcome:
    thr = rule.threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        nominal = np.where(b.nominal_ths > 0, b.nominal_ths, np.nan)
        pct = b.hashrate_ths / nominal * 100.0
        w_pct = b.w_hashrate / nominal[:, None] * 100.0
        ok = _working(b, stale_after_s) & ~np.isnan(pct)
        holds, clear = _sustained(ok & (pct < thr), ok & (pct >= thr), w_pct < thr, ~np.isnan(w_pct), rule.windows)
    return _Outcome(holds, clear, pct)


def _power(rule: Rule, b: _Batch, stale_after_s: float) -> _Outcome:
    thr = rule.threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        nominal = np.where(b.nominal_w > 0, b.nominal_w, np.nan)
        dev = np.abs(b.power - nominal) / nominal * 100.0
        w_dev = np.abs(b.w_power - nominal[:, None]) / nominal[:, None] * 100.0
        ok = _working(b, stale_after_s) & ~np.isnan(dev)
        holds, clear = _sustained(ok & (dev > thr), ok & (dev <= thr), w_dev > thr, ~np.isnan(w_dev), rule.windows)
    return _Outcome(holds, clear, dev)


def _reject_rate(rule: Rule, b: _Batch) -> tuple[_Outcome, np.ndarray, np.ndarray]:
    k = max(rule.windows, 1)
    acc, rej = b.w_accepted[:, -k:], b.w_rejected[:, -k:]
    known = ~np.isnan(acc)
    accepted, rejected = np.nansum(acc, axis=1), np.nansum(rej, axis=1)
    total = accepted + rejected
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(total > 0, rejected / total * 100.0, np.nan)
    enough = total >= MIN_SHARES_FOR_REJECT_RATE
    holds = np.all(known, axis=1) & enough & (rate > rule.threshold)
    clear = np.any(known, axis=1) & enough & (rate <= rule.threshold)
    return _Outcome(holds, clear, rate), accepted, rejected


def _offline(rule: Rule, b: _Batch, stale_after_s: float) -> _Outcome:
    ref = np.where(np.isnan(b.peers_last_seen), b.now, np.minimum(b.peers_last_seen, b.now))
    seen = ~np.isnan(b.last_seen)
    silent = np.clip(ref - b.last_seen, 0, None)
    reports_offline = b.status == "offline"
    with np.errstate(invalid="ignore"):
        is_silent = seen & (silent >= stale_after_s)
        start = np.where(reports_offline & ~np.isnan(b.offline_since), b.offline_since, b.last_seen)
        minutes = np.clip(ref - start, 0, None) / 60.0
        offline = seen & (is_silent | reports_offline)
        holds = offline & (minutes >= rule.duration_minutes)
    return _Outcome(holds, seen & ~offline, minutes)


def _iso(epoch: float) -> str | None:
    return None if np.isnan(epoch) else datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def rules_for_phase(rules: Iterable[Rule], phase: str) -> list[Rule]:
    """The enabled rules a trigger evaluates. A rollup brings new windows only, so it skips the
    immediate rules (duration 0) that every ingest batch already judged on the same live values."""
    kinds = PHASE_KINDS[phase]
    return [
        r
        for r in rules
        if r.enabled
        and r.kind in kinds
        and (phase != "rollup" or r.duration_minutes > 0 or r.kind == REJECT_RATE_ABOVE_PCT)
    ]


def evaluate(
    rules: Iterable[Rule],
    miners: Sequence[MinerState],
    windows: Iterable[Window] = (),
    *,
    now: datetime,
    phase: str,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> list[Finding]:
    """Findings for the enabled rules of ``phase``'s kinds: one per miner and kind that holds or has
    cleared; pending pairs have none. ``now`` is the evaluation's reference time: at ingest the batch's
    newest sample (so a replayed backlog is judged by its own clock), otherwise the current time."""
    active = rules_for_phase(rules, phase)
    if not active or not miners:
        return []
    depth = max((max(r.windows, 1) if r.kind == REJECT_RATE_ABOVE_PCT else r.windows) for r in active)
    b = _Batch(miners, windows, now=now, depth=depth)
    findings: list[Finding] = []
    unmonitored = np.flatnonzero(~b.monitored)
    for rule in active:
        for i in unmonitored:
            findings.append(Finding(int(b.ids[i]), rule.kind, False, reason="not_monitored"))
        findings.extend(_findings_for(rule, b, stale_after_s))
    return findings


def _findings_for(rule: Rule, b: _Batch, stale_after_s: float) -> list[Finding]:
    thr, kind = rule.threshold, rule.kind
    extra: tuple = ()
    if kind == CHIP_TEMP_ABOVE:
        out = _chip_temp(rule, b, stale_after_s)
    elif kind == HASHRATE_BELOW_PCT:
        out = _hashrate(rule, b, stale_after_s)
    elif kind == POWER_DEVIATION_PCT:
        out = _power(rule, b, stale_after_s)
    elif kind == REJECT_RATE_ABOVE_PCT:
        out, *extra = _reject_rate(rule, b)
    else:
        out = _offline(rule, b, stale_after_s)
    findings = [Finding(int(b.ids[i]), kind, False, reason="cleared") for i in np.flatnonzero(out.clear & b.monitored)]
    for i in np.flatnonzero(out.holds & b.monitored):
        message, evidence = _describe(rule, b, int(i), float(out.value[i]), extra)
        evidence.update(threshold=thr, duration_minutes=rule.duration_minutes)
        findings.append(Finding(int(b.ids[i]), kind, True, rule.severity, message, evidence))
    return findings


# The message of each finding, as an id and its parameters (kept in the evidence under "msg") beside the
# English text stored in Alert.message: pages show telemetry.alert_messages' translation of the id in the
# reader's language; the stored text is what the API, exports and e-mails carry. A test keeps the two
# wordings identical in English.
MESSAGES = {
    "chip_temp_above": "Chip temperature {value} °C is above {threshold} °C.",
    "chip_temp_above_for": "Chip temperature {value} °C is above {threshold} °C for {minutes} min.",
    "hashrate_below": (
        "Hashrate {ths} TH/s (5-min average) is {pct} % of the nominal {nominal} TH/s, below {threshold} %."
    ),
    "hashrate_below_for": (
        "Hashrate {ths} TH/s (5-min average) is {pct} % of the nominal {nominal} TH/s, below {threshold} % "
        "for {minutes} min."
    ),
    "power_deviation": "Power {watts} W is {pct} % off the nominal {nominal} W, more than {threshold} %.",
    "power_deviation_for": (
        "Power {watts} W is {pct} % off the nominal {nominal} W, more than {threshold} % for {minutes} min."
    ),
    "reject_rate_above": (
        "Reject rate {pct} % ({rejected} of {total} shares) is above {threshold} % over {minutes} min."
    ),
    "offline_reported": "The miner has reported offline for {minutes} min.",
    "offline_silent": "No sample from the miner for {minutes} min (last seen {last_seen} UTC).",
}


def _message(msg_id: str, **params: str) -> tuple[str, dict]:
    return MESSAGES[msg_id].format(**params), {"id": msg_id, "params": params}


def _timed(msg_id: str, rule: Rule, **params: str) -> tuple[str, dict]:
    if rule.duration_minutes:
        return _message(f"{msg_id}_for", minutes=str(rule.duration_minutes), **params)
    return _message(msg_id, **params)


def _describe(rule: Rule, b: _Batch, i: int, value: float, extra: tuple) -> tuple[str, dict]:
    """The alert's message in English (``MESSAGES``) and its evidence, which carries the message's id and
    parameters under "msg" for pages to show it translated."""
    thr, kind = rule.threshold, rule.kind
    if kind == CHIP_TEMP_ABOVE:
        text, msg = _timed("chip_temp_above", rule, value=_fmt(value), threshold=_fmt(thr))
        return text, {"temp_chip_max_c": round(value, 2), "unit": "°C", "msg": msg}
    if kind == HASHRATE_BELOW_PCT:
        ths, nominal = float(b.hashrate_ths[i]), float(b.nominal_ths[i])
        text, msg = _timed(
            "hashrate_below", rule, ths=_fmt(ths), pct=_fmt(value, 0), nominal=_fmt(nominal), threshold=_fmt(thr, 0)
        )
        return text, {"hashrate_ths": round(ths, 3), "nominal_ths": nominal, "pct_of_nominal": round(value, 2),
                      "unit": "%", "msg": msg}  # fmt: skip
    if kind == POWER_DEVIATION_PCT:
        watts, nominal = float(b.power[i]), float(b.nominal_w[i])
        text, msg = _timed(
            "power_deviation", rule, watts=_fmt(watts, 0), pct=_fmt(value, 0), nominal=_fmt(nominal, 0),
            threshold=_fmt(thr, 0),
        )  # fmt: skip
        return text, {"power_w": round(watts, 1), "nominal_w": nominal, "deviation_pct": round(value, 2), "unit": "%",
                      "msg": msg}  # fmt: skip
    if kind == REJECT_RATE_ABOVE_PCT:
        accepted, rejected = (int(a[i]) for a in extra)
        minutes = max(rule.windows, 1) * 5
        text, msg = _message(
            "reject_rate_above", pct=_fmt(value, 2), rejected=f"{rejected:,}", total=f"{accepted + rejected:,}",
            threshold=_fmt(thr, 2), minutes=str(minutes),
        )  # fmt: skip
        return text, {"reject_rate_pct": round(value, 3), "accepted_shares": accepted, "rejected_shares": rejected,
                      "window_minutes": minutes, "unit": "%", "msg": msg}  # fmt: skip
    last_seen = _iso(float(b.last_seen[i]))
    if b.status[i] == "offline":
        text, msg = _message("offline_reported", minutes=_fmt(value, 0))
    else:
        text, msg = _message(
            "offline_silent", minutes=_fmt(value, 0), last_seen=(last_seen or "")[:16].replace("T", " ")
        )
    return text, {"offline_minutes": round(value, 1), "last_seen": last_seen, "status": b.status[i], "unit": "min",
                  "msg": msg}  # fmt: skip


def validate_rule(kind: str, *, threshold: float, duration_minutes: int, severity: str) -> dict[str, str]:
    """Field → error code for a rule's values (empty when valid); the services refuse with these."""
    errors: dict[str, str] = {}
    low, high = THRESHOLD_RANGES[kind]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not low <= threshold <= high
    ):
        errors["threshold"] = "threshold_out_of_range"
    whole = isinstance(duration_minutes, int) and not isinstance(duration_minutes, bool)
    if not whole or not 0 <= duration_minutes <= MAX_DURATION_MINUTES:
        errors["duration_minutes"] = "duration_out_of_range"
    if severity not in SEVERITIES:
        errors["severity"] = "invalid_severity"
    return errors
