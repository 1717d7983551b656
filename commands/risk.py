"""The one risk engine for commands: pure Python, plain data in, plain data out (no Django, no database).

The commands service, the portal's live preview and the AI's recommendations all call this module, so a
command is scored the same way whoever proposes it. It holds six things:

* ``canonical_type``: the v1.1 command names, with the seed's legacy names mapped onto them;
* ``validate_params``: the parameters of each type, checked and normalised;
* ``score``: the risk score, its breakdown and the tier (who must approve);
* ``auto_approve``: a site's auto-approval rules (LOW only, never MEDIUM or above);
* ``safety_check`` and ``curtail_plan``: guards that refuse an unsafe command whatever its approvals, and
  the order in which a curtailment throttles and stops miners;
* ``inverse``: the command that undoes another one (rollback).

The score, in words (see ``FORMULA``)::

    core  = 0.30 × action weight + 0.25 × target-count bucket + 0.20 × power-impact bucket (kW)
          + 0.25 × (1 − AI confidence)          only when the AI proposes; weight 0 for a user or system rule
    score = core
          + 0.20 × (1 − core) × revenue bucket                       revenue at stake, USD/day at hashprice
          + 0.20 × (1 − core − revenue term) × history bucket        failure rate of this type at this site

Each adjustment moves the score at most a fifth of the way that is left to 1, so the score stays in [0, 1]
without clamping, and the breakdown's contributions (Decimals at four places) add up to the score exactly.
The tier is the highest of the score's tier, the type's base tier and the site policy's tier.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "COMMAND_TYPES",
    "FORMULA",
    "TIERS",
    "AutoApproveRule",
    "BreakdownItem",
    "CommandSpec",
    "CurtailAction",
    "CurtailPlan",
    "Refusal",
    "RiskAssessment",
    "RiskInput",
    "RiskInputError",
    "SiteLimits",
    "TargetState",
    "TimeWindow",
    "auto_approve",
    "base_tier",
    "canonical_type",
    "curtail_kw",
    "curtail_plan",
    "inverse",
    "inverse_groups",
    "safety_check",
    "score",
    "tier_for_score",
    "validate_params",
]

FORMULA = (
    "core = 0.30·action + 0.25·targets + 0.20·power_kW + 0.25·(1 − AI confidence) [AI proposals only]; "
    "score = core + 0.20·(1 − core)·revenue + 0.20·(1 − core − revenue term)·history; "
    "tier = max(score tier, type's base tier, site policy); LOW < 0.25 ≤ MEDIUM < 0.50 ≤ HIGH < 0.75 ≤ CRITICAL"
)


class RiskInputError(ValueError):
    """Bad input to the engine: an unknown type, a bad parameter, an impossible rollback.

    ``code`` is stable (API clients and tests match it), ``field`` names the parameter when there is one,
    and ``message`` never repeats a long value back."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.code = code
        self.field = field
        self.message = message

    def as_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "message": self.message}


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------
# Types and tiers

LOW, MEDIUM, HIGH, CRITICAL = "LOW", "MEDIUM", "HIGH", "CRITICAL"
TIERS = (LOW, MEDIUM, HIGH, CRITICAL)
_TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
# Lower bound of each tier above LOW.
TIER_THRESHOLDS = ((Decimal("0.75"), CRITICAL), (Decimal("0.50"), HIGH), (Decimal("0.25"), MEDIUM))

MINER_RESTART = "MINER_RESTART"
HASHING_DISABLE = "HASHING_DISABLE"
HASHING_ENABLE = "HASHING_ENABLE"
POOL_SET = "POOL_SET"
SET_FAN = "SET_FAN"
POWER_MODE = "POWER_MODE"
CURTAIL = "CURTAIL"
COMMAND_TYPES = (MINER_RESTART, HASHING_DISABLE, HASHING_ENABLE, POOL_SET, SET_FAN, POWER_MODE, CURTAIL)

LEGACY_NAMES = {
    "reboot": MINER_RESTART,
    "restart": MINER_RESTART,
    "stop": HASHING_DISABLE,
    "disable": HASHING_DISABLE,
    "start": HASHING_ENABLE,
    "enable": HASHING_ENABLE,
    "set_pool": POOL_SET,
    "set_fan": SET_FAN,
    "power_mode": POWER_MODE,
    "curtail": CURTAIL,
}


@dataclass(frozen=True)
class _TypeRisk:
    weight: Decimal  # the action weight, normalised 0–1
    base_tier: str
    words: str


# Why each weight: what goes wrong if the command is a mistake, and how easily it is undone.
_TYPE_RISK = {
    SET_FAN: _TypeRisk(Decimal("0.15"), LOW, "fan speed: undone at once; the safety guard covers hot chips"),
    HASHING_ENABLE: _TypeRisk(Decimal("0.20"), LOW, "start hashing: adds load, undone by a disable"),
    MINER_RESTART: _TypeRisk(Decimal("0.40"), MEDIUM, "restart: minutes of lost hashing, no inverse"),
    POWER_MODE: _TypeRisk(Decimal("0.50"), MEDIUM, "power mode: changes heat and power draw until changed back"),
    CURTAIL: _TypeRisk(Decimal("0.60"), MEDIUM, "soft curtailment: throttles first, ends with its window"),
    HASHING_DISABLE: _TypeRisk(Decimal("0.80"), HIGH, "stop hashing: all revenue of the targets stops"),
    POOL_SET: _TypeRisk(Decimal("0.90"), HIGH, "pool change: a wrong URL or worker sends the hashrate elsewhere"),
}
# A hard curtailment stops miners outright: it is a HASHING_DISABLE with an end time.
_CURTAIL_HARD = _TypeRisk(Decimal("0.80"), HIGH, "hard curtailment: stops miners outright for the window")


