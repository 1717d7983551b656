"""Whether telemetry shows a command's effect on one miner: pure Python, plain data in and out (no Django).

``commands.verification`` reads the rows and writes the answers; this module only decides. Per target it gets
what the command asked (type, parameters, CURTAIL's per-target action), what was recorded before it ran
(``CommandTarget.before_state``: the telemetry frozen at proposal, and the edge's own reading under ``"edge"``),
the miner model's nominal figures, when the edge acknowledged it, and the readings taken since. It answers
``verified`` (with the time of the reading that showed it), ``pending`` (the window is still open), ``not_seen``
(the window closed without a reading that shows it) or ``n/a`` (the target failed at the edge, the command asks
for nothing telemetry can show, or no reading within the window could tell either way).

Rules, per type (a reading of a miner that does not answer, ``offline``, never shows an effect):

* HASHING_DISABLE: status ``idle``, or hashrate ≈ 0 (at most ``max(0.5 TH/s, 2 % of the miner's nominal)``).
* HASHING_ENABLE: status ``hashing`` with a real hashrate (at least half the nominal; above ≈ 0 if unknown).
* MINER_RESTART: after the acknowledgement the miner went down (offline, idle, error, hashrate ≈ 0, or its
  share counters started again from below the last reading before) and then hashed again with a real hashrate.
  It is a sequence, so it needs every sample (the raw layer), not only the latest.
* POOL_SET: the reported active pool is the new URL (compared without case and trailing slashes).
* SET_FAN: the reported fan duty is the set percent (±1), or, when the miner does not report its duty, the mean
  fan speed moved in the direction of the change (known from the duty the edge read before it acted) by more
  than noise (``max(150 rpm, 5 %)``); with no known direction, any move beyond noise. ``"auto"`` is n/a.
* POWER_MODE: the reported mode is the new one, or power moved the way the change goes (low < normal < high;
  from the mode the edge read before, else ``low`` means down and ``high`` up) by more than 5 %.
* CURTAIL: per target action — ``stop``: status idle, power ≈ 0 (at most 10 % of nominal, 250 W if unknown) or
  hashrate ≈ 0; ``power_target``: power at most the target + 5 % + 50 W (a hard stop, the edge's fallback,
  satisfies it too); ``none``: n/a. Readings after the curtailment window's end do not count (the edge restores
  then).

Only readings strictly after the acknowledgement and not after the window's end count. The window per type is
``max(floor, polls × the collector's poll interval)``: long enough for the effect to settle and for a few samples
to arrive, whatever the site's poll interval (``WINDOW_POLLS``, ``WINDOW_FLOOR_S``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commands.risk import (
    COMMAND_TYPES,
    CURTAIL,
    FAN_AUTO,
    HASHING_DISABLE,
    HASHING_ENABLE,
    MINER_RESTART,
    POOL_SET,
    POWER_MODE,
    POWER_MODES,
    SET_FAN,
)

VERIFIED, PENDING, NOT_SEEN, PARTIAL, NOT_APPLICABLE = "verified", "pending", "not_seen", "partial", "n/a"
FINAL = frozenset({VERIFIED, NOT_SEEN, NOT_APPLICABLE})

# The collector's own default (edge/collector/config.py ``poll_interval_s``), used when nothing better is known.
DEFAULT_POLL_INTERVAL_S = 60.0
# Window = max(floor, polls × poll interval). The polls leave room for a sample or two to be lost; the floors
# cover what real firmware needs whatever the poll interval (an S19 boots in 2–4 minutes, ramps for 1–2).
WINDOW_POLLS = {
    HASHING_DISABLE: 3,
    HASHING_ENABLE: 5,
    MINER_RESTART: 6,
    POOL_SET: 3,
    SET_FAN: 3,
    POWER_MODE: 5,
    CURTAIL: 3,
}
WINDOW_FLOOR_S = {
    HASHING_DISABLE: 60.0,
    HASHING_ENABLE: 180.0,
    MINER_RESTART: 300.0,
    POOL_SET: 60.0,
    SET_FAN: 60.0,
    POWER_MODE: 180.0,
    CURTAIL: 60.0,
}
MAX_WINDOW_S = 24 * 3600.0  # the raw layer's retention: nothing older can be checked

# Thresholds. Simulator noise is ~1 % on hashrate, ~0.8 % on power; real fans wander by ~100 rpm.
ZERO_THS = 0.5
ZERO_FRACTION = 0.02
REAL_HASHRATE_FRACTION = 0.5
STOP_POWER_FRACTION = 0.10
STOP_POWER_W_UNKNOWN = 250.0
POWER_TARGET_TOLERANCE = 0.05
POWER_TARGET_SLACK_W = 50.0
POWER_MOVE_FRACTION = 0.05
FAN_NOISE_RPM = 150.0
FAN_NOISE_FRACTION = 0.05
FAN_PCT_TOLERANCE = 1
DOWN_STATUSES = frozenset({"offline", "idle", "error"})
DETAIL_MAX = 300


@dataclass(frozen=True)
class Reading:
    """One telemetry reading of one miner. ``None`` settings mean "this reading does not say" (raw samples never
    carry them; the live row carries what the edge last read)."""

    ts: datetime
    status: str = ""
    hashrate_ths: float | None = None
    power_w: float | None = None
    fan_rpm: Sequence[float] = ()
    accepted_shares: int | None = None
    pool_url: str | None = None
    fan_pct: int | None = None
    power_mode: str | None = None


@dataclass(frozen=True)
class Target:
    """What one target asked for and what was known before it ran."""

    command_type: str
    acked_at: datetime | None
    result_ok: bool
    params: Mapping = field(default_factory=dict)
    action: Mapping = field(default_factory=dict)  # CURTAIL: {"action": "power_target" | "stop" | "none", "power_w"}
    before: Mapping = field(default_factory=dict)  # CommandTarget.before_state (the edge's reading under "edge")
    nominal_hashrate_ths: float | None = None
    nominal_power_w: float | None = None
    result_message: str = ""


@dataclass(frozen=True)
class Outcome:
    verification: str
    detail: str = ""
    seen_at: datetime | None = None


# ---------------------------------------------------------------------------------------------------
# Windows


def window_s(command_type: str, poll_interval_s: float | None = None, overrides: Mapping | None = None) -> float:
    """Seconds after the acknowledgement within which ``command_type``'s effect must show.

    ``overrides`` (type → seconds) wins; otherwise ``max(floor, polls × poll interval)``. A poll interval that is
    missing or not a positive number counts as the collector's default."""
    if overrides and command_type in overrides:
        return min(max(float(overrides[command_type]), 1.0), MAX_WINDOW_S)
    poll = _positive(poll_interval_s) or DEFAULT_POLL_INTERVAL_S
    polls = WINDOW_POLLS.get(command_type, 3)
    floor = WINDOW_FLOOR_S.get(command_type, 60.0)
    return min(max(floor, polls * poll), MAX_WINDOW_S)


