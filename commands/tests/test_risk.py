"""The risk engine: pure Python, no database (no django_db marker anywhere in this file)."""

import json
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import risk
from commands.risk import (
    AutoApproveRule,
    CommandSpec,
    RiskInput,
    RiskInputError,
    SiteLimits,
    TargetState,
    TimeWindow,
    auto_approve,
    canonical_type,
    curtail_plan,
    inverse,
    inverse_groups,
    safety_check,
    score,
    tier_for_score,
    validate_params,
)

START = "2026-11-26T02:00:00Z"
END = "2026-11-26T06:00:00Z"


def error(call, *args, **kwargs) -> RiskInputError:
    with pytest.raises(RiskInputError) as caught:
        call(*args, **kwargs)
    return caught.value


def breakdown_sum(assessment) -> D:
    return sum((item.contribution for item in assessment.breakdown), D(0))


# ---------------------------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MINER_RESTART", "MINER_RESTART"),
        ("HASHING_DISABLE", "HASHING_DISABLE"),
        ("HASHING_ENABLE", "HASHING_ENABLE"),
        ("POOL_SET", "POOL_SET"),
        ("SET_FAN", "SET_FAN"),
        ("POWER_MODE", "POWER_MODE"),
        ("CURTAIL", "CURTAIL"),
        ("reboot", "MINER_RESTART"),
        ("stop", "HASHING_DISABLE"),
        ("disable", "HASHING_DISABLE"),
        ("start", "HASHING_ENABLE"),
        ("enable", "HASHING_ENABLE"),
        ("set_pool", "POOL_SET"),
        ("set_fan", "SET_FAN"),
        ("power_mode", "POWER_MODE"),
        (" Reboot ", "MINER_RESTART"),
        ("pool_set", "POOL_SET"),
    ],
)
def test_canonical_type_maps_v11_and_legacy_names(name, expected):
    assert canonical_type(name) == expected


@pytest.mark.parametrize("name", ["format_disk", "", None, 7, "x" * 10_000])
def test_unknown_type_is_a_clear_error_that_does_not_echo_huge_values(name):
    caught = error(canonical_type, name)
    assert caught.code == "unknown_type"
    assert caught.field == "type"
    assert len(caught.message) < 200


@pytest.mark.parametrize(
    ("name", "tier"),
    [
        ("reboot", "MEDIUM"),
        ("stop", "HIGH"),
        ("start", "LOW"),
        ("set_pool", "HIGH"),
        ("set_fan", "LOW"),
        ("power_mode", "MEDIUM"),
        ("CURTAIL", "MEDIUM"),
    ],
)
def test_base_tiers(name, tier):
    assert risk.base_tier(name) == tier


def test_a_hard_curtailment_is_high_like_a_disable():
    assert risk.base_tier("CURTAIL", {"mode": "hard"}) == "HIGH"


# ---------------------------------------------------------------------------------------------- params


@pytest.mark.parametrize("name", ["MINER_RESTART", "reboot", "HASHING_DISABLE", "stop", "HASHING_ENABLE", "start"])
def test_types_without_parameters_take_none_and_refuse_extra_keys(name):
    assert validate_params(name, {}) == {}
    assert validate_params(name, None) == {}
    caught = error(validate_params, name, {"force": True})
    assert (caught.code, caught.field) == ("unexpected_field", "force")


def test_params_must_be_an_object():
    assert error(validate_params, "SET_FAN", [("percent", 50)]).code == "invalid_type"


def test_a_huge_unknown_key_is_not_echoed():
    caught = error(validate_params, "SET_FAN", {"percent": 50, "k" * 5000: 1})
    assert caught.code == "unexpected_field"
    assert len(caught.message) < 200 and len(caught.field) <= 40


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("stratum+tcp://btc.pool.example:3333", "stratum+tcp://btc.pool.example:3333"),
        ("STRATUM+SSL://BTC.Pool.Example:443", "stratum+ssl://btc.pool.example:443"),
        ("stratum+tcp://10.0.0.5:1", "stratum+tcp://10.0.0.5:1"),
        ("stratum+tcp://pool.example:3333/", "stratum+tcp://pool.example:3333"),
        ("stratum+tcp://[2001:db8::1]:65535", "stratum+tcp://[2001:db8::1]:65535"),
        (
            "stratum2+tcp://v2.pool.example:34254/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh",
            "stratum2+tcp://v2.pool.example:34254/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh",
        ),
    ],
)
def test_pool_set_accepts_and_normalises_stratum_urls(url, expected):
    clean = validate_params("set_pool", {"url": url, "worker": "acct.rig01"})
    assert clean == {"url": expected, "worker": "acct.rig01"}


