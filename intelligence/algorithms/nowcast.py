"""The coming real-time price interval, estimated from what is published before it starts (issue 9, 4b).

The real-time responder compares one price with each group's breakeven (``optimizer.respond_realtime``); the
price it compares is the estimate of the interval about to run. The plain rule uses the last published price.
:class:`DriftNowcast` adds the typical move from that price to the next one in the same slot of the local day
(quarter-hour of the day, whether the price was rising, and its level band), learnt online from the past only:
``observe`` is fed an interval's price once it is published, ``predict`` never sees anything later than the
prices it is given, so a walk-forward run cannot look ahead (``walk_forward``).

Why this and not a bigger model: on the shipped ERCOT 2024 → 2025-11 prices, gradient-boosted trees on lags,
day-ahead prices and time of day reach 96 % of perfect foresight in-sample but 84 % out-of-sample (fit 2024,
test 2025) against 87.5 % for the last price; an AR on the real-time − day-ahead spread scores 84 %. Spikes start
without warning at this granularity; what carries over from one year to the next is the shape of the day
(evening ramps, the quarter-hours after the hour turns), which is what this table holds. Figures:
``bench/curtailment_eval.py`` and docs/BENCHMARKS.md.

The move is clipped (``clip_usd_per_mwh``) so that a single $5,000 scarcity interval does not decide a slot for a
year, and shrunk towards zero (``shrink``: pseudo-observations of no move) so a slot seen a few times barely
departs from the last price.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DEFAULT_LEVELS_USD_PER_MWH = (30.0, 60.0, 100.0, 200.0)


class NowcastError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def slot_of(start_utc: datetime, *, step_minutes: int = 15, tz: str = "UTC") -> int:
    """The interval's place in the local day: 0 … 24·60/step − 1 (the site's clock, DST included)."""
    if start_utc.tzinfo is None:
        start_utc = start_utc.replace(tzinfo=UTC)
    local = start_utc.astimezone(ZoneInfo(tz))
    return (local.hour * 60 + local.minute) // step_minutes


def slots_of(starts_utc: np.ndarray, *, step_minutes: int = 15, tz: str = "UTC") -> np.ndarray:
    """``slot_of`` for an array of ``datetime64`` interval starts (UTC)."""
    local = pd.DatetimeIndex(starts_utc.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return ((local.hour * 60 + local.minute) // step_minutes).to_numpy(dtype=np.int64)


@dataclass
class DriftNowcast:
    """Last published price + the learnt typical move for the slot ``horizon`` intervals ahead.

    ``horizon`` is how many intervals separate the last published price from the one estimated: 1 when the
    price of t−1 is known as t starts, 2 when only t−2 is. ``window`` keeps the last so many observations
    (None: all of them), so a site's table follows a market that changes."""

    slots_per_day: int = 96
    horizon: int = 1
    levels_usd_per_mwh: tuple[float, ...] = DEFAULT_LEVELS_USD_PER_MWH
    clip_usd_per_mwh: float = 100.0
    shrink: float = 20.0
    window: int | None = None
    _sums: np.ndarray = field(init=False, repr=False)
    _counts: np.ndarray = field(init=False, repr=False)
    _recent: deque = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.slots_per_day, int) or self.slots_per_day <= 0:
            raise NowcastError("out_of_range", "slots_per_day must be a positive integer")
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise NowcastError("out_of_range", "horizon must be an integer ≥ 1")
        if not (math.isfinite(self.clip_usd_per_mwh) and self.clip_usd_per_mwh >= 0):
            raise NowcastError("out_of_range", "clip_usd_per_mwh must be a number ≥ 0")
        if not (math.isfinite(self.shrink) and self.shrink >= 0):
            raise NowcastError("out_of_range", "shrink must be a number ≥ 0")
        if list(self.levels_usd_per_mwh) != sorted(self.levels_usd_per_mwh):
            raise NowcastError("out_of_range", "levels_usd_per_mwh must be increasing")
        if self.window is not None and self.window < 1:
            raise NowcastError("out_of_range", "window must be ≥ 1 or None")
        size = self.slots_per_day * 2 * (len(self.levels_usd_per_mwh) + 1)
        self._sums = np.zeros(size)
        self._counts = np.zeros(size)
        self._recent = deque()

    def key(self, slot: int, last: float, previous: float) -> int:
        """The cell of the table: target slot × rising (last > the one before) × level band of ``last``."""
        if not 0 <= slot < self.slots_per_day:
            raise NowcastError("out_of_range", f"slot must be within 0…{self.slots_per_day - 1}")
        band = int(np.searchsorted(self.levels_usd_per_mwh, last, side="right"))
        rising = 1 if last > previous else 0
        return (slot * 2 + rising) * (len(self.levels_usd_per_mwh) + 1) + band

    def drift(self, slot: int, last: float, previous: float) -> float:
        k = self.key(slot, last, previous)
        return float(self._sums[k] / (self._counts[k] + self.shrink)) if self._counts[k] else 0.0

    def predict(self, *, slot: int, last: float, previous: float) -> float:
        """The estimate for the interval in ``slot``, from the last two published prices (USD/MWh)."""
        _check_prices(last, previous)
        return last + self.drift(slot, last, previous)

    def observe(self, *, slot: int, last: float, previous: float, actual: float) -> None:
        """Learn from an interval now published: ``last``/``previous`` are what ``predict`` was given for it."""
        _check_prices(last, previous, actual)
        k = self.key(slot, last, previous)
        move = min(max(actual - last, -self.clip_usd_per_mwh), self.clip_usd_per_mwh)
        self._sums[k] += move
        self._counts[k] += 1
        if self.window is not None:
            self._recent.append((k, move))
            if len(self._recent) > self.window:
                old_k, old_move = self._recent.popleft()
                self._sums[old_k] -= old_move
                self._counts[old_k] -= 1

    def fit(self, prices: Sequence[float], slots: Sequence[int]) -> DriftNowcast:
        """Observe every interval of a past series (consecutive intervals, ``slots[i]`` the slot of ``prices[i]``)."""
        h = self.horizon
        if len(prices) != len(slots):
            raise NowcastError("length_mismatch", "prices and slots must have the same length")
        for t in range(h + 1, len(prices)):
            self.observe(slot=int(slots[t]), last=prices[t - h], previous=prices[t - h - 1], actual=prices[t])
        return self


