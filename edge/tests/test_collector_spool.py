"""The spool (order, survival across a restart, quarantine bound, meta) and safety-event detection."""

from __future__ import annotations

import pytest

from edge.collector.safety import detect, event_id
from edge.collector.sample import Sample
from edge.collector.spool import SAFETY, TELEMETRY, Spool


@pytest.fixture
def spool(tmp_path):
    s = Spool(tmp_path / "spool.db")
    yield s
    s.close()


def _batch(spool, ts, n=1, kind=TELEMETRY):
    key = "samples" if kind == TELEMETRY else "events"
    return spool.add(kind, {key: [{"miner": f"M{i}", "ts": ts} for i in range(n)]}, items=n, oldest_ts=ts)[0]


def test_batches_come_back_oldest_first_per_kind(spool):
    ids = [_batch(spool, f"2026-11-26T01:0{m}:00Z") for m in range(3)]
    event = _batch(spool, "2026-11-26T01:01:30Z", kind=SAFETY)
    assert spool.next_batch(TELEMETRY).id == ids[0]
    assert spool.next_batch(SAFETY).id == event
    spool.delete(ids[0])
    assert [b.id for b in spool.pending(TELEMETRY)] == ids[1:]
    assert spool.next_batch(TELEMETRY).payload()["samples"][0]["ts"] == "2026-11-26T01:01:00Z"


def test_a_failed_attempt_keeps_the_batch_first_in_line(spool):
    first = _batch(spool, "2026-11-26T01:00:00Z")
    _batch(spool, "2026-11-26T01:01:00Z")
    spool.record_failure(first, "503")
    batch = spool.next_batch(TELEMETRY)
    assert batch.id == first and batch.attempts == 1


def test_the_spool_survives_a_restart(tmp_path):
    first = Spool(tmp_path / "spool.db")
    _batch(first, "2026-11-26T01:00:00Z", n=3)
    first.set_meta(last_push_ok_at="2026-11-26T00:59:00Z")
    first.close()
    again = Spool(tmp_path / "spool.db")
    try:
        assert again.depth()["pending_samples"] == 3
        assert again.get_meta("last_push_ok_at") == "2026-11-26T00:59:00Z"
    finally:
        again.close()


def test_the_quarantine_is_bounded_oldest_out(tmp_path):
    spool = Spool(tmp_path / "spool.db", max_quarantined=2)
    try:
        ids = [_batch(spool, f"2026-11-26T01:0{m}:00Z", n=2) for m in range(3)]
        for batch_id in ids:
            spool.quarantine(batch_id, "400 bad")
        assert [q["id"] for q in spool.quarantined()] == ids[1:]
        assert spool.get_meta("dropped_quarantined_samples") == 2
        assert spool.depth()["pending_batches"] == 0 and spool.depth()["quarantined_batches"] == 2
    finally:
        spool.close()


def test_safety_events_are_never_dropped_by_the_size_limit(tmp_path):
    spool = Spool(tmp_path / "spool.db", max_samples=1)
    try:
        _batch(spool, "2026-11-26T01:00:00Z", kind=SAFETY, n=5)
        _batch(spool, "2026-11-26T01:00:00Z", n=1)
        _batch(spool, "2026-11-26T01:01:00Z", n=1)
        depth = spool.depth()
        assert depth["pending_safety_events"] == 5 and depth["pending_samples"] == 1
    finally:
        spool.close()


# --- safety detection --------------------------------------------------------------------------------------------


def s(miner, ts, status="hashing", errors=(), **kw):
    return Sample(miner=miner, ts=ts, status=status, errors=list(errors), **kw)


def test_a_condition_is_reported_when_it_starts_and_once(spool):
    t1, t2, t3 = "2026-11-26T01:00:00Z", "2026-11-26T01:01:00Z", "2026-11-26T01:02:00Z"
    events, opened, closed = detect([s("A", t1, errors=["fan_failure"]), s("B", t1)], {}, None)
    assert [(e.miner, e.kind, e.ts) for e in events] == [("A", "fan_failure", t1)]
    assert events[0].event_id == event_id("A", "fan_failure", t1)
    spool.set_conditions(opened, closed)

    events, opened, closed = detect([s("A", t2, errors=["fan_failure"])], spool.open_conditions(), None)
    assert events == [] and opened == [] and closed == []

    # unreachable: cannot tell, the condition stays open
    events, opened, closed = detect([Sample.offline("A", t3)], spool.open_conditions(), None)
    assert events == [] and closed == []

    # healthy again: closed; failing again later is a new event
    _, _, closed = detect([s("A", t3)], spool.open_conditions(), None)
    assert closed == [("A", "fan_failure")]
    spool.set_conditions([], closed)
    events, _, _ = detect([s("A", "2026-11-26T01:05:00Z", errors=["fan_failure"])], spool.open_conditions(), None)
    assert len(events) == 1 and events[0].event_id != event_id("A", "fan_failure", t1)


def test_kinds_from_error_codes():
    t = "2026-11-26T01:00:00Z"
    events, _, _ = detect(
        [
            s("HOT", t, status="error", errors=["fw:overheat_shutdown", "overheat"], temp_chip_max_c=97.0),
            s("WARM", t, status="hashing", errors=["overheat"]),  # hot but still hashing: an alert, not a shutdown
            s("CHAIN", t, errors=["fw:chain_2_dead", "chain_failure"]),
        ],
        {},
        None,
    )
    assert sorted((e.miner, e.kind) for e in events) == [("CHAIN", "hashboard_failure"), ("HOT", "overheat_shutdown")]
    hot = next(e for e in events if e.miner == "HOT")
    assert hot.details["temp_chip_max_c"] == 97.0 and hot.details["firmware_errors"] == ["fw:overheat_shutdown"]


def test_half_the_site_going_dark_at_once_is_a_power_loss():
    t = "2026-11-26T01:00:00Z"
    before = {"A", "B", "C", "D"}
    samples = [Sample.offline("A", t), Sample.offline("B", t), Sample.offline("C", t), s("D", t)]
    events, opened, _ = detect(samples, {}, before)
    assert [(e.miner, e.kind) for e in events] == [(None, "power_loss")]
    assert events[0].details["miners_lost"] == 3 and events[0].details["serials"] == ["A", "B", "C"]
    # one miner dropping out is not a power loss
    events, _, _ = detect([Sample.offline("A", t), s("B", t), s("C", t), s("D", t)], {}, before)
    assert events == []
    # back: the site condition closes
    conditions = {(m, k): (t, e) for m, k, t, e in opened}
    _, _, closed = detect([s(m, t) for m in "ABCD"], conditions, set())
    assert closed == [("", "power_loss")]