def test_pool_set_keeps_an_optional_password():
    clean = validate_params("POOL_SET", {"url": "stratum+tcp://p.example:3333", "worker": "w", "password": "x"})
    assert clean["password"] == "x"
    assert "password" not in validate_params("POOL_SET", {"url": "stratum+tcp://p.example:3333", "worker": "w"})


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://pool.example:3333", "invalid_scheme"),
        ("https://pool.example:443", "invalid_scheme"),
        ("stratum+udp://pool.example:3333", "invalid_scheme"),
        ("pool.example:3333", "invalid_scheme"),
        ("stratum+tcp://pool.example", "invalid_port"),
        ("stratum+tcp://pool.example:0", "invalid_port"),
        ("stratum+tcp://pool.example:65536", "invalid_port"),
        ("stratum+tcp://pool.example:99999", "invalid_port"),
        ("stratum+tcp://pool.example:abc", "invalid_port"),
        ("stratum+tcp://:3333", "invalid_host"),
        ("stratum+tcp://-bad-.example:3333", "invalid_host"),
        ("stratum+tcp://[fe80::zz]:3333", "invalid_url"),
        ("stratum+tcp://[::1:3333", "invalid_url"),
        ("stratum+tcp://bad_host.example:3333", "invalid_host"),
        ("stratum+tcp://user:pw@pool.example:3333", "invalid_url"),
        ("stratum+tcp://pool.example:3333/path", "invalid_url"),
        ("stratum+tcp://pool.example:3333?x=1", "invalid_url"),
        ("stratum+tcp://pool.example:3333#frag", "invalid_url"),
        ("stratum+tcp://pool .example:3333", "invalid_url"),
        ("stratum+tcp://pool.example:3333\n", "invalid_url"),
        ("stratum+tcp://" + "a" * 250 + ".example:3333", "too_long"),
    ],
)
def test_pool_set_refuses_bad_urls(url, code):
    caught = error(validate_params, "POOL_SET", {"url": url, "worker": "w"})
    assert (caught.code, caught.field) == (code, "url")
    assert "a" * 100 not in caught.message  # a long value is never echoed


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"worker": "w"}, "required", "url"),
        ({"url": "stratum+tcp://p.example:3333"}, "required", "worker"),
        ({"url": "stratum+tcp://p.example:3333", "worker": ""}, "invalid_worker", "worker"),
        ({"url": "stratum+tcp://p.example:3333", "worker": "acct rig"}, "invalid_worker", "worker"),
        ({"url": "stratum+tcp://p.example:3333", "worker": "acct\x00"}, "invalid_worker", "worker"),
        ({"url": "stratum+tcp://p.example:3333", "worker": "w" * 121}, "too_long", "worker"),
        ({"url": "stratum+tcp://p.example:3333", "worker": 12}, "invalid_type", "worker"),
        ({"url": 3333, "worker": "w"}, "invalid_type", "url"),
        ({"url": "stratum+tcp://p.example:3333", "worker": "w", "password": "a\x07"}, "invalid_password", "password"),
        ({"url": "stratum+tcp://p.example:3333", "worker": "w", "priority": 1}, "unexpected_field", "priority"),
    ],
)
def test_pool_set_field_errors(params, code, field):
    caught = error(validate_params, "POOL_SET", params)
    assert (caught.code, caught.field) == (code, field)


def test_worker_of_120_characters_is_accepted():
    assert validate_params("POOL_SET", {"url": "stratum+tcp://p.example:1", "worker": "w" * 120})["worker"] == "w" * 120


@pytest.mark.parametrize("percent", [0, 30, 100])
def test_set_fan_accepts_whole_percent(percent):
    assert validate_params("set_fan", {"percent": percent}) == {"percent": percent}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"percent": 101}, "out_of_range"),
        ({"percent": -1}, "out_of_range"),
        ({"percent": 50.5}, "invalid_type"),
        ({"percent": "50"}, "invalid_type"),
        ({"percent": True}, "invalid_type"),
        ({}, "required"),
        ({"percent": 50, "rpm": 3000}, "unexpected_field"),
    ],
)
def test_set_fan_errors(params, code):
    caught = error(validate_params, "SET_FAN", params)
    assert caught.code == code
    assert caught.field in ("percent", "rpm")


def test_power_mode():
    assert validate_params("power_mode", {"mode": " HIGH "}) == {"mode": "high"}
    for bad in ("turbo", "", 2, None):
        assert (error(validate_params, "POWER_MODE", {"mode": bad}).code, "mode") == ("invalid_choice", "mode")
    assert error(validate_params, "POWER_MODE", {}).code == "required"


def test_curtail_with_kw_normalises_times_to_utc_and_defaults_to_soft():
    clean = validate_params("CURTAIL", {"kw": "250.5", "start": "2026-11-26T10:00:00+08:00", "end": END})
    assert clean == {"kw": 250.5, "start": START, "end": END, "mode": "soft"}
    assert json.loads(json.dumps(clean)) == clean