def deadline(target: Target, window: float) -> datetime | None:
    """The end of ``target``'s window (for CURTAIL, never after the curtailment's own end)."""
    if target.acked_at is None:
        return None
    end = target.acked_at + timedelta(seconds=window)
    if target.command_type == CURTAIL:
        curtail_end = _parse_time((target.params or {}).get("end"))
        if curtail_end is not None and target.acked_at < curtail_end < end:
            end = curtail_end
    return end


# ---------------------------------------------------------------------------------------------------
# The decision


def not_applicable(target: Target) -> str | None:
    """Why telemetry cannot show ``target``'s effect, or None when it can (decided before any reading)."""
    if not target.result_ok:
        message = (target.result_message or "").strip()
        return _clip(f"not run on this miner: {message}" if message else "not run on this miner")
    if target.acked_at is None:
        return "never acknowledged"
    kind = target.command_type
    if kind not in COMMAND_TYPES:
        return f"unknown command type {kind!r}"
    params = target.params or {}
    if kind == SET_FAN and (params.get("percent") == FAN_AUTO or _int(params.get("percent")) is None):
        return "automatic fan control: no duty to compare with"
    if kind == POWER_MODE and params.get("mode") not in POWER_MODES:
        return "no power mode to compare with"
    if kind == POOL_SET and not _norm_url(params.get("url")):
        return "no pool URL to compare with"
    if kind == CURTAIL:
        action = (target.action or {}).get("action")
        if action == "none":
            return "the curtailment plan leaves this miner as it is"
        if action not in ("stop", "power_target"):
            return "no curtailment action recorded for this miner"
        if action == "power_target" and _positive((target.action or {}).get("power_w")) is None:
            return "no power target recorded for this miner"
    return None


