"""commands.effects: the pure decision, per type verified and not seen, only readings after the acknowledgement
and within the window count, and the command-level summary. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands import effects
from commands.effects import NOT_APPLICABLE, NOT_SEEN, PARTIAL, PENDING, VERIFIED, Reading, Target

ACK = datetime(2026, 11, 26, 3, 0, 0, tzinfo=UTC)
WINDOW = 60.0
S21 = {"nominal_hashrate_ths": 200.0, "nominal_power_w": 3500.0}
HASHING = {"status": "hashing", "hashrate_ths": 201.0, "power_w": 3550.0, "fan_rpm": (4000, 4100, 4000, 4100)}


def at(seconds: float) -> datetime:
    return ACK + timedelta(seconds=seconds)


def target(kind, params=None, **kw) -> Target:
    return Target(command_type=kind, acked_at=ACK, result_ok=True, params=params or {}, **{**S21, **kw})


def reading(seconds, **kw) -> Reading:
    return Reading(ts=at(seconds), **{**HASHING, **kw})


def decide(t, readings, now_s=WINDOW + 1, **kw):
    return effects.decide(t, readings, now=at(now_s), window=WINDOW, **kw)


# Each type: a reading that shows the effect, and one that shows it missing.
CASES = [
    ("HASHING_DISABLE", {}, {}, {"status": "idle", "hashrate_ths": 0.0, "power_w": 105.0}, {}),
    ("HASHING_DISABLE", {}, {}, {"status": "hashing", "hashrate_ths": 0.2}, {}),
    ("HASHING_ENABLE", {}, {}, {}, {"status": "idle", "hashrate_ths": 0.0}),
    ("HASHING_ENABLE", {}, {}, {"hashrate_ths": 150.0}, {"hashrate_ths": 40.0}),  # ramping is not yet real
    ("POOL_SET", {"url": "stratum+tcp://new.example:3333", "worker": "w"}, {},
     {"pool_url": "STRATUM+TCP://new.example:3333/"}, {"pool_url": "stratum+tcp://old.example:3333"}),
    ("SET_FAN", {"percent": 85}, {}, {"fan_pct": 85}, {"fan_pct": 60}),
    ("SET_FAN", {"percent": 85}, {"before": {"edge": {"fan_rpm": [4000, 4100], "fan_percent": 60}}},
     {"fan_rpm": (5600, 5700)}, {"fan_rpm": (4050, 4100)}),  # the miner does not report its duty
    ("SET_FAN", {"percent": 40}, {"before": {"edge": {"fan_rpm": [4000, 4100], "fan_percent": 60}}},
     {"fan_rpm": (3000, 3100)}, {"fan_rpm": (5000, 5100)}),  # down, and a move the wrong way is no proof
    ("POWER_MODE", {"mode": "low"}, {}, {"power_mode": "low"}, {"power_mode": "normal"}),
    ("POWER_MODE", {"mode": "low"}, {"before": {"edge": {"power_w": 3550, "power_mode": "normal"}}},
     {"power_w": 2480.0}, {"power_w": 3500.0}),
    ("POWER_MODE", {"mode": "high"}, {"before": {"power_w": 3550}}, {"power_w": 4300.0}, {"power_w": 3600.0}),
    ("CURTAIL", {"kw": 3, "start": "2026-11-26T02:00:00Z", "end": "2026-11-26T06:00:00Z"},
     {"action": {"action": "stop", "power_w": None}}, {"status": "hashing", "hashrate_ths": 0.0, "power_w": 90.0},
     {"power_w": 3400.0}),
    ("CURTAIL", {"kw": 1, "start": "2026-11-26T02:00:00Z", "end": "2026-11-26T06:00:00Z"},
     {"action": {"action": "power_target", "power_w": 2500}}, {"power_w": 2580.0}, {"power_w": 2800.0}),
    ("CURTAIL", {"kw": 1, "start": "2026-11-26T02:00:00Z", "end": "2026-11-26T06:00:00Z"},
     {"action": {"action": "power_target", "power_w": 2500}}, {"status": "idle", "power_w": 100.0},  # fallback stop
     {"status": "hashing", "power_w": 3500.0}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "params", "extra", "shows", "misses"), CASES)
def test_each_type_is_verified_by_a_reading_that_shows_it_and_not_seen_when_none_does(
    kind, params, extra, shows, misses
):
    t = target(kind, params, **extra)
    outcome = decide(t, [reading(10, **misses), reading(20, **shows)])
    assert outcome.verification == VERIFIED, outcome
    assert outcome.seen_at == at(20) and outcome.detail
    missed = decide(t, [reading(10, **misses), reading(20, **misses)])
    assert missed.verification == NOT_SEEN, missed
    assert missed.detail.startswith(f"not seen within {WINDOW:g} s")
    assert decide(t, [reading(10, **misses)], now_s=30).verification == PENDING  # the window is still open


def test_only_readings_after_the_acknowledgement_and_within_the_window_count():
    t = target("HASHING_DISABLE")
    idle = {"status": "idle", "hashrate_ths": 0.0}
    assert decide(t, [reading(0, **idle), reading(-5, **idle)]).verification == NOT_SEEN  # at or before the ack
    assert decide(t, [reading(WINDOW + 0.5, **idle)], now_s=WINDOW + 5).verification == NOT_SEEN  # after the end
    assert decide(t, [reading(WINDOW, **idle)], now_s=WINDOW + 5).verification == VERIFIED  # the end counts
    assert decide(t, [reading(0.001, **idle)]).verification == VERIFIED


def test_no_telemetry_after_the_ack_is_not_seen_once_the_window_closes_and_pending_before():
    t = target("POOL_SET", {"url": "stratum+tcp://new.example:3333", "worker": "w"})
    assert decide(t, [], now_s=WINDOW - 1).verification == PENDING
    closed = decide(t, [], now_s=WINDOW)
    assert closed.verification == NOT_SEEN and "no telemetry" in closed.detail


def test_an_offline_miner_never_shows_an_effect():
    t = target("HASHING_DISABLE")
    outcome = decide(t, [reading(10, status="offline", hashrate_ths=None, power_w=None)])
    assert outcome.verification == NOT_SEEN and "offline" in outcome.detail


def test_readings_that_cannot_tell_make_it_not_applicable_at_the_end():
    # A pool change on firmware that does not report its active pool: neither seen nor contradicted.
    t = target("POOL_SET", {"url": "stratum+tcp://new.example:3333", "worker": "w"})
    outcome = decide(t, [reading(10), reading(20)])
    assert outcome.verification == NOT_APPLICABLE and "does not report its active pool" in outcome.detail
    # A fan whose direction is unknown ("auto" before) and whose speed did not move: cannot tell.
    fan = target("SET_FAN", {"percent": 70}, before={"edge": {"fan_rpm": [4000], "fan_percent": "auto"}})
    assert decide(fan, [reading(10, fan_rpm=(4050,))]).verification == NOT_APPLICABLE
    assert decide(fan, [reading(10, fan_rpm=(5200,))]).verification == VERIFIED


@pytest.mark.parametrize(
    ("t", "why"),
    [
        (Target("HASHING_DISABLE", ACK, result_ok=False, result_message="unsupported: no API"), "not run"),
        (Target("HASHING_DISABLE", None, result_ok=True), "never acknowledged"),
        (Target("SET_FAN", ACK, True, params={"percent": "auto"}), "automatic fan control"),
        (Target("CURTAIL", ACK, True, params={}, action={"action": "none", "power_w": None}), "leaves this miner"),
        (Target("CURTAIL", ACK, True, params={}, action={}), "no curtailment action"),
        (Target("CURTAIL", ACK, True, params={}, action={"action": "power_target", "power_w": None}), "no power"),
    ],
)
def test_failed_and_unshowable_targets_are_not_applicable(t, why):
    outcome = effects.decide(t, [reading(10)], now=at(5), window=WINDOW)
    assert outcome.verification == NOT_APPLICABLE and why in outcome.detail


def test_a_restart_needs_the_miner_down_then_hashing_again_after_the_ack():
    t = target("MINER_RESTART")
    down = reading(10, status="offline", hashrate_ths=None, power_w=None)
    up = reading(30, hashrate_ths=195.0, accepted_shares=3)
    outcome = decide(t, [reading(5, accepted_shares=900), down, up])
    assert outcome.verification == VERIFIED and outcome.seen_at == at(30) and "went down" in outcome.detail
    # Still hashing all along: no restart.
    assert decide(t, [reading(10, accepted_shares=901), reading(20, accepted_shares=950)]).verification == NOT_SEEN
    # Down but not back before the window closed.
    assert decide(t, [down]).verification == NOT_SEEN
    assert decide(t, [down], now_s=20).verification == PENDING
    # A reboot between two polls: the share counters started again (compared with the last reading before the ack).
    baseline = reading(-5, accepted_shares=900)
    quick = decide(t, [reading(20, accepted_shares=2)], baseline=baseline)
    assert quick.verification == VERIFIED and "share counters" in quick.detail
    # A down before the acknowledgement is not this restart.
    assert decide(t, [reading(-3, status="offline"), reading(20, accepted_shares=950)]).verification == NOT_SEEN


def test_a_curtailment_reading_after_its_window_ended_does_not_count():
    params = {"kw": 3, "start": "2026-11-26T02:00:00Z", "end": at(15).isoformat().replace("+00:00", "Z")}
    t = target("CURTAIL", params, action={"action": "stop", "power_w": None})
    assert effects.deadline(t, WINDOW) == at(15)
    assert decide(t, [reading(20, status="idle", power_w=100.0)]).verification == NOT_SEEN


def test_thresholds_fall_back_to_the_recorded_state_without_a_nominal():
    t = Target("HASHING_ENABLE", ACK, True, before={"hashrate_ghs": 100_000.0})  # 100 TH/s before
    assert decide(t, [reading(10, hashrate_ths=60.0)]).verification == VERIFIED
    assert decide(t, [reading(10, hashrate_ths=40.0)]).verification == NOT_SEEN
    unknown = Target("CURTAIL", ACK, True, params={}, action={"action": "stop", "power_w": None})
    assert decide(unknown, [reading(10, power_w=240.0)]).verification == VERIFIED
    assert decide(unknown, [reading(10, power_w=400.0)]).verification == NOT_SEEN


def test_bad_recorded_values_do_not_break_the_decision():
    t = target("SET_FAN", {"percent": 80}, before={"edge": {"fan_rpm": ["x", None, True], "fan_percent": "?"}})
    assert decide(t, [reading(10)]).verification == NOT_APPLICABLE
    t = target("POWER_MODE", {"mode": "normal"}, before={"edge": "not a dict", "power_w": "oops"})
    assert decide(t, [reading(10)]).verification == NOT_APPLICABLE


@pytest.mark.parametrize(
    ("values", "summary"),
    [
        ([], NOT_APPLICABLE),
        (["n/a", "n/a"], NOT_APPLICABLE),
        (["verified", "n/a"], VERIFIED),
        (["verified", "pending"], PENDING),
        (["verified", ""], PENDING),
        (["not_seen", "n/a"], NOT_SEEN),
        (["verified", "not_seen", "n/a"], PARTIAL),
    ],
)
def test_the_command_sums_its_targets(values, summary):
    assert effects.summarise(values) == summary


def test_windows_follow_the_poll_interval_above_a_floor_per_type():
    assert effects.window_s("HASHING_DISABLE") == 180  # 3 × the collector's default 60 s
    assert effects.window_s("HASHING_DISABLE", 5) == 60  # the floor
    assert effects.window_s("MINER_RESTART", 5) == 300
    assert effects.window_s("MINER_RESTART", 120) == 720
    assert effects.window_s("SET_FAN", 0) == effects.window_s("SET_FAN", None) == 180  # nonsense → default
    assert effects.window_s("SET_FAN", 30, {"SET_FAN": 45}) == 45
    assert effects.window_s("SET_FAN", 1e9) == effects.MAX_WINDOW_S