def test_curtail_with_percent_and_hard_mode():
    clean = validate_params("curtail", {"percent": 40, "start": START, "end": END, "mode": "HARD"})
    assert clean == {"percent": 40, "start": START, "end": END, "mode": "hard"}


def test_curtail_window_of_exactly_seven_days_is_accepted():
    end = (datetime(2026, 11, 26, 2, tzinfo=UTC) + timedelta(days=7)).isoformat()
    assert validate_params("CURTAIL", {"kw": 1, "start": START, "end": end})["end"] == "2026-12-03T02:00:00Z"


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"kw": 10, "percent": 10, "start": START, "end": END}, "exactly_one", "kw"),
        ({"start": START, "end": END}, "exactly_one", "percent"),
        ({"kw": 0, "start": START, "end": END}, "out_of_range", "kw"),
        ({"kw": -5, "start": START, "end": END}, "out_of_range", "kw"),
        ({"kw": "lots", "start": START, "end": END}, "invalid_type", "kw"),
        ({"kw": float("nan"), "start": START, "end": END}, "invalid_type", "kw"),
        ({"kw": True, "start": START, "end": END}, "invalid_type", "kw"),
        ({"percent": 0, "start": START, "end": END}, "out_of_range", "percent"),
        ({"percent": 100.01, "start": START, "end": END}, "out_of_range", "percent"),
        ({"kw": 10, "start": END, "end": START}, "end_before_start", "end"),
        ({"kw": 10, "start": START, "end": START}, "end_before_start", "end"),
        ({"kw": 10, "start": START, "end": "2026-12-03T02:00:01Z"}, "window_too_long", "end"),
        ({"kw": 10, "start": "2026-11-26T02:00:00", "end": END}, "invalid_datetime", "start"),
        ({"kw": 10, "start": START, "end": "tomorrow"}, "invalid_datetime", "end"),
        ({"kw": 10, "start": START, "end": "2" * 500}, "too_long", "end"),
        ({"kw": 10, "end": END}, "required", "start"),
        ({"kw": 10, "start": START, "end": END, "mode": "gentle"}, "invalid_choice", "mode"),
        ({"kw": 10, "start": START, "end": END, "zone": 1}, "unexpected_field", "zone"),
    ],
)
def test_curtail_errors(params, code, field):
    caught = error(validate_params, "CURTAIL", params)
    assert (caught.code, caught.field) == (code, field)


def test_curtail_window_already_over_is_refused_when_now_is_given():
    now = datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert error(validate_params, "CURTAIL", {"kw": 1, "start": START, "end": END}, now=now).code == "window_in_past"


# ---------------------------------------------------------------------------------------------- score


def make(**overrides) -> RiskInput:
    data = {"command_type": "SET_FAN", "target_count": 1, "power_kw": 3.3, "revenue_usd_per_day": 10}
    data.update(overrides)
    return RiskInput(**data)


def test_breakdown_has_every_factor_and_sums_exactly_to_the_score():
    assessment = score(make(proposer="ai", ai_confidence=0.8765, success_rate=0.97))
    assert [item.factor for item in assessment.breakdown] == [
        "action",
        "targets",
        "power",
        "confidence",
        "revenue",
        "history",
    ]
    assert breakdown_sum(assessment) == assessment.score
    stored = json.loads(json.dumps(assessment.as_dict()))
    assert sum(D(item["contribution"]) for item in stored["breakdown"]) == D(stored["score"])


def test_worked_example_a_single_fan_change_by_a_person():
    # core = 0.30·0.15 + 0.25·0.05 + 0.20·0.05 = 0.0675; revenue 10 USD/day → bucket 0.10, weight
    # 0.20·(1 − 0.0675) = 0.1865 → 0.0186; history unknown → 0.20, weight 0.20·(1 − 0.0861) = 0.1827 → 0.0365.
    assessment = score(make())
    assert assessment.score == D("0.1226")
    assert (assessment.tier, assessment.approvals_required, assessment.auto_eligible) == ("LOW", 0, True)
    confidence = assessment.breakdown[3]
    assert (confidence.weight, confidence.contribution) == (D(0), D(0))


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("0", "LOW"),
        ("0.2499", "LOW"),
        ("0.25", "MEDIUM"),
        ("0.4999", "MEDIUM"),
        ("0.5", "HIGH"),
        ("0.7499", "HIGH"),
        ("0.75", "CRITICAL"),
        ("1", "CRITICAL"),
    ],
)
def test_tier_boundaries(value, tier):
    assert tier_for_score(D(value)) == tier
    assert tier_for_score(value) == tier


