"""Safety events from consecutive polls: a condition is reported once, when it starts.

Kinds (the server's SafetyKind): overheat_shutdown (the miner stopped hashing because of heat),
fan_failure, hashboard_failure (a chain dead while others hash), power_loss (at least half of the miners that
answered the previous poll, and at least two, stopped answering at once: site-level, no miner).

A condition stays open while the miner keeps showing it; an unreachable miner's conditions stay as they were
(we cannot tell). The open conditions live in the spool, so a restart does not report them again, and the
event id is derived from (miner, kind, start time): a re-sent event is a duplicate the server ignores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from edge.collector.sample import CHAIN_FAILURE, FAN_FAILURE, OVERHEAT, UNREACHABLE, Sample

SITE = ""  # the "miner" of site-level conditions in the spool's conditions table
POWER_LOSS_SHARE = 0.5
POWER_LOSS_MIN_MINERS = 2


@dataclass(frozen=True)
class SafetyEvent:
    event_id: str
    miner: str | None
    kind: str
    ts: str
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "event_id": self.event_id,
            "miner": self.miner,
            "kind": self.kind,
            "ts": self.ts,
            "details": self.details,
        }


def event_id(miner: str, kind: str, since: str) -> str:
    return hashlib.sha256(f"{miner}|{kind}|{since}".encode()).hexdigest()[:32]


def miner_conditions(sample: Sample) -> dict[str, dict]:
    """{kind: details} for what this (reachable) sample shows."""
    found: dict[str, dict] = {}
    fw = [e for e in sample.errors if e.startswith("fw:")]
    if OVERHEAT in sample.errors and sample.status != "hashing":
        found["overheat_shutdown"] = {"temp_chip_max_c": sample.temp_chip_max_c, "firmware_errors": fw}
    if FAN_FAILURE in sample.errors:
        found["fan_failure"] = {"fan_rpm": sample.fan_rpm, "firmware_errors": fw}
    if CHAIN_FAILURE in sample.errors:
        found["hashboard_failure"] = {"hashrate_ths": sample.hashrate_ths, "firmware_errors": fw}
    return found


def detect(
    samples: list[Sample],
    open_conditions: dict[tuple[str, str], tuple[str, str]],
    previously_online: set[str] | None,
) -> tuple[list[SafetyEvent], list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    """Events for conditions that start with these samples, and the rows to open and close in the spool."""
    events: list[SafetyEvent] = []
    opened: list[tuple[str, str, str, str]] = []
    closed: list[tuple[str, str]] = []
    for sample in samples:
        if sample.status == "offline" and UNREACHABLE in sample.errors:
            continue
        now = miner_conditions(sample)
        for kind, details in now.items():
            if (sample.miner, kind) not in open_conditions:
                eid = event_id(sample.miner, kind, sample.ts)
                events.append(SafetyEvent(eid, sample.miner, kind, sample.ts, details))
                opened.append((sample.miner, kind, sample.ts, eid))
        closed += [(m, k) for (m, k) in open_conditions if m == sample.miner and k not in now]

    if samples:
        ts = samples[0].ts
        offline = {s.miner for s in samples if s.status == "offline" and UNREACHABLE in s.errors}
        is_open = (SITE, "power_loss") in open_conditions
        if previously_online:
            lost = previously_online & offline
            if (
                not is_open
                and len(lost) >= POWER_LOSS_MIN_MINERS
                and len(lost) >= POWER_LOSS_SHARE * len(previously_online)
            ):
                eid = event_id(SITE, "power_loss", ts)
                details = {
                    "miners_lost": len(lost),
                    "miners_before": len(previously_online),
                    "serials": sorted(lost)[:50],
                }
                events.append(SafetyEvent(eid, None, "power_loss", ts, details))
                opened.append((SITE, "power_loss", ts, eid))
        if is_open and len(offline) < POWER_LOSS_SHARE * len(samples):
            closed.append((SITE, "power_loss"))
    return events, opened, closed
