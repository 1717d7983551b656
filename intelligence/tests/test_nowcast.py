"""The nowcast on series small enough to check by hand, and the proof it never looks ahead."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from intelligence.algorithms.nowcast import DriftNowcast, NowcastError, last_price, slot_of, slots_of, walk_forward


def test_an_empty_table_is_the_last_price():
    model = DriftNowcast(slots_per_day=4)
    assert model.predict(slot=1, last=42.0, previous=40.0) == 42.0


def test_the_slots_move_is_learnt_clipped_and_shrunk():
    model = DriftNowcast(slots_per_day=4, levels_usd_per_mwh=(100.0,), clip_usd_per_mwh=50.0, shrink=2.0)
    # Twice in slot 2, rising from a low level: +10 and +500 (clipped to +50). Sum 60 over 2 + 2 pseudo-moves of 0.
    model.observe(slot=2, last=30.0, previous=20.0, actual=40.0)
    model.observe(slot=2, last=30.0, previous=20.0, actual=530.0)
    assert model.predict(slot=2, last=35.0, previous=25.0) == pytest.approx(35.0 + 60 / 4)
    # Another cell (falling, or another slot, or the high band) has learnt nothing.
    assert model.predict(slot=2, last=35.0, previous=50.0) == 35.0
    assert model.predict(slot=3, last=35.0, previous=25.0) == 35.0
    assert model.predict(slot=2, last=150.0, previous=120.0) == 150.0


def test_the_window_forgets_the_oldest_move():
    model = DriftNowcast(slots_per_day=1, levels_usd_per_mwh=(), shrink=0.0, window=2)
    for actual in (20.0, 14.0, 16.0):  # moves +10, +4, +6 from 10
        model.observe(slot=0, last=10.0, previous=5.0, actual=actual)
    assert model.predict(slot=0, last=10.0, previous=5.0) == pytest.approx(10.0 + (4 + 6) / 2)


def test_walk_forward_by_hand():
    prices = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    slots = np.zeros(5, dtype=int)
    est = walk_forward(prices, slots, DriftNowcast(slots_per_day=1, levels_usd_per_mwh=(), shrink=0.0))
    # t=2: nothing learnt → last (20). t=3: learnt t=2's move (+10) → 30 + 10. t=4: moves +10, +10 → 40 + 10.
    assert est.tolist() == [10.0, 10.0, 20.0, 40.0, 50.0]
    assert last_price(prices).tolist() == [10.0, 10.0, 20.0, 30.0, 40.0]
    assert last_price(prices, 2).tolist() == [10.0, 10.0, 10.0, 20.0, 30.0]


@pytest.mark.parametrize("horizon", [1, 2])
def test_changing_future_prices_never_changes_a_past_estimate(horizon):
    rng = np.random.default_rng(7)
    prices = 40 + rng.gamma(2.0, 10.0, 600)
    slots = np.arange(600) % 96
    base = walk_forward(prices, slots, DriftNowcast(horizon=horizon))
    for cut in (50, 300, 590):
        changed = prices.copy()
        changed[cut:] = rng.uniform(-50, 5000, 600 - cut)
        again = walk_forward(changed, slots, DriftNowcast(horizon=horizon))
        # The estimate of t uses prices up to t − horizon: everything up to cut + horizon − 1 is unchanged.
        assert np.array_equal(base[: cut + horizon], again[: cut + horizon])
        assert not np.array_equal(base[cut + horizon :], again[cut + horizon :])


def test_slots_follow_the_local_clock():
    assert slot_of(datetime(2024, 1, 1, 6, 15, tzinfo=UTC), tz="America/Chicago") == 1  # 00:15 CST
    assert slot_of(datetime(2024, 7, 1, 5, 0, tzinfo=UTC), tz="America/Chicago") == 0  # 00:00 CDT
    starts = np.array(["2024-01-01T06:15", "2024-07-01T05:00"], dtype="datetime64[m]")
    assert slots_of(starts, tz="America/Chicago").tolist() == [1, 0]


def test_bad_input_is_refused():
    with pytest.raises(NowcastError):
        DriftNowcast(horizon=0)
    with pytest.raises(NowcastError):
        DriftNowcast(levels_usd_per_mwh=(50.0, 10.0))
    model = DriftNowcast(slots_per_day=4)
    with pytest.raises(NowcastError):
        model.predict(slot=4, last=1.0, previous=1.0)
    with pytest.raises(NowcastError):
        model.predict(slot=0, last=float("nan"), previous=1.0)