def test_approvals_per_tier():
    assert risk.APPROVALS == {"LOW": (0, False), "MEDIUM": (1, False), "HIGH": (2, False), "CRITICAL": (2, True)}
    critical = score(make(command_type="POOL_SET", policy={"POOL_SET": "CRITICAL"}))
    assert (critical.tier, critical.approvals_required, critical.owner_admin_only) == ("CRITICAL", 2, True)
    assert critical.auto_eligible is False


def test_ai_confidence_raises_the_score_as_it_falls():
    sure = score(make(proposer="ai", ai_confidence=1))
    unsure = score(make(proposer="ai", ai_confidence=0.2))
    person = score(make(proposer="user"))
    assert person.score == sure.score  # a certain AI carries no extra risk over a person
    assert unsure.score > sure.score
    assert unsure.breakdown[3].contribution == D("0.2000")  # 0.25 × (1 − 0.2)
    assert (sure.tier, unsure.tier) == ("LOW", "MEDIUM")


def test_ai_proposals_need_a_confidence_in_range():
    assert error(score, make(proposer="ai")).field == "ai_confidence"
    assert error(score, make(proposer="ai", ai_confidence=1.5)).code == "out_of_range"
    # A person's or a system rule's proposal ignores any confidence given.
    assert score(make(proposer="system", ai_confidence=0.1)).score == score(make()).score


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target_count": 0}, "target_count"),
        ({"target_count": True}, "target_count"),
        ({"power_kw": -1}, "power_kw"),
        ({"power_kw": "many"}, "power_kw"),
        ({"revenue_usd_per_day": -1}, "revenue_usd_per_day"),
        ({"proposer": "robot"}, "proposer"),
        ({"success_rate": 1.01}, "success_rate"),
        ({"command_type": "format"}, "type"),
    ],
)
def test_bad_risk_inputs(overrides, field):
    assert error(score, make(**overrides)).field == field


@pytest.mark.parametrize(
    ("name", "tier"),
    [
        ("HASHING_DISABLE", "HIGH"),
        ("stop", "HIGH"),
        ("POOL_SET", "HIGH"),
        ("reboot", "MEDIUM"),
        ("POWER_MODE", "MEDIUM"),
    ],
)
def test_base_tiers_hold_for_a_tiny_command(name, tier):
    assessment = score(make(command_type=name, power_kw=0, revenue_usd_per_day=0, success_rate=1))
    assert risk._TIER_RANK[assessment.score_tier] < risk._TIER_RANK[tier]  # the score alone would be lower
    assert assessment.tier == tier
    assert f"at least {tier}" in " ".join(assessment.tier_reasons)


def test_curtail_base_tier_depends_on_mode_and_impact_uses_the_curtailed_kw():
    soft = score(make(command_type="CURTAIL", target_count=10, power_kw=35, params={"kw": 5, "mode": "soft"}))
    hard = score(make(command_type="CURTAIL", target_count=10, power_kw=35, params={"kw": 5, "mode": "hard"}))
    assert (soft.base_tier, hard.base_tier) == ("MEDIUM", "HIGH")
    assert soft.breakdown[2].raw == 5
    assert hard.breakdown[0].normalised > soft.breakdown[0].normalised
    half = score(make(command_type="CURTAIL", target_count=10, power_kw=3000, params={"percent": 50}))
    assert half.breakdown[2].raw == 1500
    capped = score(make(command_type="CURTAIL", target_count=10, power_kw=20, params={"kw": 999}))
    assert capped.breakdown[2].raw == 20  # cannot curtail more than the targets draw


def test_policy_tightens():
    assessment = score(make(command_type="set_fan", policy={"SET_FAN": "HIGH"}))
    assert (assessment.score_tier, assessment.tier, assessment.policy_tier) == ("LOW", "HIGH", "HIGH")
    assert assessment.approvals_required == 2
    legacy_key = score(make(command_type="POOL_SET", policy={"set_pool": "critical"}))
    assert legacy_key.tier == "CRITICAL"
    everything = score(make(command_type="HASHING_ENABLE", policy={"*": "MEDIUM"}))
    assert everything.tier == "MEDIUM" and not everything.auto_eligible


def test_policy_never_loosens_high_or_critical():
    assert score(make(command_type="POOL_SET", policy={"POOL_SET": "LOW"})).tier == "HIGH"
    big = make(command_type="POOL_SET", target_count=5000, power_kw=17_500, revenue_usd_per_day=60_000)
    assert score(big).tier == "CRITICAL"
    loosened = score(RiskInput(**{**big.__dict__, "policy": {"POOL_SET": "MEDIUM", "*": "LOW"}}))
    assert loosened.tier == "CRITICAL"
    assert "ignored" in " ".join(loosened.tier_reasons)


