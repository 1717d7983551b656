"""The pure rule evaluator: each kind, its boundaries, durations in 5-minute windows, and the three
outcomes (holds, clear, pending = no finding). No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry import rules as R
from telemetry.rules import MinerState, Rule, Window

NOW = datetime(2026, 11, 26, 12, 7, 30, tzinfo=UTC)  # current window 12:05; complete ones end at 12:05
S21 = {"nominal_hashrate_ths": 200.0, "nominal_power_w": 3500.0}


def miner(miner_id=1, **kw) -> MinerState:
    values = {
        **S21, "last_seen": NOW - timedelta(seconds=20), "status": "hashing", "hashrate_ghs": 200_000.0,
        "temp_chip_max_c": 70.0, "power_w": 3500.0,
    }  # fmt: skip
    values.update(kw)
    return MinerState(miner_id=miner_id, **values)


def windows(miner_id=1, count=3, **metrics) -> list[Window]:
    """``count`` complete windows before the current one (the newest ends at 12:05)."""
    end = R.floor_window(NOW)
    base = {"avg_hashrate_ths": 200.0, "avg_temp_chip_max_c": 70.0, "avg_power_w": 3500.0}
    base.update(metrics)
    return [Window(miner_id, end - (i + 1) * R.WINDOW, **base) for i in range(count)]


def outcome(findings, miner_id=1, kind=None):
    """'holds', 'clear' or None (pending) for one miner and kind."""
    found = [f for f in findings if f.miner_id == miner_id and (kind is None or f.kind == kind)]
    assert len(found) <= 1, found
    if not found:
        return None
    return "holds" if found[0].holds else "clear"


def run(rule, miners, wins=(), phase="ingest", **kw):
    return R.evaluate([rule], miners if isinstance(miners, list) else [miners], wins, now=NOW, phase=phase, **kw)


# --- chip temperature -------------------------------------------------------------------------------


@pytest.mark.parametrize(("temp", "expected"), [(90.1, "holds"), (90.0, "clear"), (60.0, "clear")])
def test_chip_temperature_immediate_is_strictly_above(temp, expected):
    findings = run(Rule(R.CHIP_TEMP_ABOVE, 90.0, 0, "critical"), miner(temp_chip_max_c=temp))
    assert outcome(findings) == expected


def test_chip_temperature_finding_says_it_in_words_with_evidence():
    (finding,) = run(Rule(R.CHIP_TEMP_ABOVE, 90.0, 0, "critical"), miner(temp_chip_max_c=93.26))
    assert (finding.kind, finding.severity) == (R.CHIP_TEMP_ABOVE, "critical")
    assert finding.message == "Chip temperature 93.3 °C is above 90.0 °C."
    assert finding.evidence == {
        "temp_chip_max_c": 93.26, "unit": "°C", "threshold": 90.0, "duration_minutes": 0,
        "msg": {"id": "chip_temp_above", "params": {"value": "93.3", "threshold": "90.0"}},
    }  # fmt: skip


def test_chip_temperature_for_ten_minutes_needs_two_hot_windows_and_hot_now():
    rule = Rule(R.CHIP_TEMP_ABOVE, 85.0, 10, "warning")
    hot = miner(temp_chip_max_c=88.0)
    assert outcome(run(rule, hot, windows(count=2, avg_temp_chip_max_c=87.0))) == "holds"
    # One of the two windows was below: too short yet (pending, nothing to raise or resolve).
    mixed = [*windows(count=1, avg_temp_chip_max_c=87.0), windows(count=2, avg_temp_chip_max_c=80.0)[1]]
    assert outcome(run(rule, hot, mixed)) is None
    # A window missing (rollup behind, or the miner silent then): cannot prove it, so pending.
    assert outcome(run(rule, hot, windows(count=1, avg_temp_chip_max_c=87.0))) is None
    # Cool now clears, whatever the windows say.
    assert outcome(run(rule, miner(temp_chip_max_c=84.0), windows(count=2, avg_temp_chip_max_c=87.0))) == "clear"
    (finding,) = run(rule, hot, windows(count=2, avg_temp_chip_max_c=87.0))
    assert finding.message == "Chip temperature 88.0 °C is above 85.0 °C for 10 min."


def test_a_duration_not_a_multiple_of_five_rounds_up_to_whole_windows():
    assert [Rule(R.CHIP_TEMP_ABOVE, 85.0, n).windows for n in (0, 1, 5, 6, 15, 1440)] == [0, 1, 1, 2, 3, 288]
    rule = Rule(R.CHIP_TEMP_ABOVE, 85.0, 7)
    hot = miner(temp_chip_max_c=88.0)
    assert outcome(run(rule, hot, windows(count=1, avg_temp_chip_max_c=87.0))) is None
    assert outcome(run(rule, hot, windows(count=2, avg_temp_chip_max_c=87.0))) == "holds"


def test_windows_older_than_the_duration_or_of_other_miners_are_ignored():
    rule = Rule(R.CHIP_TEMP_ABOVE, 85.0, 5)
    old = Window(1, R.floor_window(NOW) - 2 * R.WINDOW, avg_temp_chip_max_c=99.0)
    current = Window(1, R.floor_window(NOW), avg_temp_chip_max_c=99.0)  # not complete: not a window yet
    other = windows(miner_id=2, count=1, avg_temp_chip_max_c=99.0)
    assert outcome(run(rule, miner(temp_chip_max_c=95.0), [old, current, *other])) is None


def test_a_stale_live_row_is_not_judged_on_its_old_temperature():
    stale = miner(temp_chip_max_c=99.0, last_seen=NOW - timedelta(seconds=301))
    assert run(Rule(R.CHIP_TEMP_ABOVE, 90.0), stale) == []
    assert run(Rule(R.CHIP_TEMP_ABOVE, 90.0), miner(temp_chip_max_c=None)) == []


# --- hashrate below % of nominal --------------------------------------------------------------------


@pytest.mark.parametrize(("ghs", "expected"), [(159_990.0, "holds"), (160_000.0, "clear"), (210_000.0, "clear")])
def test_hashrate_below_percent_of_the_models_nominal(ghs, expected):
    assert outcome(run(Rule(R.HASHRATE_BELOW_PCT, 80.0), miner(hashrate_ghs=ghs))) == expected


def test_hashrate_for_fifteen_minutes_uses_three_windows_of_history():
    rule = Rule(R.HASHRATE_BELOW_PCT, 80.0, 15)
    low = miner(hashrate_ghs=133_000.0)  # a hashboard lost: two thirds of 200 TH/s
    assert outcome(run(rule, low, windows(count=3, avg_hashrate_ths=133.0))) == "holds"
    assert outcome(run(rule, low, windows(count=2, avg_hashrate_ths=133.0))) is None
    recovered_once = windows(count=3, avg_hashrate_ths=133.0)
    recovered_once[1] = Window(1, recovered_once[1].bucket, avg_hashrate_ths=195.0)
    assert outcome(run(rule, low, recovered_once)) is None
    (finding,) = run(rule, low, windows(count=3, avg_hashrate_ths=133.0))
    assert finding.message == (
        "Hashrate 133.0 TH/s (5-min average) is 66 % of the nominal 200.0 TH/s, below 80 % for 15 min."
    )
    assert finding.evidence["pct_of_nominal"] == 66.5
    assert finding.evidence["nominal_ths"] == 200.0


@pytest.mark.parametrize("status", ["idle", "offline"])
def test_hashrate_is_not_judged_while_the_miner_is_idle_or_offline(status):
    assert run(Rule(R.HASHRATE_BELOW_PCT, 80.0), miner(hashrate_ghs=0.0, status=status)) == []


def test_hashrate_is_judged_while_the_miner_reports_errors():
    assert outcome(run(Rule(R.HASHRATE_BELOW_PCT, 80.0), miner(hashrate_ghs=50_000.0, status="error"))) == "holds"


def test_a_model_without_nominal_figures_is_not_judged():
    findings = run(Rule(R.HASHRATE_BELOW_PCT, 80.0), miner(hashrate_ghs=1.0, nominal_hashrate_ths=None))
    assert findings == []


# --- power deviation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watts", "expected"), [(4_200.1, "holds"), (4_200.0, "clear"), (2_799.9, "holds"), (2_800.0, "clear")]
)
def test_power_deviation_either_way_is_strictly_above_the_percent(watts, expected):
    assert outcome(run(Rule(R.POWER_DEVIATION_PCT, 20.0), miner(power_w=watts))) == expected


def test_power_deviation_for_a_duration_reads_the_window_averages():
    rule = Rule(R.POWER_DEVIATION_PCT, 20.0, 15)
    high = miner(power_w=4_400.0)
    assert outcome(run(rule, high, windows(count=3, avg_power_w=4_300.0))) == "holds"
    assert outcome(run(rule, high, windows(count=3, avg_power_w=3_600.0))) is None
    (finding,) = run(rule, high, windows(count=3, avg_power_w=4_300.0))
    assert finding.message == "Power 4,400 W is 26 % off the nominal 3,500 W, more than 20 % for 15 min."


# --- reject rate ------------------------------------------------------------------------------------


def test_reject_rate_over_the_windows_of_the_duration():
    rule = Rule(R.REJECT_RATE_ABOVE_PCT, 2.0, 15)
    # 3 windows × (97 accepted, 3 rejected) = 3 % over 300 shares.
    bad = windows(count=3, accepted_shares=97, rejected_shares=3)
    assert outcome(run(rule, miner(), bad, phase="rollup")) == "holds"
    (finding,) = run(rule, miner(), bad, phase="rollup")
    assert finding.message == "Reject rate 3.00 % (9 of 300 shares) is above 2.00 % over 15 min."
    assert finding.evidence["reject_rate_pct"] == 3.0
    # Exactly 2 % clears; fewer than 20 shares says nothing; a missing window cannot raise.
    assert outcome(run(rule, miner(), windows(count=3, accepted_shares=98, rejected_shares=2), phase="rollup")) == (
        "clear"
    )
    assert run(rule, miner(), windows(count=3, accepted_shares=5, rejected_shares=1), phase="rollup") == []
    assert run(rule, miner(), windows(count=2, accepted_shares=97, rejected_shares=3), phase="rollup") == []


def test_reject_rate_is_a_rollup_rule_and_the_others_are_not_there_twice():
    rules = [Rule(R.REJECT_RATE_ABOVE_PCT, 2.0, 5)]
    bad = windows(count=1, accepted_shares=90, rejected_shares=10)
    assert R.evaluate(rules, [miner()], bad, now=NOW, phase="ingest") == []
    assert outcome(R.evaluate(rules, [miner()], bad, now=NOW, phase="rollup")) == "holds"


# --- offline ----------------------------------------------------------------------------------------


def test_offline_when_silent_for_the_minutes():
    rule = Rule(R.OFFLINE_FOR, 0.0, 10)
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(minutes=10)), phase="offline")) == "holds"
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(minutes=9)), phase="offline")) is None
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(minutes=4)), phase="offline")) == "clear"
    (finding,) = run(rule, miner(last_seen=datetime(2026, 11, 26, 11, 50, tzinfo=UTC)), phase="offline")
    assert finding.message == "No sample from the miner for 18 min (last seen 2026-11-26 11:50 UTC)."


def test_offline_when_reporting_offline_since_long_enough():
    rule = Rule(R.OFFLINE_FOR, 0.0, 10)
    reporting = {"status": "offline", "last_seen": NOW - timedelta(seconds=30)}
    assert outcome(run(rule, miner(**reporting, offline_since=NOW - timedelta(minutes=11)))) == "holds"
    assert outcome(run(rule, miner(**reporting, offline_since=NOW - timedelta(minutes=3)))) is None
    (finding,) = run(rule, miner(**reporting, offline_since=NOW - timedelta(minutes=11)))
    assert finding.message == "The miner has reported offline for 11 min."


def test_offline_is_measured_against_the_peers_so_a_silent_collector_flags_nobody():
    rule = Rule(R.OFFLINE_FOR, 0.0, 10)
    peers = NOW - timedelta(minutes=30)  # the zone's freshest sample: the collector stopped 30 min ago
    quiet_with_the_rest = miner(last_seen=NOW - timedelta(minutes=31), peers_last_seen=peers)
    quiet_before_the_rest = miner(2, last_seen=NOW - timedelta(minutes=45), peers_last_seen=peers)
    findings = run(rule, [quiet_with_the_rest, quiet_before_the_rest], phase="offline")
    assert outcome(findings, 1) == "clear"
    assert outcome(findings, 2) == "holds"


def test_offline_with_zero_minutes_needs_the_live_offline_threshold_of_silence():
    rule = Rule(R.OFFLINE_FOR, 0.0, 0)
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(seconds=299)), phase="offline")) == "clear"
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(seconds=300)), phase="offline")) == "holds"
    assert outcome(run(rule, miner(last_seen=NOW - timedelta(seconds=100)), phase="offline", stale_after_s=60)) == (
        "holds"
    )


def test_a_miner_never_seen_is_not_judged():
    assert run(Rule(R.OFFLINE_FOR, 0.0, 10), miner(last_seen=None), phase="offline") == []


# --- across kinds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("asset_status", ["maintenance", "retired"])
def test_miners_in_maintenance_or_retired_are_never_alerted_and_their_alerts_clear(asset_status):
    rules = R.default_rules()
    hot = miner(temp_chip_max_c=120.0, hashrate_ghs=0.0, power_w=10.0, miner_status=asset_status)
    findings = R.evaluate(rules, [hot], now=NOW, phase="ingest")
    assert {f.kind for f in findings} == set(R.PHASE_KINDS["ingest"])
    assert all(not f.holds and f.reason == "not_monitored" for f in findings)


def test_disabled_rules_and_other_phases_kinds_give_nothing():
    hot = miner(temp_chip_max_c=120.0)
    assert R.evaluate([Rule(R.CHIP_TEMP_ABOVE, 90.0, enabled=False)], [hot], now=NOW, phase="ingest") == []
    assert R.evaluate([Rule(R.CHIP_TEMP_ABOVE, 90.0)], [hot], now=NOW, phase="offline") == []


def test_a_batch_is_judged_per_miner():
    miners = [miner(i, temp_chip_max_c=80.0 + i) for i in range(1, 21)]
    findings = run(Rule(R.CHIP_TEMP_ABOVE, 90.0), miners)
    assert {f.miner_id for f in findings if f.holds} == set(range(11, 21))
    assert {f.miner_id for f in findings if not f.holds} == set(range(1, 11))


def test_the_defaults_are_the_five_kinds_within_their_own_ranges():
    defaults = R.default_rules()
    assert [r.kind for r in defaults] == list(R.KINDS)
    for r in defaults:
        assert (
            R.validate_rule(r.kind, threshold=r.threshold, duration_minutes=r.duration_minutes, severity=r.severity)
            == {}
        )
    by_kind = {r.kind: r for r in defaults}
    assert (by_kind[R.HASHRATE_BELOW_PCT].threshold, by_kind[R.HASHRATE_BELOW_PCT].duration_minutes) == (80.0, 15)
    assert by_kind[R.OFFLINE_FOR].duration_minutes == 10


@pytest.mark.parametrize(
    ("kind", "values", "errors"),
    [
        (R.CHIP_TEMP_ABOVE, {"threshold": 39.9}, {"threshold": "threshold_out_of_range"}),
        (R.CHIP_TEMP_ABOVE, {"threshold": 130.0}, {}),
        (R.CHIP_TEMP_ABOVE, {"threshold": float("nan")}, {"threshold": "threshold_out_of_range"}),
        (R.CHIP_TEMP_ABOVE, {"threshold": True}, {"threshold": "threshold_out_of_range"}),
        (R.HASHRATE_BELOW_PCT, {"threshold": 0.5}, {"threshold": "threshold_out_of_range"}),
        (R.HASHRATE_BELOW_PCT, {"threshold": 100}, {}),
        (R.OFFLINE_FOR, {"threshold": 5.0}, {"threshold": "threshold_out_of_range"}),
        (R.REJECT_RATE_ABOVE_PCT, {"threshold": 0.1}, {}),
        (R.POWER_DEVIATION_PCT, {"duration_minutes": 1441}, {"duration_minutes": "duration_out_of_range"}),
        (R.POWER_DEVIATION_PCT, {"duration_minutes": 1440}, {}),
        (R.POWER_DEVIATION_PCT, {"duration_minutes": -1}, {"duration_minutes": "duration_out_of_range"}),
        (R.POWER_DEVIATION_PCT, {"duration_minutes": 1.5}, {"duration_minutes": "duration_out_of_range"}),
        (R.POWER_DEVIATION_PCT, {"severity": "fatal"}, {"severity": "invalid_severity"}),
    ],
)
def test_validation_per_kind(kind, values, errors):
    base = {r.kind: r for r in R.default_rules()}[kind]
    args = {"threshold": base.threshold, "duration_minutes": base.duration_minutes, "severity": base.severity}
    args.update(values)
    assert R.validate_rule(kind, **args) == errors


def test_a_rollup_skips_the_immediate_rules_that_ingest_judges():
    rules = [Rule(R.CHIP_TEMP_ABOVE, 90.0, 0), Rule(R.POWER_DEVIATION_PCT, 20.0, 5), Rule(R.REJECT_RATE_ABOVE_PCT, 2.0)]
    assert [r.kind for r in R.rules_for_phase(rules, "rollup")] == [R.POWER_DEVIATION_PCT, R.REJECT_RATE_ABOVE_PCT]
    assert [r.kind for r in R.rules_for_phase(rules, "ingest")] == [R.CHIP_TEMP_ABOVE, R.POWER_DEVIATION_PCT]
    hot = miner(temp_chip_max_c=99.0)
    assert R.evaluate(rules[:1], [hot], now=NOW, phase="rollup") == []
