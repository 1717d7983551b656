"""Simulated time. Everything in the simulator (daily cycle, faults, counters) reads ``clock.now()`` — epoch seconds
of *simulated* time — so tests drive it with a ManualClock and never sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class RealClock:
    """Simulated time starts at the wall time of creation (or ``start``) and runs ``speed`` times faster."""

    def __init__(self, speed: float = 1.0, start: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.start = time.time() if start is None else start
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._mono0) * self.speed

    def to_wall(self, sim_t: float) -> float:
        """The wall-clock epoch at which simulated time ``sim_t`` happens (for the ground truth)."""
        return self._wall0 + (sim_t - self.start) / self.speed


class ManualClock:
    """A clock that moves only when told to (tests)."""

    speed = 1.0

    def __init__(self, start: float = 1_795_600_800.0):  # 2026-11-26T07:20:00Z
        self.start = start
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        self._t += seconds
        return self._t

    def set(self, t: float) -> None:
        self._t = t

    def to_wall(self, sim_t: float) -> float:
        return sim_t


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(value: str) -> float:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