def test_policy_with_a_bad_tier_or_type_is_refused():
    assert error(score, make(policy={"SET_FAN": "EXTREME"})).code == "invalid_tier"
    assert error(score, make(policy={"format": "HIGH"})).code == "unknown_type"


def test_revenue_and_history_only_raise_the_score_and_stay_bounded():
    base = score(make(revenue_usd_per_day=0, success_rate=1))
    assert base.score == D("0.0675")  # core only: no revenue at stake, a perfect record
    assert score(make(revenue_usd_per_day=100_000, success_rate=1)).score > base.score
    assert score(make(revenue_usd_per_day=0, success_rate=0.5)).score > score(make(revenue_usd_per_day=0)).score
    assert score(make(revenue_usd_per_day=0)).score > base.score  # unknown history is a little riskier than perfect
    worst = score(
        make(
            command_type="POOL_SET",
            target_count=10**6,
            power_kw=10**7,
            proposer="ai",
            ai_confidence=0,
            revenue_usd_per_day=10**9,
            success_rate=0,
        )
    )
    assert D(0) <= worst.score <= D(1)
    assert breakdown_sum(worst) == worst.score


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(risk.COMMAND_TYPES),
    count=st.integers(1, 100_000),
    kw=st.decimals(0, 1_000_000, places=3, allow_nan=False, allow_infinity=False),
    proposer=st.sampled_from(["user", "ai", "system"]),
    confidence=st.floats(0, 1),
    revenue=st.decimals(0, 10**8, places=2, allow_nan=False, allow_infinity=False),
    success=st.none() | st.floats(0, 1),
)
def test_score_is_in_the_unit_interval_and_the_breakdown_sums(kind, count, kw, proposer, confidence, revenue, success):
    data = RiskInput(kind, count, kw, proposer, confidence, revenue, success)
    assessment = score(data)
    assert D(0) <= assessment.score <= D(1)
    assert breakdown_sum(assessment) == assessment.score
    assert all(D(0) <= item.normalised <= D(1) for item in assessment.breakdown)
    assert risk._TIER_RANK[assessment.tier] >= risk._TIER_RANK[assessment.base_tier]


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(risk.COMMAND_TYPES),
    counts=st.tuples(st.integers(1, 5000), st.integers(1, 5000)).map(sorted),
    kws=st.tuples(st.floats(0, 20_000), st.floats(0, 20_000)).map(sorted),
    proposer=st.sampled_from(["user", "ai"]),
    confidence=st.floats(0, 1),
    revenue=st.floats(0, 100_000),
    success=st.none() | st.floats(0, 1),
)
def test_score_is_monotone_in_target_count_and_kw(kind, counts, kws, proposer, confidence, revenue, success):
    def at(count, kw):
        return score(RiskInput(kind, count, kw, proposer, confidence, revenue, success)).score

    assert at(counts[0], kws[0]) <= at(counts[1], kws[0])
    assert at(counts[0], kws[0]) <= at(counts[0], kws[1])


# ---------------------------------------------------------------------------------------------- auto-approve

NIGHT_SHANGHAI = AutoApproveRule(
    name="night fans",
    action_types=frozenset({"set_fan", "HASHING_ENABLE"}),
    max_targets=10,
    max_kw=50,
    min_confidence=0.8,
    windows=(TimeWindow(time(22, 0), time(6, 0)),),
    tz="Asia/Shanghai",
)
AT_23_SHANGHAI = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def decide(command: RiskInput, rules=NIGHT_SHANGHAI, now=AT_23_SHANGHAI):
    return auto_approve(score(command), rules, now, command)


def test_auto_approves_low_inside_the_rule():
    allowed, reason = decide(make())
    assert allowed and "night fans" in reason


def test_never_auto_approves_medium_or_above_whatever_the_rules():
    anything = AutoApproveRule(name="anything")
    for command in (
        make(command_type="MINER_RESTART"),  # MEDIUM by base tier
        make(command_type="SET_FAN", proposer="ai", ai_confidence=0.1),  # MEDIUM by score
        make(command_type="SET_FAN", policy={"SET_FAN": "MEDIUM"}),  # MEDIUM by policy
        make(command_type="POOL_SET"),
    ):
        allowed, reason = decide(command, anything)
        assert not allowed and "only to LOW" in reason


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (make(command_type="HASHING_ENABLE", target_count=11), "targets"),
        (make(power_kw=51), "kW"),
        (make(proposer="ai", ai_confidence=0.79), "confidence"),
    ],
)
def test_each_limit_of_a_rule(command, words):
    assessment = score(command)
    assert assessment.tier == "LOW"
    allowed, reason = auto_approve(assessment, [NIGHT_SHANGHAI], AT_23_SHANGHAI, command)
    assert not allowed and words in reason