def _check_prices(*values: float) -> None:
    for v in values:
        if not math.isfinite(v):
            raise NowcastError("not_finite", "a price is not a number")


def walk_forward(prices: np.ndarray, slots: np.ndarray, model: DriftNowcast) -> np.ndarray:
    """The estimate of every interval t from prices up to t − horizon only (then t's price is learnt).

    The first ``horizon + 1`` intervals have no two published prices before them: their estimate is the first
    price (the plain rule's start as well)."""
    h = model.horizon
    prices = np.asarray(prices, dtype=float)
    out = np.full(len(prices), prices[0] if len(prices) else np.nan)
    pending: deque = deque()  # (t, slot, last, previous) predicted, price of t not yet published
    for t in range(h + 1, len(prices)):
        # The price of t − h is published now: every interval up to t − h can be learnt from.
        while pending and pending[0][0] <= t - h:
            s, slot, last, previous = pending.popleft()
            model.observe(slot=slot, last=last, previous=previous, actual=float(prices[s]))
        last, previous = float(prices[t - h]), float(prices[t - h - 1])
        out[t] = model.predict(slot=int(slots[t]), last=last, previous=previous)
        pending.append((t, int(slots[t]), last, previous))
    return out


def last_price(prices: np.ndarray, horizon: int = 1) -> np.ndarray:
    """The plain rule: the estimate of t is the price of t − horizon (the first price before that)."""
    prices = np.asarray(prices, dtype=float)
    return np.concatenate([np.full(min(horizon, len(prices)), prices[0] if len(prices) else np.nan), prices[:-horizon]])