def decide(
    target: Target,
    readings: Iterable[Reading],
    *,
    now: datetime,
    window: float,
    baseline: Reading | None = None,
) -> Outcome:
    """The verification of one target from the readings available now.

    ``readings`` may hold anything (the caller passes the live row and, when needed, raw samples): only those
    strictly after the acknowledgement and not after the window's end count. ``baseline`` is the last reading at
    or before the acknowledgement (MINER_RESTART compares share counters with it)."""
    why = not_applicable(target)
    if why is not None:
        return Outcome(NOT_APPLICABLE, why)
    end = deadline(target, window)
    if end is None or target.acked_at is None:  # not_applicable() refused these already
        return Outcome(NOT_APPLICABLE, "never acknowledged")
    usable = sorted((r for r in readings if target.acked_at < r.ts <= end), key=lambda r: r.ts)
    if target.command_type == MINER_RESTART:
        seen, detail, seen_at = _restart(target, usable, baseline)
        if seen:
            return Outcome(VERIFIED, detail, seen_at)
        if now < end:
            return Outcome(PENDING, detail)
        return Outcome(NOT_SEEN, detail)
    check = _CHECKS[target.command_type]
    against = ""  # the latest reading that showed the effect missing
    cannot_tell = ""  # the latest reading that could not tell (a setting the miner does not report)
    for reading in usable:
        verdict, detail = check(target, reading)
        if verdict:
            return Outcome(VERIFIED, _clip(detail), reading.ts)
        if verdict is None:
            cannot_tell = detail
        else:
            against = detail
    if now < end:
        return Outcome(PENDING, _clip(against or cannot_tell))
    seconds = f"{window:g} s"
    if not usable:
        return Outcome(NOT_SEEN, f"no telemetry from the miner within {seconds} of the acknowledgement")
    if not against:
        return Outcome(NOT_APPLICABLE, _clip(f"telemetry cannot show it: {cannot_tell}"))
    return Outcome(NOT_SEEN, _clip(f"not seen within {seconds}: {against}"))


def summarise(verifications: Iterable[str]) -> str:
    """A command's verification from its targets': ``n/a`` if none applies, ``pending`` while any waits,
    ``verified`` if all applicable ones were seen, ``not_seen`` if none was, else ``partial``."""
    values = [v or PENDING for v in verifications]
    applicable = [v for v in values if v != NOT_APPLICABLE]
    if not applicable:
        return NOT_APPLICABLE
    if any(v == PENDING for v in applicable):
        return PENDING
    seen = sum(1 for v in applicable if v == VERIFIED)
    if seen == len(applicable):
        return VERIFIED
    return NOT_SEEN if seen == 0 else PARTIAL


# ---------------------------------------------------------------------------------------------------
# Checks per type: (True: shows the effect | False: shows it did not | None: cannot tell, detail)


def _offline(reading: Reading) -> tuple[bool | None, str] | None:
    if reading.status == "offline":
        return False, "the miner does not answer (offline)"
    return None