def test_action_types_limit():
    rule = AutoApproveRule(name="enable only", action_types=frozenset({"start"}))
    assert decide(make(command_type="enable"), rule)[0]
    allowed, reason = decide(make(command_type="SET_FAN"), rule)
    assert not allowed and "action types" in reason


def test_min_confidence_applies_to_ai_proposals_only():
    assert decide(make(proposer="user"))[0]
    assert decide(make(proposer="ai", ai_confidence=0.8))[0]


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        (datetime(2026, 11, 26, 13, 59, tzinfo=UTC), False),  # 21:59 Shanghai
        (datetime(2026, 11, 26, 14, 0, tzinfo=UTC), True),  # 22:00
        (datetime(2026, 11, 26, 16, 30, tzinfo=UTC), True),  # 00:30 the next day
        (datetime(2026, 11, 26, 21, 59, tzinfo=UTC), True),  # 05:59
        (datetime(2026, 11, 26, 22, 0, tzinfo=UTC), False),  # 06:00: the end is excluded
        (datetime(2026, 11, 26, 4, 0, tzinfo=UTC), False),  # noon
    ],
)
def test_window_across_midnight_in_the_sites_time_zone(utc, allowed):
    assert decide(make(), now=utc)[0] is allowed


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        (datetime(2026, 7, 1, 6, 0, tzinfo=UTC), True),  # 02:00 EDT
        (datetime(2026, 1, 1, 6, 0, tzinfo=UTC), True),  # 01:00 EST
        (datetime(2026, 1, 1, 5, 30, tzinfo=UTC), False),  # 00:30 EST
        (datetime(2026, 7, 1, 9, 0, tzinfo=UTC), False),  # 05:00 EDT
    ],
)
def test_window_follows_daylight_saving_time(utc, allowed):
    rule = AutoApproveRule(name="ny", windows=(TimeWindow(time(1), time(5)),), tz="America/New_York")
    assert decide(make(), rule, utc)[0] is allowed


def test_the_first_rule_that_allows_wins_and_refusals_are_explained():
    strict = AutoApproveRule(name="strict", max_targets=1)
    loose = AutoApproveRule(name="loose", max_targets=5)
    allowed, reason = decide(make(target_count=3), [strict, loose])
    assert allowed and "loose" in reason
    allowed, reason = decide(make(target_count=3), [strict])
    assert not allowed and "strict" in reason
    assert decide(make(), [])[1] == "the site has no auto-approval rule"
    assert decide(make(), None)[0] is False


def test_auto_approve_input_errors():
    assert error(decide, make(), now=datetime(2026, 11, 26, 15)).code == "invalid_datetime"
    bad_zone = AutoApproveRule(windows=(TimeWindow(time(1), time(2)),), tz="Mars/Olympus")
    assert error(decide, make(), bad_zone).code == "invalid_timezone"
    assert error(TimeWindow, time(1), time(1)).code == "invalid_window"


# ---------------------------------------------------------------------------------------------- safety


def test_fan_below_floor_on_a_hot_chip_is_refused():
    targets = [
        TargetState("hot", chip_temp_c=90),
        TargetState("cool", chip_temp_c=70),
        TargetState("custom-limit", chip_temp_c=80, chip_temp_limit_c=75),
        TargetState("unknown"),
    ]
    refusals = safety_check(CommandSpec("SET_FAN", {"percent": 20}), targets)
    assert [(r.code, r.miner_id) for r in refusals] == [
        ("fan_floor_hot", "hot"),
        ("fan_floor_hot", "custom-limit"),
        ("fan_floor_temp_unknown", "unknown"),
    ]
    assert safety_check(CommandSpec("set_fan", {"percent": 30}), targets) == []  # at the floor: fine
    assert safety_check(CommandSpec("SET_FAN", {"percent": 100}), targets) == []
    assert safety_check(CommandSpec("SET_FAN", {"percent": 40}), targets, SiteLimits(fan_floor_pct=50)) != []
    assert safety_check(CommandSpec("SET_FAN", {"percent": 20}), [TargetState("x", chip_temp_c=85)]) == []


def test_fan_auto_is_valid_and_always_safe_and_is_what_a_rollback_restores():
    assert validate_params("SET_FAN", {"percent": "auto"}) == {"percent": "auto"}
    assert validate_params("set_fan", {"percent": " AUTO "}) == {"percent": "auto"}
    for bad in ("automatic", "", "50", None, 50.5):
        assert error(validate_params, "SET_FAN", {"percent": bad}).code == "invalid_type", bad
    hot = [TargetState("hot", chip_temp_c=99), TargetState("unknown")]
    auto = validate_params("SET_FAN", {"percent": "auto"})
    assert safety_check(CommandSpec("SET_FAN", auto), hot, SiteLimits(fan_floor_pct=100)) == []
    assert inverse("SET_FAN", {"percent": 90}, {"fan_percent": "auto"}) == ("SET_FAN", {"percent": "auto"})
    assert inverse("SET_FAN", auto, {"fan_percent": 40}) == ("SET_FAN", {"percent": 40})