def canonical_type(name: Any) -> str:
    """The v1.1 name of a command type; the seed's legacy names (``reboot``, ``set_pool``…) are accepted.

    Case and surrounding blanks are ignored. Anything else raises ``RiskInputError('unknown_type')``."""
    if not isinstance(name, str):
        raise RiskInputError("unknown_type", "the command type must be a string", "type")
    key = name.strip()
    if key.upper() in COMMAND_TYPES:
        return key.upper()
    if key.lower() in LEGACY_NAMES:
        return LEGACY_NAMES[key.lower()]
    raise RiskInputError(
        "unknown_type", f"unknown command type {_short(name)}; known: {', '.join(COMMAND_TYPES)}", "type"
    )


def _type_risk(command_type: str, params: Mapping | None = None) -> _TypeRisk:
    if command_type == CURTAIL and params and params.get("mode") == "hard":
        return _CURTAIL_HARD
    return _TYPE_RISK[command_type]


def base_tier(command_type: str, params: Mapping | None = None) -> str:
    """The lowest tier a command of this type can have (a hard CURTAIL is HIGH, a soft one MEDIUM)."""
    return _type_risk(canonical_type(command_type), params).base_tier


def tier_for_score(value: Decimal | float | str) -> str:
    """LOW < 0.25 ≤ MEDIUM < 0.50 ≤ HIGH < 0.75 ≤ CRITICAL."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    for threshold, tier in TIER_THRESHOLDS:
        if number >= threshold:
            return tier
    return LOW


def _tier(value: Any, where: str) -> str:
    if isinstance(value, str) and value.strip().upper() in _TIER_RANK:
        return value.strip().upper()
    raise RiskInputError("invalid_tier", f"a tier is one of {', '.join(TIERS)}, not {_short(value)}", where)


def _max_tier(*tiers: str) -> str:
    return max(tiers, key=_TIER_RANK.__getitem__)


# ---------------------------------------------------------------------------------------------------
# Parameters

_ALLOWED = {
    MINER_RESTART: (set(), set()),
    HASHING_DISABLE: (set(), set()),
    HASHING_ENABLE: (set(), set()),
    POOL_SET: ({"url", "worker"}, {"password"}),
    SET_FAN: ({"percent"}, set()),
    POWER_MODE: ({"mode"}, set()),
    CURTAIL: ({"start", "end"}, {"kw", "percent", "mode"}),
}
POOL_SCHEMES = ("stratum+tcp", "stratum+ssl", "stratum2+tcp")
POWER_MODES = ("low", "normal", "high")
FAN_AUTO = "auto"  # SET_FAN percent: hand the fans back to the miner's own control
CURTAIL_MODES = ("soft", "hard")
MAX_URL_CHARS = 255
MAX_WORKER_CHARS = 120
MAX_PASSWORD_CHARS = 255
MAX_CURTAIL_WINDOW = timedelta(days=7)
MAX_CURTAIL_KW = Decimal(1_000_000)  # a gigawatt: anything above is a typo, not a site
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SV2_AUTHORITY = re.compile(r"^/[1-9A-HJ-NP-Za-km-z]{1,128}$")  # base58 authority key of a Stratum V2 pool


# No figure the engine sees (kW, USD/day, J/TH) is anywhere near this; bigger is a bug or an attack.
MAX_FIGURE = Decimal(10**12)


def _has_blank_or_control(text: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in text)


def _string(params: Mapping, key: str, max_chars: int) -> str:
    value = params[key]
    if not isinstance(value, str):
        raise RiskInputError("invalid_type", "must be a string", key)
    if len(value) > max_chars:
        raise RiskInputError("too_long", f"at most {max_chars} characters ({len(value)} given)", key)
    return value


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise RiskInputError("invalid_type", "must be a number", where)
    if isinstance(value, str) and len(value) > 40:
        raise RiskInputError("invalid_type", "must be a number (at most 40 characters)", where)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise RiskInputError("invalid_type", "must be a number", where) from None
    if not number.is_finite() or abs(number) > MAX_FIGURE:
        raise RiskInputError("invalid_type", f"must be a finite number of at most {MAX_FIGURE:,}", where)
    return number


def _pool_url(params: Mapping) -> str:
    raw = _string(params, "url", MAX_URL_CHARS)
    if _has_blank_or_control(raw):
        raise RiskInputError("invalid_url", "must not contain blanks or control characters", "url")
    try:
        parts = urlsplit(raw)
    except ValueError:  # a malformed bracketed IPv6 host
        raise RiskInputError("invalid_url", "the URL cannot be parsed", "url") from None
    scheme = parts.scheme.lower()
    if scheme not in POOL_SCHEMES:
        raise RiskInputError("invalid_scheme", f"the scheme must be one of {', '.join(POOL_SCHEMES)}", "url")
    if parts.username is not None or parts.password is not None:
        raise RiskInputError("invalid_url", "credentials belong in worker and password, not in the URL", "url")
    if parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise RiskInputError("invalid_url", "a pool URL has no query or fragment", "url")
    path = "" if parts.path == "/" else parts.path  # a trailing slash is harmless: dropped
    if path and not (scheme == "stratum2+tcp" and _SV2_AUTHORITY.match(path)):
        raise RiskInputError("invalid_url", "a pool URL has no path (Stratum V2: only the authority key)", "url")
    host = (parts.hostname or "").lower()
    if not host:
        raise RiskInputError("invalid_host", "the URL needs a host", "url")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise RiskInputError("invalid_host", "the host is not a valid IPv6 address", "url") from None
    elif not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise RiskInputError("invalid_host", "the host is not a valid name or address", "url")
    try:
        port = parts.port
    except ValueError:
        raise RiskInputError("invalid_port", "the port must be a number from 1 to 65535", "url") from None
    if port is None:
        raise RiskInputError("invalid_port", "the URL needs a port (1–65535)", "url")
    if not 1 <= port <= 65535:
        raise RiskInputError("invalid_port", "the port must be a number from 1 to 65535", "url")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}:{port}{path}"


def _datetime_utc(params: Mapping, key: str) -> datetime:
    value = _string(params, key, 40)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RiskInputError("invalid_datetime", "must be an ISO-8601 date and time", key) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RiskInputError("invalid_datetime", "must carry a time zone (UTC, e.g. 2026-11-26T02:00:00Z)", key)
    return moment.astimezone(UTC)


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain_number(number: Decimal) -> int | float:
    """A JSON-friendly number: an int when whole, else a float (params are stored and signed as JSON)."""
    return int(number) if number == number.to_integral_value() else float(number)


def validate_params(command_type: Any, params: Mapping | None, *, now: datetime | None = None) -> dict:
    """Check the parameters of a command and return them normalised (a new dict, JSON-ready).

    * POOL_SET: ``url`` (stratum+tcp / stratum+ssl / stratum2+tcp, a host, a port 1–65535, ≤ 255 chars),
      ``worker`` (≤ 120 chars, no blanks or control characters), ``password`` optional (kept when given).
    * SET_FAN: ``percent``, an integer 0–100, or ``"auto"`` (the miner's own fan control; never below a floor).
    * POWER_MODE: ``mode``, low | normal | high.
    * CURTAIL: exactly one of ``kw`` (> 0) or ``percent`` (0 < p ≤ 100, of the targets' power), ``start`` and
      ``end`` (ISO-8601 with a zone, stored as UTC ``…Z``; end after start, at most 7 days apart; end after
      ``now`` when ``now`` is given), ``mode`` soft | hard (default soft).
    * MINER_RESTART, HASHING_DISABLE, HASHING_ENABLE: no parameters.

    Unknown or missing keys and bad values raise ``RiskInputError`` naming the field."""
    kind = canonical_type(command_type)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise RiskInputError("invalid_type", "parameters must be an object", "params")
    required, optional = _ALLOWED[kind]
    for key in params:
        if key not in required and key not in optional:
            name = key if isinstance(key, str) and len(key) <= 40 else _short(key)
            allowed = ", ".join(sorted(required | optional)) or "none"
            raise RiskInputError("unexpected_field", f"{kind} takes no parameter {name} (allowed: {allowed})", name)
    for key in sorted(required):
        if key not in params:
            raise RiskInputError("required", f"{kind} needs {key}", key)

    if kind == POOL_SET:
        worker = _string(params, "worker", MAX_WORKER_CHARS)
        if not worker or _has_blank_or_control(worker):
            raise RiskInputError("invalid_worker", "must be 1–120 characters without blanks or controls", "worker")
        clean = {"url": _pool_url(params), "worker": worker}
        if "password" in params and params["password"] is not None:
            password = _string(params, "password", MAX_PASSWORD_CHARS)
            if any(not ch.isprintable() for ch in password):
                raise RiskInputError("invalid_password", "must not contain control characters", "password")
            clean["password"] = password
        return clean

    if kind == SET_FAN:
        percent = params["percent"]
        if isinstance(percent, str) and percent.strip().lower() == FAN_AUTO:
            return {"percent": FAN_AUTO}  # the miner's own fan control (what a rollback restores)
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise RiskInputError("invalid_type", 'must be a whole number of percent (0–100) or "auto"', "percent")
        if not 0 <= percent <= 100:
            raise RiskInputError("out_of_range", "must be from 0 to 100 %", "percent")
        return {"percent": percent}

    if kind == POWER_MODE:
        mode = params["mode"]
        if not isinstance(mode, str) or mode.strip().lower() not in POWER_MODES:
            raise RiskInputError("invalid_choice", f"must be one of {', '.join(POWER_MODES)}", "mode")
        return {"mode": mode.strip().lower()}

    if kind == CURTAIL:
        return _curtail_params(params, now)

    return {}


def _curtail_params(params: Mapping, now: datetime | None) -> dict:
    has_kw = params.get("kw") is not None
    has_percent = params.get("percent") is not None
    if has_kw == has_percent:
        raise RiskInputError("exactly_one", "give exactly one of kw or percent", "kw" if has_kw else "percent")
    clean: dict[str, Any] = {}
    if has_kw:
        kw = _number(params["kw"], "kw")
        if not Decimal(0) < kw <= MAX_CURTAIL_KW:
            raise RiskInputError("out_of_range", f"must be above 0 and at most {MAX_CURTAIL_KW} kW", "kw")
        clean["kw"] = _plain_number(kw.quantize(Decimal("0.001"), ROUND_HALF_UP))
    else:
        percent = _number(params["percent"], "percent")
        if not Decimal(0) < percent <= 100:
            raise RiskInputError("out_of_range", "must be above 0 and at most 100 %", "percent")
        clean["percent"] = _plain_number(percent.quantize(Decimal("0.01"), ROUND_HALF_UP))
    start = _datetime_utc(params, "start")
    end = _datetime_utc(params, "end")
    if end <= start:
        raise RiskInputError("end_before_start", "the window must end after it starts", "end")
    if end - start > MAX_CURTAIL_WINDOW:
        raise RiskInputError("window_too_long", "a curtailment window lasts at most 7 days", "end")
    if now is not None and end <= now:
        raise RiskInputError("window_in_past", "the window has already ended", "end")
    mode = params.get("mode", "soft")
    if not isinstance(mode, str) or mode.strip().lower() not in CURTAIL_MODES:
        raise RiskInputError("invalid_choice", f"must be one of {', '.join(CURTAIL_MODES)}", "mode")
    clean.update(start=_iso_z(start), end=_iso_z(end), mode=mode.strip().lower())
    return clean


# ---------------------------------------------------------------------------------------------------
# Score

W_ACTION = Decimal("0.30")
W_TARGETS = Decimal("0.25")
W_POWER = Decimal("0.20")
W_CONFIDENCE = Decimal("0.25")
# Share of the distance left to 1 that each adjustment may take.
W_REVENUE_SHARE = Decimal("0.20")
W_HISTORY_SHARE = Decimal("0.20")
# Unknown history counts as a 10 % failure rate: a first command of its type at a site deserves a little care.
UNKNOWN_HISTORY_FAILURE = Decimal("0.10")
# A failure rate of 50 % or worse is the whole history adjustment.
HISTORY_FULL_FAILURE = Decimal("0.50")
PROPOSERS = ("user", "ai", "system")
_Q = Decimal("0.0001")
_ZERO, _ONE = Decimal(0), Decimal(1)

# (upper bound, normalised value): the first bound the figure is at or below picks the value.
TARGET_BUCKETS = ((1, "0.05"), (5, "0.15"), (20, "0.30"), (100, "0.50"), (500, "0.75"), (None, "1.00"))
# kW: one ASIC draws about 3.5 kW; 1 MW is about 300 miners.
POWER_BUCKETS = ((0, "0.00"), (10, "0.05"), (50, "0.15"), (200, "0.30"), (1000, "0.50"), (5000, "0.75"), (None, "1.00"))
# USD/day at the current hashprice: a 200 TH/s miner earns about 10 USD/day.
REVENUE_BUCKETS = ((0, "0.00"), (50, "0.10"), (500, "0.25"), (5000, "0.50"), (50000, "0.75"), (None, "1.00"))


def _bucket(value: Decimal, buckets: Sequence[tuple[int | None, str]]) -> Decimal:
    for bound, normalised in buckets:
        if bound is None or value <= bound:
            return Decimal(normalised)
    raise AssertionError("the last bucket is open")  # pragma: no cover


def _bucket_words(value: Decimal, buckets: Sequence[tuple[int | None, str]], unit: str) -> str:
    previous = None
    for bound, _ in buckets:
        if bound is None or value <= bound:
            if bound is None:
                return f"above {previous:,} {unit}"
            if previous is None:
                return f"at most {bound:,} {unit}"
            return f"{previous:,}–{bound:,} {unit}"
        previous = bound
    return ""  # pragma: no cover


@dataclass(frozen=True)
class RiskInput:
    """What the engine needs to know about a proposed command (the caller gathers it).

    ``power_kw`` is the targets' total nominal power; ``revenue_usd_per_day`` is the targets' TH/s × the
    current hashprice (the revenue at stake); ``success_rate`` is the share of this type's past commands
    at this site that completed (None when there are none); ``policy`` maps a command type (or ``"*"``)
    to the lowest tier the site accepts for it; ``params`` are the validated parameters (CURTAIL's kW or
    percent and mode change its impact and base tier)."""

    command_type: str
    target_count: int
    power_kw: Decimal | float | int
    proposer: str = "user"
    ai_confidence: Decimal | float | None = None
    revenue_usd_per_day: Decimal | float | int = 0
    success_rate: Decimal | float | None = None
    policy: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BreakdownItem:
    factor: str
    raw: Any  # the figure as given (count, kW, USD/day, confidence, rate), JSON-ready
    normalised: Decimal  # 0–1
    weight: Decimal
    contribution: Decimal
    words: str

    def as_dict(self) -> dict:
        return {
            "factor": self.factor,
            "raw": self.raw,
            "normalised": str(self.normalised),
            "weight": str(self.weight),
            "contribution": str(self.contribution),
            "words": self.words,
        }


@dataclass(frozen=True)
class RiskAssessment:
    """The engine's answer. ``score`` is the sum of the breakdown's contributions, exactly.

    ``approvals_required``: LOW 0, MEDIUM 1, HIGH 2 distinct approvers, CRITICAL 2 distinct approvers who are
    owners or admins (``owner_admin_only``). ``auto_eligible`` is True only for LOW (auto-approval rules may
    then apply). Decimals become strings in ``as_dict`` so a stored breakdown still sums exactly."""

    command_type: str
    score: Decimal
    tier: str
    score_tier: str
    base_tier: str
    policy_tier: str | None
    approvals_required: int
    owner_admin_only: bool
    auto_eligible: bool
    breakdown: tuple[BreakdownItem, ...]
    tier_reasons: tuple[str, ...]
    formula: str = FORMULA

    def as_dict(self) -> dict:
        return {
            "command_type": self.command_type,
            "score": str(self.score),
            "tier": self.tier,
            "score_tier": self.score_tier,
            "base_tier": self.base_tier,
            "policy_tier": self.policy_tier,
            "approvals_required": self.approvals_required,
            "owner_admin_only": self.owner_admin_only,
            "auto_eligible": self.auto_eligible,
            "breakdown": [item.as_dict() for item in self.breakdown],
            "tier_reasons": list(self.tier_reasons),
            "formula": self.formula,
        }


APPROVALS = {LOW: (0, False), MEDIUM: (1, False), HIGH: (2, False), CRITICAL: (2, True)}


def _unit_interval(value: Any, where: str) -> Decimal:
    number = _number(value, where)
    if not _ZERO <= number <= _ONE:
        raise RiskInputError("out_of_range", "must be from 0 to 1", where)
    return number


def _policy_tier(policy: Mapping[str, str] | None, command_type: str) -> str | None:
    """The policy's tier for this type (the stricter of its own entry and ``"*"``); every key is checked."""
    if not policy:
        return None
    if not isinstance(policy, Mapping):
        raise RiskInputError("invalid_policy", "the approval policy maps command types to tiers", "policy")
    found = []
    for key, value in policy.items():
        kind = "*" if key == "*" else canonical_type(key)
        tier = _tier(value, f"policy.{kind}")
        if kind in ("*", command_type):
            found.append(tier)
    return _max_tier(*found) if found else None


def _impact_kw(command_type: str, power_kw: Decimal, params: Mapping | None) -> tuple[Decimal, str]:
    if command_type == CURTAIL and params:
        if params.get("kw") is not None:
            kw = min(power_kw, _number(params["kw"], "params.kw"))
            return kw, f"{kw:,} kW curtailed (of {power_kw:,} kW)"
        if params.get("percent") is not None:
            kw = power_kw * _number(params["percent"], "params.percent") / 100
            return kw, f"{kw:,} kW curtailed ({params['percent']} % of {power_kw:,} kW)"
    return power_kw, f"{power_kw:,} kW nominal"


def score(data: RiskInput) -> RiskAssessment:
    """Score a proposed command; see the module docstring for the formula and ``FORMULA`` for the one-liner."""
    kind = canonical_type(data.command_type)
    if isinstance(data.target_count, bool) or not isinstance(data.target_count, int):
        raise RiskInputError("invalid_type", "must be a whole number", "target_count")
    if not 1 <= data.target_count <= MAX_FIGURE:
        raise RiskInputError("out_of_range", "a command has at least one target", "target_count")
    power_kw = _number(data.power_kw, "power_kw")
    if power_kw < 0:
        raise RiskInputError("out_of_range", "must not be negative", "power_kw")
    revenue = _number(data.revenue_usd_per_day, "revenue_usd_per_day")
    if revenue < 0:
        raise RiskInputError("out_of_range", "must not be negative", "revenue_usd_per_day")
    proposer = data.proposer.strip().lower() if isinstance(data.proposer, str) else data.proposer
    if proposer not in PROPOSERS:
        raise RiskInputError("invalid_choice", f"must be one of {', '.join(PROPOSERS)}", "proposer")
    confidence = None
    if proposer == "ai":
        if data.ai_confidence is None:
            raise RiskInputError("required", "an AI proposal carries its confidence (0–1)", "ai_confidence")
        confidence = _unit_interval(data.ai_confidence, "ai_confidence")
    success = None if data.success_rate is None else _unit_interval(data.success_rate, "success_rate")
    type_risk = _type_risk(kind, data.params)

    items: list[BreakdownItem] = []

    def add(factor, raw, normalised, weight, words, rounding=ROUND_HALF_UP):
        contribution = (weight * normalised).quantize(_Q, rounding)
        items.append(BreakdownItem(factor, raw, normalised.quantize(_Q), weight, contribution, words))
        return contribution

    add("action", kind, type_risk.weight, W_ACTION, type_risk.words)
    count = Decimal(data.target_count)
    add(
        "targets",
        data.target_count,
        _bucket(count, TARGET_BUCKETS),
        W_TARGETS,
        f"{data.target_count:,} target(s): bucket {_bucket_words(count, TARGET_BUCKETS, 'targets')}".replace(
            "at most 1 targets", "a single target"
        ),
    )
    impact_kw, impact_words = _impact_kw(kind, power_kw, data.params)
    add(
        "power",
        _plain_number(impact_kw),
        _bucket(impact_kw, POWER_BUCKETS),
        W_POWER,
        f"{impact_words}: bucket {_bucket_words(impact_kw, POWER_BUCKETS, 'kW')}",
    )
    if confidence is not None:
        add(
            "confidence",
            _plain_number(confidence),
            (_ONE - confidence).quantize(_Q, ROUND_HALF_UP),
            W_CONFIDENCE,
            f"AI proposal at {confidence * 100:.0f} % confidence: risk is 1 − confidence",
        )
    else:
        add("confidence", None, _ZERO, Decimal("0.00"), f"proposed by a {proposer}: no model uncertainty, weight 0")
    core = sum((item.contribution for item in items), _ZERO)

    revenue_weight = (W_REVENUE_SHARE * (_ONE - core)).quantize(_Q, ROUND_DOWN)
    revenue_words = _bucket_words(revenue, REVENUE_BUCKETS, "USD/day")
    running = core + add(
        "revenue",
        _plain_number(revenue),
        _bucket(revenue, REVENUE_BUCKETS),
        revenue_weight,
        f"{revenue:,} USD/day at stake (bucket {revenue_words}); up to 20 % of the way left to 1",
        ROUND_DOWN,
    )

    history_weight = (W_HISTORY_SHARE * (_ONE - running)).quantize(_Q, ROUND_DOWN)
    if success is None:
        failure = UNKNOWN_HISTORY_FAILURE
        history_words = "no history of this type at this site: counted as a 10 % failure rate"
    else:
        failure = _ONE - success
        history_words = f"{success * 100:.0f} % of past commands of this type here succeeded"
    add(
        "history",
        None if success is None else _plain_number(success),
        min(_ONE, failure / HISTORY_FULL_FAILURE).quantize(_Q, ROUND_HALF_UP),
        history_weight,
        history_words + "; up to 20 % of the way left to 1",
        ROUND_DOWN,
    )

    total = sum((item.contribution for item in items), _ZERO)
    score_tier = tier_for_score(total)
    policy_tier = _policy_tier(data.policy, kind)
    tier = _max_tier(score_tier, type_risk.base_tier, policy_tier or LOW)
    reasons = [f"score {total} → {score_tier}"]
    if _TIER_RANK[type_risk.base_tier] > _TIER_RANK[score_tier]:
        reasons.append(f"{kind} is at least {type_risk.base_tier}")
    if policy_tier and _TIER_RANK[policy_tier] > _TIER_RANK[_max_tier(score_tier, type_risk.base_tier)]:
        reasons.append(f"site policy: {kind} at least {policy_tier}")
    elif policy_tier:
        reasons.append(f"site policy ({policy_tier}) is not stricter: ignored")
    approvals, owner_admin_only = APPROVALS[tier]
    return RiskAssessment(
        command_type=kind,
        score=total,
        tier=tier,
        score_tier=score_tier,
        base_tier=type_risk.base_tier,
        policy_tier=policy_tier,
        approvals_required=approvals,
        owner_admin_only=owner_admin_only,
        auto_eligible=tier == LOW,
        breakdown=tuple(items),
        tier_reasons=tuple(reasons),
    )


# ---------------------------------------------------------------------------------------------------
# Auto-approval


@dataclass(frozen=True)
class TimeWindow:
    """Local wall-clock times; ``start`` > ``end`` crosses midnight (22:00–06:00). ``end`` is excluded."""

    start: time
    end: time

    def __post_init__(self):
        if self.start == self.end:
            raise RiskInputError("invalid_window", "a window's start and end differ", "windows")

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class AutoApproveRule:
    """One auto-approval rule of a site. ``None`` means "no limit"; an empty ``windows`` means any time.

    ``min_confidence`` applies to AI proposals (a person's or system rule's proposal has no confidence)."""

    name: str = ""
    action_types: frozenset[str] | None = None
    max_targets: int | None = None
    max_kw: Decimal | float | int | None = None
    min_confidence: Decimal | float | None = None
    windows: tuple[TimeWindow, ...] = ()
    tz: str = "UTC"


def _rule_refusal(rule: AutoApproveRule, command: RiskInput, kind: str, now: datetime) -> str | None:
    if rule.action_types is not None and kind not in {canonical_type(name) for name in rule.action_types}:
        return f"{kind} is not among the rule's action types"
    if rule.max_targets is not None and command.target_count > rule.max_targets:
        return f"{command.target_count} targets is more than the rule's {rule.max_targets}"
    if rule.max_kw is not None and _number(command.power_kw, "power_kw") > _number(rule.max_kw, "max_kw"):
        return f"{command.power_kw} kW is more than the rule's {rule.max_kw} kW"
    if (
        rule.min_confidence is not None
        and str(command.proposer).lower() == "ai"
        and (
            command.ai_confidence is None
            or _number(command.ai_confidence, "ai_confidence") < _number(rule.min_confidence, "min_confidence")
        )
    ):
        return f"AI confidence {command.ai_confidence} is below the rule's {rule.min_confidence}"
    if rule.windows:
        try:
            zone = ZoneInfo(rule.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise RiskInputError("invalid_timezone", f"unknown time zone {_short(rule.tz)}", "tz") from None
        local = now.astimezone(zone)
        if not any(window.contains(local.time().replace(tzinfo=None)) for window in rule.windows):
            return f"{local:%H:%M} {rule.tz} is outside the rule's windows"
    return None


def auto_approve(
    assessment: RiskAssessment,
    rules: AutoApproveRule | Iterable[AutoApproveRule] | None,
    now: datetime,
    command: RiskInput,
) -> tuple[bool, str]:
    """Whether a site's rules approve this command without a person, and why (or why not).

    Only a LOW assessment can be auto-approved; MEDIUM and above never are, whatever the rules say. The
    first rule that allows the command wins. ``now`` must be time-zone aware (UTC from the caller)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise RiskInputError("invalid_datetime", "now must be time-zone aware", "now")
    if assessment.tier != LOW:
        return False, f"tier {assessment.tier}: auto-approval applies only to LOW"
    kind = canonical_type(command.command_type)
    if kind != assessment.command_type:
        raise RiskInputError("mismatch", "the assessment is for another command type", "command_type")
    if rules is None:
        rules = ()
    elif isinstance(rules, AutoApproveRule):
        rules = (rules,)
    refusals = []
    for rule in rules:
        why_not = _rule_refusal(rule, command, kind, now)
        if why_not is None:
            return True, f"auto-approved by rule {rule.name or '(unnamed)'}"
        refusals.append(f"{rule.name or '(unnamed)'}: {why_not}")
    if not refusals:
        return False, "the site has no auto-approval rule"
    return False, "no rule allows it — " + "; ".join(refusals)


# ---------------------------------------------------------------------------------------------------
# Safety guards and the curtailment plan


@dataclass(frozen=True)
class TargetState:
    """What telemetry says about one target now. kW are current draw (``power_kw``) and nameplate
    (``nominal_power_kw``); ``soft_min_power_kw`` is the lowest soft power target the miner accepts
    (default: half its nameplate, else half its current draw when the nameplate is unknown: firmware refuses
    targets far below the nameplate, so a miner already throttled must not be planned at half of that)."""

    miner_id: Any
    chip_temp_c: float | None = None
    chip_temp_limit_c: float | None = None  # None: the site's limit
    safety_shutdown_open: bool = False
    power_kw: Decimal | float | None = None
    nominal_power_kw: Decimal | float | None = None
    supports_power_target: bool = False
    efficiency_j_per_th: Decimal | float | None = None
    soft_min_power_kw: Decimal | float | None = None


@dataclass(frozen=True)
class SiteLimits:
    fan_floor_pct: int = 30
    chip_temp_limit_c: float = 85.0
    contracted_min_kw: Decimal | float | None = None  # the site must keep drawing at least this much
    current_site_kw: Decimal | float | None = None


@dataclass(frozen=True)
class CommandSpec:
    """A command as the safety guards and rollback see it: its type and validated parameters."""

    command_type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    miner_id: Any = None

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "miner_id": self.miner_id}


SOFT_MIN_FRACTION = Decimal("0.5")
_KW = Decimal("0.001")


def _kw(target: TargetState) -> Decimal:
    value = target.power_kw if target.power_kw is not None else target.nominal_power_kw
    return _ZERO if value is None else max(_ZERO, _number(value, "power_kw")).quantize(_KW, ROUND_HALF_UP)


def curtail_kw(params: Mapping, targets: Sequence[TargetState]) -> Decimal:
    """The kW a CURTAIL asks to save: its ``kw``, or its ``percent`` of the targets' draw (current, else nominal)."""
    if params.get("kw") is not None:
        return _number(params["kw"], "kw")
    return sum((_kw(t) for t in targets), _ZERO) * _number(params.get("percent", 0), "percent") / 100


_curtailed_kw = curtail_kw


def safety_check(
    command: CommandSpec | RiskInput, targets_state: Iterable[TargetState], site_limits: SiteLimits | None = None
) -> list[Refusal]:
    """Reasons to refuse this command whatever its approvals (an empty list: safe to run).

    * SET_FAN below the site's floor (default 30 %) on a target whose chip is above its limit (default
      85 °C), or whose temperature is unknown (no telemetry: refused, fail closed);
    * HASHING_ENABLE or MINER_RESTART (which resumes hashing) on a miner with an open safety shutdown;
    * CURTAIL or HASHING_DISABLE (a curtailment by another name) that would take the site below its
      contracted minimum power, or when that minimum is set and the site's current draw is unknown.

    ``command.params`` must already be validated (``validate_params``)."""
    limits = site_limits or SiteLimits()
    kind = canonical_type(command.command_type)
    params = command.params or {}
    targets = list(targets_state)
    refusals: list[Refusal] = []
    percent = params.get("percent", 100)
    # "auto": the miner's firmware drives its fans from its own temperatures; never a floor breach.
    if kind == SET_FAN and percent != FAN_AUTO and percent < limits.fan_floor_pct:
        for target in targets:
            limit = target.chip_temp_limit_c if target.chip_temp_limit_c is not None else limits.chip_temp_limit_c
            if target.chip_temp_c is None:
                refusals.append(
                    Refusal(
                        "fan_floor_temp_unknown",
                        f"fan below {limits.fan_floor_pct} % with no chip temperature reading",
                        target.miner_id,
                    )
                )
            elif target.chip_temp_c > limit:
                refusals.append(
                    Refusal(
                        "fan_floor_hot",
                        f"fan below {limits.fan_floor_pct} % while the chip is at {target.chip_temp_c} °C "
                        f"(limit {limit} °C)",
                        target.miner_id,
                    )
                )
    if kind in (HASHING_ENABLE, MINER_RESTART):
        refusals.extend(
            Refusal("safety_shutdown_open", "the miner has an open safety shutdown", target.miner_id)
            for target in targets
            if target.safety_shutdown_open
        )
    if kind in (CURTAIL, HASHING_DISABLE) and limits.contracted_min_kw is not None:
        minimum = _number(limits.contracted_min_kw, "contracted_min_kw")
        if limits.current_site_kw is None:
            refusals.append(
                Refusal("site_power_unknown", "the site's current power is unknown; its contracted minimum is set")
            )
        else:
            current = _number(limits.current_site_kw, "current_site_kw")
            removed = _curtailed_kw(params, targets) if kind == CURTAIL else sum((_kw(t) for t in targets), _ZERO)
            after = current - removed
            if after < minimum:
                refusals.append(
                    Refusal(
                        "below_contracted_minimum",
                        f"the site would draw {after.quantize(_KW):,} kW, below its contracted minimum of "
                        f"{minimum:,} kW",
                    )
                )
    return refusals


@dataclass(frozen=True)
class CurtailAction:
    miner_id: Any
    action: str  # "power_target" (soft) or "stop" (hard)
    power_kw_before: Decimal
    power_kw_after: Decimal
    saved_kw: Decimal

    def as_dict(self) -> dict:
        return {
            "miner_id": self.miner_id,
            "action": self.action,
            "power_kw_before": str(self.power_kw_before),
            "power_kw_after": str(self.power_kw_after),
            "saved_kw": str(self.saved_kw),
        }


@dataclass(frozen=True)
class CurtailPlan:
    requested_kw: Decimal
    planned_kw: Decimal
    shortfall_kw: Decimal  # > 0 when even stopping every target does not save enough
    actions: tuple[CurtailAction, ...]

    def as_dict(self) -> dict:
        return {
            "requested_kw": str(self.requested_kw),
            "planned_kw": str(self.planned_kw),
            "shortfall_kw": str(self.shortfall_kw),
            "actions": [action.as_dict() for action in self.actions],
        }


def _least_efficient_first(target: TargetState):
    # Unknown efficiency goes last: only what is known to be wasteful goes first. Ties: by miner id.
    if target.efficiency_j_per_th is None:
        return (1, _ZERO, str(target.miner_id))
    return (0, -_number(target.efficiency_j_per_th, "efficiency_j_per_th"), str(target.miner_id))


def curtail_plan(targets: Iterable[TargetState], kw: Decimal | float | int, mode: str = "soft") -> CurtailPlan:
    """Per-target actions that save ``kw``: soft power targets first, hard stops only for what is left.

    Soft mode: the miners that support a power target are throttled, least efficient (highest J/TH) first,
    down to their soft minimum (the last one only as far as needed); if that is not enough, the miners
    without a power target are stopped, least efficient first, then the throttled ones. Hard mode stops
    miners only, least efficient first. A stop may save more than asked (a miner cannot half-stop);
    ``shortfall_kw`` says what even stopping everything leaves unsaved."""
    requested = _number(kw, "kw")
    if requested <= 0:
        raise RiskInputError("out_of_range", "must be above 0", "kw")
    if mode not in CURTAIL_MODES:
        raise RiskInputError("invalid_choice", f"must be one of {', '.join(CURTAIL_MODES)}", "mode")
    ordered = sorted((t for t in targets if _kw(t) > 0), key=_least_efficient_first)
    after = {id(t): _kw(t) for t in ordered}
    remaining = requested

    if mode == "soft":
        for target in ordered:
            if remaining <= 0:
                break
            if not target.supports_power_target:
                continue
            floor = (
                _number(target.soft_min_power_kw, "soft_min_power_kw")
                if target.soft_min_power_kw is not None
                else _number(target.nominal_power_kw, "nominal_power_kw") * SOFT_MIN_FRACTION
                if target.nominal_power_kw is not None
                else _kw(target) * SOFT_MIN_FRACTION
            ).quantize(_KW, ROUND_HALF_UP)
            room = max(_ZERO, _kw(target) - floor)
            cut = min(room, remaining)
            after[id(target)] = _kw(target) - cut
            remaining -= cut

    if remaining > 0:
        throttled_last = sorted(ordered, key=lambda t: after[id(t)] != _kw(t))  # stable: keeps efficiency order
        for target in throttled_last:
            if remaining <= 0:
                break
            remaining -= after[id(target)]
            after[id(target)] = _ZERO

    actions = tuple(
        CurtailAction(
            miner_id=t.miner_id,
            action="stop" if after[id(t)] == 0 else "power_target",
            power_kw_before=_kw(t),
            power_kw_after=after[id(t)],
            saved_kw=_kw(t) - after[id(t)],
        )
        for t in ordered
        if after[id(t)] != _kw(t)
    )
    planned = sum((a.saved_kw for a in actions), _ZERO)
    return CurtailPlan(requested, planned, max(_ZERO, requested - planned), actions)


# ---------------------------------------------------------------------------------------------------
# Rollback


def _previous(before_state: Mapping, key: str) -> Any:
    value = before_state.get(key) if isinstance(before_state, Mapping) else None
    if value is None:
        raise RiskInputError("no_previous_state", f"nothing was recorded for {key} before execution", key)
    return value


def inverse(command_type: Any, params: Mapping | None, before_state: Mapping | None) -> tuple[str, dict]:
    """The command that undoes ``command_type`` with ``params``, from one target's recorded state before it ran.

    ``before_state`` keys: ``pool_url``, ``pool_worker`` (and ``pool_password`` if recorded) for POOL_SET,
    ``fan_percent`` (0–100 or ``"auto"``) for SET_FAN, ``power_mode`` for POWER_MODE. HASHING_DISABLE ↔
    HASHING_ENABLE need nothing. MINER_RESTART cannot be undone and CURTAIL ends with its window (cancel it
    instead): both raise ``RiskInputError('no_inverse')``. The returned parameters are validated."""
    kind = canonical_type(command_type)
    before = before_state or {}
    if kind == HASHING_DISABLE:
        return HASHING_ENABLE, {}
    if kind == HASHING_ENABLE:
        return HASHING_DISABLE, {}
    if kind == POOL_SET:
        previous = {"url": _previous(before, "pool_url"), "worker": _previous(before, "pool_worker")}
        if before.get("pool_password") is not None:
            previous["password"] = before["pool_password"]
        return POOL_SET, validate_params(POOL_SET, previous)
    if kind == SET_FAN:
        return SET_FAN, validate_params(SET_FAN, {"percent": _previous(before, "fan_percent")})
    if kind == POWER_MODE:
        return POWER_MODE, validate_params(POWER_MODE, {"mode": _previous(before, "power_mode")})
    if kind == MINER_RESTART:
        raise RiskInputError("no_inverse", "a restart cannot be undone", "type")
    raise RiskInputError("no_inverse", "a curtailment ends with its window; cancel it to end it early", "type")


def inverse_groups(
    command_type: Any, params: Mapping | None, before_by_target: Mapping[Any, Mapping]
) -> list[tuple[str, dict, tuple]]:
    """Rollback of a multi-target command: one inverse per group of targets that had the same state before
    (two miners whose fans were at 60 % and 80 % need two SET_FAN commands). Groups are ordered by their
    first target id; each is ``(type, params, target_ids)``."""
    groups: dict[tuple, list] = {}
    for target_id in sorted(before_by_target, key=str):
        kind, inverse_params = inverse(command_type, params, before_by_target[target_id])
        key = (kind, tuple(sorted(inverse_params.items())))
        groups.setdefault(key, []).append(target_id)
    return [(kind, dict(items), tuple(ids)) for (kind, items), ids in groups.items()]