def _disable(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    if r.status == "idle":
        return True, "hashing stopped (idle)"
    zero = _near_zero(target)
    if r.hashrate_ths is not None:
        if r.hashrate_ths <= zero:
            return True, f"hashing stopped ({r.hashrate_ths:g} TH/s)"
        return False, f"still hashing at {r.hashrate_ths:.1f} TH/s"
    return None, "no hashrate reported"


def _enable(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    real = _real_hashrate(target)
    if r.status == "hashing" and r.hashrate_ths is not None and r.hashrate_ths >= real:
        return True, f"hashing at {r.hashrate_ths:.1f} TH/s"
    if r.hashrate_ths is None and r.status == "hashing":
        return None, "no hashrate reported"
    shown = "no hashrate" if r.hashrate_ths is None else f"{r.hashrate_ths:.1f} TH/s"
    return False, f"{r.status or 'unknown status'}, {shown} (needs ≥ {real:.1f} TH/s)"


def _pool(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    wanted = _norm_url(target.params.get("url"))
    current = _norm_url(r.pool_url)
    if not current:
        return None, "the miner does not report its active pool"
    if current == wanted:
        return True, f"active pool is {r.pool_url}"
    return False, f"active pool is still {r.pool_url}"


def _fan(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    percent = _int(target.params.get("percent"))
    if percent is None:  # not_applicable() refused these already
        return None, "no duty to compare with"
    if r.fan_pct is not None:
        if abs(r.fan_pct - percent) <= FAN_PCT_TOLERANCE:
            return True, f"fan duty at {r.fan_pct} %"
        return False, f"fan duty at {r.fan_pct} %, not {percent} %"
    edge = _edge(target)
    before_rpm = _mean_rpm(edge.get("fan_rpm"))
    now_rpm = _mean_rpm(r.fan_rpm)
    if before_rpm is None or now_rpm is None:
        return None, "no fan duty or fan speeds to compare"
    before_pct = _int(edge.get("fan_percent"))
    direction = None if before_pct is None else (percent > before_pct) - (percent < before_pct)
    return _moved(direction, before_rpm, now_rpm, max(FAN_NOISE_RPM, FAN_NOISE_FRACTION * before_rpm), "fan", "rpm")


def _power_mode(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    mode = target.params.get("mode")
    if r.power_mode:
        if r.power_mode == mode:
            return True, f"power mode is {mode}"
        return False, f"power mode is still {r.power_mode}"
    before_power = _first_positive(_edge(target).get("power_w"), (target.before or {}).get("power_w"))
    if before_power is None or r.power_w is None:
        return None, "no power mode or power to compare"
    before_mode = _edge(target).get("power_mode")
    order = {m: i for i, m in enumerate(POWER_MODES)}
    if before_mode in order:
        direction = (order[mode] > order[before_mode]) - (order[mode] < order[before_mode])
    else:
        direction = {"low": -1, "high": 1}.get(mode)
    return _moved(direction, before_power, r.power_w, POWER_MOVE_FRACTION * before_power, "power", "W")


def _curtail(target: Target, r: Reading) -> tuple[bool | None, str]:
    if (off := _offline(r)) is not None:
        return off
    action = target.action or {}
    if r.status == "idle":
        return True, "stopped (idle)"
    if action.get("action") == "stop":
        ceiling = _stop_ceiling(target)
        if r.power_w is not None and r.power_w <= ceiling:
            return True, f"power down to {r.power_w:.0f} W"
        if r.hashrate_ths is not None and r.hashrate_ths <= _near_zero(target):
            return True, f"hashing stopped ({r.hashrate_ths:g} TH/s)"
        if r.power_w is None:
            return None, "no power reported"
        return False, f"still drawing {r.power_w:.0f} W"
    limit = float(action["power_w"])
    allowed = limit * (1 + POWER_TARGET_TOLERANCE) + POWER_TARGET_SLACK_W
    if r.power_w is None:
        return None, "no power reported"
    if r.power_w <= allowed:
        return True, f"power {r.power_w:.0f} W within the {limit:.0f} W target"
    return False, f"power {r.power_w:.0f} W above the {limit:.0f} W target"


_CHECKS = {
    HASHING_DISABLE: _disable,
    HASHING_ENABLE: _enable,
    POOL_SET: _pool,
    SET_FAN: _fan,
    POWER_MODE: _power_mode,
    CURTAIL: _curtail,
}


def _restart(target: Target, readings: list[Reading], baseline: Reading | None) -> tuple[bool, str, datetime | None]:
    """Down, then up again: returns (seen, detail, when it was back)."""
    zero, real = _near_zero(target), _real_hashrate(target)
    previous_shares = baseline.accepted_shares if baseline is not None else None
    down_at: datetime | None = None
    how = ""
    for r in readings:
        reset = previous_shares is not None and r.accepted_shares is not None and r.accepted_shares < previous_shares
        down = r.status in DOWN_STATUSES or (r.hashrate_ths is not None and r.hashrate_ths <= zero)
        if down and down_at is None:
            down_at, how = r.ts, f"went down ({r.status or 'no hashrate'})"
        elif reset and down_at is None:
            down_at, how = r.ts, "share counters started again"
        up = r.status == "hashing" and r.hashrate_ths is not None and r.hashrate_ths >= real
        if down_at is not None and up and not down:
            return True, _clip(f"{how} at {_hms(down_at)}, hashing again at {r.hashrate_ths:.1f} TH/s"), r.ts
        if r.accepted_shares is not None:
            previous_shares = r.accepted_shares
    if down_at is not None:
        return False, _clip(f"{how} at {_hms(down_at)}, not hashing again yet"), None
    if not readings:
        return False, "no telemetry from the miner since the acknowledgement", None
    return False, "no restart seen: the miner kept hashing", None


# ---------------------------------------------------------------------------------------------------
# Helpers


def _moved(direction: int | None, before: float, now: float, noise: float, what: str, unit: str):
    delta = now - before
    text = f"{what} {before:.0f} → {now:.0f} {unit}"
    if direction is None:
        if abs(delta) > noise:
            return True, f"{text} (changed)"
        return None, f"{text}: unchanged, and which way it should move is unknown"
    if direction == 0:
        return (True, f"{text}: already at that setting") if abs(delta) <= noise else (False, f"{text}: moved")
    if direction * delta > noise:
        return True, f"{text} ({'up' if direction > 0 else 'down'} as expected)"
    return False, f"{text}: not {'up' if direction > 0 else 'down'} beyond noise ({noise:.0f} {unit})"


def _edge(target: Target) -> Mapping:
    edge = (target.before or {}).get("edge")
    return edge if isinstance(edge, Mapping) else {}


def _reference_hashrate(target: Target) -> float | None:
    before = target.before or {}
    ghs = _positive(before.get("hashrate_ghs"))
    return _first_positive(target.nominal_hashrate_ths, _edge(target).get("hashrate_ths"), ghs / 1000 if ghs else None)


def _near_zero(target: Target) -> float:
    reference = _reference_hashrate(target)
    return max(ZERO_THS, ZERO_FRACTION * reference) if reference else ZERO_THS


def _real_hashrate(target: Target) -> float:
    reference = _reference_hashrate(target)
    return max(_near_zero(target), REAL_HASHRATE_FRACTION * reference) if reference else _near_zero(target)


def _stop_ceiling(target: Target) -> float:
    reference = _first_positive(
        target.nominal_power_w, _edge(target).get("power_w"), (target.before or {}).get("power_w")
    )
    return STOP_POWER_FRACTION * reference if reference else STOP_POWER_W_UNKNOWN


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # Decimals and numeric strings
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if value > 0 and value == value and value != float("inf") else None


def _first_positive(*values: Any) -> float | None:
    for value in values:
        number = _positive(value)
        if number is not None:
            return number
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _mean_rpm(values: Any) -> float | None:
    if not isinstance(values, list | tuple):
        return None
    spinning = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and v > 0]
    return sum(spinning) / len(spinning) if spinning else None


def _norm_url(value: Any) -> str:
    return value.strip().rstrip("/").lower() if isinstance(value, str) else ""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"