def test_enabling_or_restarting_a_miner_with_an_open_safety_shutdown_is_refused():
    targets = [TargetState("tripped", safety_shutdown_open=True), TargetState("ok")]
    for kind in ("HASHING_ENABLE", "start", "MINER_RESTART"):
        refusals = safety_check(CommandSpec(kind), targets)
        assert [(r.code, r.miner_id) for r in refusals] == [("safety_shutdown_open", "tripped")]
    assert safety_check(CommandSpec("HASHING_DISABLE"), targets) == []


def test_curtailing_below_the_contracted_minimum_is_refused():
    limits = SiteLimits(contracted_min_kw=800, current_site_kw=1000)
    targets = [TargetState(i, power_kw=100) for i in range(4)]
    params = validate_params("CURTAIL", {"kw": 250, "start": START, "end": END})
    [refusal] = safety_check(CommandSpec("CURTAIL", params), targets, limits)
    assert refusal.code == "below_contracted_minimum" and "750" in refusal.message
    exactly = validate_params("CURTAIL", {"kw": 200, "start": START, "end": END})
    assert safety_check(CommandSpec("CURTAIL", exactly), targets, limits) == []
    half = validate_params("CURTAIL", {"percent": 50, "start": START, "end": END})  # 50 % of 400 kW
    assert safety_check(CommandSpec("CURTAIL", half), targets, limits) == []
    all_of_it = validate_params("CURTAIL", {"percent": 100, "start": START, "end": END})
    assert safety_check(CommandSpec("CURTAIL", all_of_it), targets, limits)[0].code == "below_contracted_minimum"
    # A disable is a curtailment by another name.
    assert safety_check(CommandSpec("HASHING_DISABLE"), targets, limits)[0].code == "below_contracted_minimum"
    # No minimum: nothing to protect; a minimum without the current draw: fail closed.
    assert safety_check(CommandSpec("CURTAIL", params), targets, SiteLimits()) == []
    unknown = SiteLimits(contracted_min_kw=800)
    assert safety_check(CommandSpec("CURTAIL", params), targets, unknown)[0].code == "site_power_unknown"


def test_a_risk_input_with_params_can_be_checked_too():
    command = make(command_type="SET_FAN", params={"percent": 10})
    assert safety_check(command, [TargetState("hot", chip_temp_c=99)])[0].code == "fan_floor_hot"


# ---------------------------------------------------------------------------------------------- curtail plan


def test_curtail_plan_throttles_soft_targets_least_efficient_first_and_stops_nothing_when_enough():
    targets = [
        TargetState("efficient-soft", power_kw=3.0, supports_power_target=True, efficiency_j_per_th=17),
        TargetState("old-soft", power_kw=3.4, supports_power_target=True, efficiency_j_per_th=30),
        TargetState("old-hard", power_kw=3.2, supports_power_target=False, efficiency_j_per_th=34),
    ]
    plan = curtail_plan(targets, 2)
    assert [(a.miner_id, a.action, a.saved_kw) for a in plan.actions] == [
        ("old-soft", "power_target", D("1.700")),  # down to half of 3.4 kW
        ("efficient-soft", "power_target", D("0.300")),  # only as far as needed
    ]
    assert (plan.planned_kw, plan.shortfall_kw) == (D(2), D(0))


def test_curtail_plan_stops_hard_targets_before_throttled_ones_when_soft_is_not_enough():
    targets = [
        TargetState("a-soft", power_kw=3, supports_power_target=True, efficiency_j_per_th=20, soft_min_power_kw=2),
        TargetState("b-hard", power_kw=3, efficiency_j_per_th=25),
        TargetState("c-hard", power_kw=3, efficiency_j_per_th=35),
        TargetState("d-unknown", power_kw=3),
    ]
    plan = curtail_plan(targets, 5)  # soft gives 1 kW, then stop c (35 J/TH), then b (25 J/TH)
    assert [(a.miner_id, a.action) for a in plan.actions] == [
        ("c-hard", "stop"),
        ("b-hard", "stop"),
        ("a-soft", "power_target"),
    ]
    assert plan.planned_kw == D(7) and plan.shortfall_kw == 0
    everything = curtail_plan(targets, 20)
    assert {a.action for a in everything.actions} == {"stop"} and len(everything.actions) == 4
    assert (everything.planned_kw, everything.shortfall_kw) == (D(12), D(8))
    json.dumps(everything.as_dict())


