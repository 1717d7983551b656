"""Scripted faults: the plan file format, miner selection and the ground-truth file.

Plan (JSON): either a list of faults or {"faults": [...]}. Each fault::

    {"kind": "overheat" | "hashboard_failure" | "fan_failure" | "offline" | "reboot_loop" | "pool_rejects",
     "start": 120            # seconds of simulated time after the simulator starts, or an ISO-8601 time
     "duration": 600,        # seconds; omit for "until the simulator stops"
     "miners": ["SIM-000003", 7],   # serials (strings) and/or 0-based indexes (ints; port = base-port + index)
     "indexes": [0, "10-19"],       # alternatively: indexes and inclusive index ranges
     "serials": ["HI0000042"],      # alternatively: serials
     "random": 5,                   # alternatively or additionally: this many miners drawn with the --seed
     "params": {...}}               # optional, per kind (defaults in PARAMS below)

Kinds and what they do (see miner.py for the physics):
- overheat: chip temperature climbs ``climb_c_per_min`` above normal until it passes the model's limit (95 °C air,
  85 °C hydro/immersion, or ``limit_c``); the simulated firmware then stops hashing (error "overheat_shutdown") and
  the chips cool down. At the end the miner reboots (counters reset) and hashes again.
- hashboard_failure: chain ``chain`` (0-based, default the last) reports 0 GH/s and status Dead: one third of the
  hashrate (and of the power) is lost; its chips cool to near inlet temperature.
- fan_failure: fan ``fan`` (0-based) reads 0 rpm, the others run at 100 %, chips run ``extra_c`` hotter. On units
  without fans (hydro/immersion) it models a coolant-flow fault: same temperature rise, no fan readings.
- offline: the port stops answering (``mode`` "refuse": connections are reset at once; "silent": accepted and never
  answered, so the client times out). At the end the miner boots (counters reset).
- reboot_loop: every ``period_s`` seconds the miner reboots: it does not answer for ``boot_s`` seconds, then answers
  with Elapsed and the counters starting again from zero.
- pool_rejects: the pool rejects ``reject_pct`` % of the shares (normally ~0.3 %).

Ground truth (JSON lines, one per miner and fault)::

    {"fault_id": 3, "serial": "SIM-000004", "index": 3, "port": 14031, "model": "antminer-s21-200t",
     "kind": "overheat", "start": "2026-11-26T01:02:00Z", "end": "2026-11-26T01:12:00Z" | null,
     "wall_start": "...", "wall_end": "...", "params": {...}}

``start``/``end`` are simulated time; ``wall_start``/``wall_end`` are when that happens on the wall clock (they
differ only with --speed other than 1).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import IO

from edge.simulator.clock import iso, parse_iso

PARAMS: dict[str, dict] = {
    "overheat": {"climb_c_per_min": 3.0, "limit_c": None},
    "hashboard_failure": {"chain": -1},
    "fan_failure": {"fan": 0, "extra_c": 14.0},
    "offline": {"mode": "refuse"},
    "reboot_loop": {"period_s": 120.0, "boot_s": 30.0},
    "pool_rejects": {"reject_pct": 25.0},
}
KINDS = tuple(PARAMS)


class PlanError(ValueError):
    """A fault plan that cannot be used; the message says which fault and why."""


@dataclass
class Fault:
    fault_id: int
    kind: str
    start: float  # simulated epoch seconds
    end: float  # math.inf: until the simulator stops
    params: dict = field(default_factory=dict)

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def as_json(self) -> dict:
        return {
            "fault_id": self.fault_id,
            "kind": self.kind,
            "start": iso(self.start),
            "end": None if math.isinf(self.end) else iso(self.end),
            "params": self.params,
        }


def _number(value, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanError(f"{what} must be a number")
    if positive and value <= 0:
        raise PlanError(f"{what} must be positive")
    return float(value)


def _params(kind: str, given, where: str) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise PlanError(f"{where}: params must be an object")
    unknown = set(given) - set(PARAMS[kind])
    if unknown:
        raise PlanError(f"{where}: unknown params {sorted(unknown)} for {kind} (known: {sorted(PARAMS[kind])})")
    params = {**PARAMS[kind], **given}
    if kind == "overheat":
        params["climb_c_per_min"] = _number(params["climb_c_per_min"], f"{where}: climb_c_per_min", positive=True)
        if params["limit_c"] is not None:
            params["limit_c"] = _number(params["limit_c"], f"{where}: limit_c", positive=True)
    elif kind == "hashboard_failure":
        if isinstance(params["chain"], bool) or not isinstance(params["chain"], int):
            raise PlanError(f"{where}: chain must be an integer")
    elif kind == "fan_failure":
        if isinstance(params["fan"], bool) or not isinstance(params["fan"], int) or params["fan"] < 0:
            raise PlanError(f"{where}: fan must be a non-negative integer")
        params["extra_c"] = _number(params["extra_c"], f"{where}: extra_c")
    elif kind == "offline":
        if params["mode"] not in ("refuse", "silent"):
            raise PlanError(f"{where}: mode must be 'refuse' or 'silent'")
    elif kind == "reboot_loop":
        params["period_s"] = _number(params["period_s"], f"{where}: period_s", positive=True)
        params["boot_s"] = _number(params["boot_s"], f"{where}: boot_s")
        if not 0 <= params["boot_s"] < params["period_s"]:
            raise PlanError(f"{where}: boot_s must be >= 0 and shorter than period_s")
    elif kind == "pool_rejects":
        params["reject_pct"] = _number(params["reject_pct"], f"{where}: reject_pct")
        if not 0 <= params["reject_pct"] <= 100:
            raise PlanError(f"{where}: reject_pct must be between 0 and 100")
    return params


def _select(spec: dict, serials: list[str], rng: random.Random, where: str) -> list[int]:
    by_serial = {s: i for i, s in enumerate(serials)}
    chosen: list[int] = []

    def index(value) -> None:
        if isinstance(value, bool):
            raise PlanError(f"{where}: {value!r} is not a miner")
        if isinstance(value, int):
            if not 0 <= value < len(serials):
                raise PlanError(f"{where}: index {value} out of range 0..{len(serials) - 1}")
            chosen.append(value)
        elif isinstance(value, str) and value in by_serial:
            chosen.append(by_serial[value])
        else:
            raise PlanError(f"{where}: unknown miner {value!r}")

    for value in spec.get("miners") or []:
        index(value)
    for value in spec.get("serials") or []:
        if not isinstance(value, str):
            raise PlanError(f"{where}: serials must be strings")
        index(value)
    for value in spec.get("indexes") or []:
        if isinstance(value, str) and "-" in value:
            lo, _, hi = value.partition("-")
            try:
                lo_i, hi_i = int(lo), int(hi)
            except ValueError:
                raise PlanError(f"{where}: bad index range {value!r}") from None
            for i in range(lo_i, hi_i + 1):
                index(i)
        else:
            index(value)
    if spec.get("random") is not None:
        n = spec["random"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= len(serials):
            raise PlanError(f"{where}: random must be an integer 1..{len(serials)}")
        chosen.extend(rng.sample(range(len(serials)), n))
    if not chosen:
        raise PlanError(f"{where}: selects no miner (give miners, serials, indexes or random)")
    return sorted(set(chosen))


def parse_fault(spec, *, fault_id: int, t0: float, serials: list[str], rng: random.Random) -> tuple[Fault, list[int]]:
    """One fault spec → (Fault, miner indexes). ``t0`` is the simulated start (relative starts count from it)."""
    where = f"fault #{fault_id}"
    if not isinstance(spec, dict):
        raise PlanError(f"{where}: must be an object")
    kind = spec.get("kind")
    if kind not in PARAMS:
        raise PlanError(f"{where}: kind must be one of {', '.join(KINDS)}")
    start = spec.get("start", 0)
    if isinstance(start, str):
        try:
            start_t = parse_iso(start)
        except ValueError:
            raise PlanError(f"{where}: start {start!r} is neither seconds nor an ISO-8601 time") from None
    else:
        start_t = t0 + _number(start, f"{where}: start")
    duration = spec.get("duration")
    end_t = math.inf if duration is None else start_t + _number(duration, f"{where}: duration", positive=True)
    fault = Fault(fault_id, kind, start_t, end_t, _params(kind, spec.get("params"), where))
    return fault, _select(spec, serials, rng, where)


def parse_plan(data, *, t0: float, serials: list[str], seed: int = 0) -> list[tuple[Fault, list[int]]]:
    if isinstance(data, dict):
        data = data.get("faults")
    if not isinstance(data, list):
        raise PlanError('a fault plan is a list of faults or {"faults": [...]}')
    rng = random.Random(seed)
    return [parse_fault(spec, fault_id=i + 1, t0=t0, serials=serials, rng=rng) for i, spec in enumerate(data)]


def load_plan(path: str, **kwargs) -> list[tuple[Fault, list[int]]]:
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except ValueError as exc:
            raise PlanError(f"{path}: not JSON ({exc})") from None
    return parse_plan(data, **kwargs)


class GroundTruth:
    """Appends one JSON line per (miner, fault) to a file (or nowhere when path is None)."""

    def __init__(self, path: str | None, to_wall=lambda t: t):
        self._fh: IO[str] | None = open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115
        self._to_wall = to_wall
        self.records: list[dict] = []

    def record(self, fault: Fault, miner) -> dict:
        row = {
            "fault_id": fault.fault_id,
            "serial": miner.serial,
            "index": miner.index,
            "port": miner.port,
            "model": miner.profile.code,
            "kind": fault.kind,
            "start": iso(fault.start),
            "end": None if math.isinf(fault.end) else iso(fault.end),
            "wall_start": iso(self._to_wall(fault.start)),
            "wall_end": None if math.isinf(fault.end) else iso(self._to_wall(fault.end)),
            "params": fault.params,
        }
        self.records.append(row)
        if self._fh:
            self._fh.write(json.dumps(row, sort_keys=True) + "\n")
            self._fh.flush()
        return row

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None