def test_hard_curtail_plan_stops_least_efficient_first():
    targets = [
        TargetState("soft-old", power_kw=3, supports_power_target=True, efficiency_j_per_th=38),
        TargetState("new", power_kw=3, efficiency_j_per_th=18),
        TargetState("mid", power_kw=3, efficiency_j_per_th=26),
        TargetState("idle", power_kw=0, efficiency_j_per_th=99),
    ]
    plan = curtail_plan(targets, 4, mode="hard")
    assert [(a.miner_id, a.action) for a in plan.actions] == [("soft-old", "stop"), ("mid", "stop")]
    assert error(curtail_plan, targets, 0).code == "out_of_range"
    assert error(curtail_plan, targets, 1, mode="gentle").code == "invalid_choice"


# ---------------------------------------------------------------------------------------------- inverse


def test_inverse_of_disable_and_enable():
    assert inverse("HASHING_DISABLE", {}, {}) == ("HASHING_ENABLE", {})
    assert inverse("stop", {}, None) == ("HASHING_ENABLE", {})
    assert inverse("enable", {}, {}) == ("HASHING_DISABLE", {})


def test_inverse_restores_the_previous_pool_fan_and_power_mode():
    before = {
        "pool_url": "stratum+tcp://old.example:3333",
        "pool_worker": "acct.old",
        "fan_percent": 65,
        "power_mode": "normal",
    }
    pool = {"url": "stratum+tcp://new.example:3333", "worker": "acct.new"}
    assert inverse("set_pool", pool, before) == ("POOL_SET", {"url": before["pool_url"], "worker": "acct.old"})
    assert inverse("SET_FAN", {"percent": 90}, before) == ("SET_FAN", {"percent": 65})
    assert inverse("POWER_MODE", {"mode": "high"}, before) == ("POWER_MODE", {"mode": "normal"})
    with_password = inverse("POOL_SET", pool, {**before, "pool_password": "x"})
    assert with_password[1]["password"] == "x"


def test_inverse_needs_a_recorded_state_and_some_types_have_none():
    assert error(inverse, "SET_FAN", {"percent": 90}, {}).code == "no_previous_state"
    assert error(inverse, "POOL_SET", {}, {"pool_url": "stratum+tcp://a.example:1"}).field == "pool_worker"
    assert error(inverse, "MINER_RESTART", {}, {}).code == "no_inverse"
    assert error(inverse, "reboot", {}, {}).code == "no_inverse"
    assert error(inverse, "CURTAIL", {"kw": 1}, {}).code == "no_inverse"
    # A recorded state that is itself invalid is refused like any proposal.
    assert error(inverse, "SET_FAN", {"percent": 90}, {"fan_percent": 140}).code == "out_of_range"


def test_inverse_groups_split_targets_by_their_previous_state():
    groups = inverse_groups(
        "SET_FAN", {"percent": 90}, {"m3": {"fan_percent": 60}, "m1": {"fan_percent": 60}, "m2": {"fan_percent": 80}}
    )
    assert groups == [("SET_FAN", {"percent": 60}, ("m1", "m3")), ("SET_FAN", {"percent": 80}, ("m2",))]


def test_the_engine_imports_without_django():
    # A fresh interpreter (this one already has Django loaded by pytest-django): the AI reuses the module alone.
    code = "import sys, commands.risk; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(risk.__file__).parents[1], check=False)
    assert result.returncode == 0


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=6,
)
_KEYS = st.sampled_from(["url", "worker", "password", "percent", "mode", "kw", "start", "end", "other"])


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(risk.COMMAND_TYPES),
    params=st.dictionaries(_KEYS, _JSONISH | st.sampled_from([START, END, "stratum+tcp://[::1", "1e999999"])),
)
def test_validate_params_only_ever_raises_its_own_error(kind, params):
    try:
        clean = validate_params(kind, params)
    except RiskInputError as caught:
        assert caught.code and len(caught.message) < 300
    else:
        assert json.loads(json.dumps(clean)) == clean


def test_the_default_soft_floor_is_half_the_nameplate_not_half_the_current_draw():
    throttled = risk.TargetState(1, power_kw=D("2.0"), nominal_power_kw=D("3.5"), supports_power_target=True)
    small = risk.curtail_plan([throttled], D("0.2"))
    assert [(a.action, a.power_kw_after) for a in small.actions] == [("power_target", D("1.800"))]
    big = risk.curtail_plan([throttled], D("0.3"))  # only 0.25 kW above 1.75 kW (half of 3.5): a stop
    assert [(a.action, a.power_kw_after) for a in big.actions] == [("stop", D("0"))]
    unknown = risk.TargetState(2, power_kw=D("2.0"), supports_power_target=True)  # no nameplate: half of 2.0
    assert risk.curtail_plan([unknown], D("1.0")).actions[0].action == "power_target"
