"""Rollback (commands.rollback): the inverse of each invertible type from the state recorded before execution
(the edge's, else the proposal's), only for the targets that succeeded, one command per earlier state (fans at
60 % and "auto" → two), proposed, scored and approved like any other; the original becomes ROLLED_BACK once its
rollback has run; the refusals (restart, curtail, not finished, nothing recorded, pending, already rolled back),
permissions and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commands import dispatch, services
from commands.models import Command, CommandStatus, CommandTarget
from commands.rollback import command_rollback
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import MinerFactory
from telemetry import devices

S = CommandStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def device(farm):
    _row, code = devices.enrollment_code_create(site=farm.site_a)
    found, _token, _secret = devices.device_register(code=code, name="collector", version="1.0.0")
    return found


@pytest.fixture
def miners(farm):
    return [farm.miners[("site-a", "own")], MinerFactory(zone=farm.zone_a, site=farm.site_a)]


def approve(farm, command):
    for approver in ("owner", "admin", "siteowner_a"):  # HIGH needs two; MEDIUM one; LOW none
        command.refresh_from_db()
        if command.status == S.PENDING_APPROVAL and command.proposer != farm.users[approver]:
            services.command_approve(command=command, actor=farm.users[approver])
    command.refresh_from_db()
    assert command.status == S.APPROVED
    return command


def propose(farm, targets, *, type, params=None, who="siteowner_a"):
    command = services.command_propose(
        actor=farm.users[who], type=type, params=params or {}, targets=[m.pk for m in targets]
    ).command
    return approve(farm, command)


def run(command, device, outcomes):
    """Dispatch to ``device`` and acknowledge: ``outcomes`` maps a serial to (status, edge before_state)."""
    services.command_mark_dispatched(command=command, device=device)
    command.refresh_from_db()
    results = [
        {"miner": serial, "status": status, "message": "", "before_state": before}
        for serial, (status, before) in outcomes.items()
    ]
    command, _changed = services.command_acknowledge(
        command_id=command.pk,
        device=device,
        nonce=dispatch.dispatch_nonce(command),
        results=results,
        visible=dispatch.acknowledgeable(device),
    )
    return command


def refused(**kw) -> DomainError:
    with pytest.raises(DomainError) as info:
        command_rollback(**kw)
    return info.value


def test_a_disable_is_rolled_back_by_an_enable_and_the_original_moves_once_it_has_run(farm, miners, device):
    original = propose(farm, miners, type="HASHING_DISABLE")
    original = run(original, device, {m.serial: ("ok", {"status": "hashing"}) for m in miners})
    assert original.status == S.COMPLETED

    result = command_rollback(command=original, actor=farm.users["siteowner_a"], reason="price came back")
    rollback = result.command
    assert result.created and result.others == () and result.commands == [rollback]
    assert (rollback.command_type, rollback.params, rollback.rollback_of_id) == ("HASHING_ENABLE", {}, original.pk)
    assert sorted(rollback.targets.values_list("miner_id", flat=True)) == sorted(m.pk for m in miners)
    assert rollback.status == S.APPROVED  # LOW, scored like any other: auto-approved
    assert rollback.proposer == farm.users["siteowner_a"] and rollback.risk_breakdown["breakdown"]
    original.refresh_from_db()
    assert original.status == S.COMPLETED  # not when proposed: when run
    event = AuditEvent.objects.get(reference=f"command:{original.pk}", event_type="command.rollback_proposed")
    assert event.payload["rollback_ids"] == [rollback.pk] and event.payload["reason"] == "price came back"

    run(rollback, device, {m.serial: ("ok", {"status": "idle"}) for m in miners})
    original.refresh_from_db()
    assert original.status == S.ROLLED_BACK and f"#{rollback.pk}" in original.status_reason
    moved = AuditEvent.objects.get(reference=f"command:{original.pk}", event_type="command.rolled_back")
    assert moved.payload["rollback_ids"] == [rollback.pk] and moved.actor_type == "device"
    assert OutboxEvent.objects.filter(aggregate=f"command:{original.pk}", payload__status=S.ROLLED_BACK).exists()
    error = refused(command=original, actor=farm.users["owner"])
    assert (error.code, error.status) == ("already_rolled_back", 409)


def test_an_enable_is_rolled_back_by_a_disable(farm, miners, device):
    original = run(propose(farm, miners[:1], type="HASHING_ENABLE"), device, {miners[0].serial: ("ok", None)})
    rollback = command_rollback(command=original, actor=farm.users["owner"]).command
    assert rollback.command_type == "HASHING_DISABLE" and rollback.status == S.PENDING_APPROVAL  # HIGH


def test_fans_at_different_earlier_duties_need_one_command_each_and_auto_is_restored(farm, miners, device):
    original = propose(farm, miners, type="SET_FAN", params={"percent": 90})
    original = run(
        original,
        device,
        {miners[0].serial: ("ok", {"fan_percent": 60}), miners[1].serial: ("ok", {"fan_percent": "auto"})},
    )
    result = command_rollback(command=original, actor=farm.users["siteowner_a"])
    assert len(result.commands) == 2
    by_params = {str(c.params["percent"]): c for c in result.commands}
    assert set(by_params) == {"60", "auto"}
    assert list(by_params["60"].targets.values_list("miner_id", flat=True)) == [miners[0].pk]
    assert list(by_params["auto"].targets.values_list("miner_id", flat=True)) == [miners[1].pk]
    assert all(c.rollback_of_id == original.pk and c.status == S.APPROVED for c in result.commands)
    assert sorted(original.rollbacks.values_list("pk", flat=True)) == sorted(c.pk for c in result.commands)

    # One of two has run: the original is not rolled back yet; a second request is refused meanwhile.
    first, second = by_params["60"], by_params["auto"]
    run(first, device, {miners[0].serial: ("ok", None)})
    original.refresh_from_db()
    assert original.status == S.COMPLETED
    error = refused(command=original, actor=farm.users["owner"])
    assert (error.code, error.details["rollback_ids"]) == ("rollback_pending", [second.pk])
    run(second, device, {miners[1].serial: ("ok", None)})
    original.refresh_from_db()
    assert original.status == S.ROLLED_BACK


def test_a_pool_change_is_rolled_back_to_the_edges_recorded_pool_and_needs_approvals_like_any_other(
    farm, miners, device
):
    pool = {"url": "stratum+tcp://new.pool.example:3333", "worker": "acct.new"}
    original = propose(farm, miners[:1], type="POOL_SET", params=pool)
    before = {"pool_url": "stratum+tcp://old.pool.example:3333", "pool_worker": "acct.old", "status": "hashing"}
    original = run(original, device, {miners[0].serial: ("ok", before)})
    rollback = command_rollback(command=original, actor=farm.users["siteowner_a"]).command
    assert rollback.params == {"url": before["pool_url"], "worker": "acct.old"}
    assert (rollback.status, rollback.risk_tier, rollback.approvals_required) == (S.PENDING_APPROVAL, "HIGH", 2)
    with pytest.raises(DomainError) as info:
        services.command_approve(command=rollback, actor=farm.users["siteowner_a"])
    assert info.value.code == "self_approval"  # the one who asked for the rollback proposed it


def test_a_power_mode_falls_back_on_the_live_state_frozen_at_proposal(farm, miners, device):
    from telemetry.models import LiveStatus

    now = timezone.now()
    LiveStatus.objects.create(
        miner=miners[0], site_id=miners[0].site_id, last_seen=now, status="online", updated_at=now, power_mode="high",
        pool_url="stratum+tcp://live.pool.example:3333", fan_pct=55,
    )  # fmt: skip
    original = propose(farm, miners[:1], type="POWER_MODE", params={"mode": "low"})
    target = original.targets.get()
    assert (target.before_state["power_mode"], target.before_state["fan_percent"]) == ("high", 55)
    original = run(original, device, {miners[0].serial: ("ok", {"status": "hashing"})})  # edge read no mode
    rollback = command_rollback(command=original, actor=farm.users["owner"]).command
    assert (rollback.command_type, rollback.params) == ("POWER_MODE", {"mode": "high"})
    # The edge's reading, when it has one, wins over the proposal's.
    CommandTarget.objects.filter(pk=target.pk).update(
        before_state={"power_mode": "high", "edge": {"power_mode": "normal"}}
    )
    Command.objects.filter(pk=rollback.pk).update(status=S.CANCELLED)
    again = command_rollback(command=original, actor=farm.users["owner"]).command
    assert again.params == {"mode": "normal"}


def test_only_the_targets_that_succeeded_are_rolled_back(farm, miners, device):
    original = propose(farm, miners, type="HASHING_DISABLE")
    original = run(original, device, {miners[0].serial: ("ok", None), miners[1].serial: ("failed", None)})
    assert original.status == S.PARTIAL
    rollback = command_rollback(command=original, actor=farm.users["owner"]).command
    assert list(rollback.targets.values_list("miner_id", flat=True)) == [miners[0].pk]
    run(rollback, device, {miners[0].serial: ("ok", None)})
    original.refresh_from_db()
    assert original.status == S.ROLLED_BACK


def test_a_failed_rollback_leaves_the_original_and_a_new_one_skips_the_targets_already_restored(farm, miners, device):
    original = propose(farm, miners, type="HASHING_DISABLE")
    original = run(original, device, {m.serial: ("ok", None) for m in miners})
    first = command_rollback(command=original, actor=farm.users["owner"]).command
    first = run(first, device, {miners[0].serial: ("ok", None), miners[1].serial: ("failed", None)})
    original.refresh_from_db()
    assert (first.status, original.status) == (S.PARTIAL, S.COMPLETED)
    second = approve(farm, command_rollback(command=original, actor=farm.users["owner"]).command)
    assert list(second.targets.values_list("miner_id", flat=True)) == [miners[1].pk]
    run(second, device, {miners[1].serial: ("ok", None)})
    original.refresh_from_db()
    assert original.status == S.ROLLED_BACK


def test_refusals_have_codes_and_change_nothing(farm, miners, device):
    owner = farm.users["owner"]
    restart = run(propose(farm, miners[:1], type="MINER_RESTART"), device, {miners[0].serial: ("ok", None)})
    assert (refused(command=restart, actor=owner).code, refused(command=restart, actor=owner).status) == (
        "no_inverse",
        409,
    )
    now = timezone.now()
    window = {"kw": 1, "start": (now + timedelta(minutes=5)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    curtail = services.command_propose(actor=owner, type="CURTAIL", params=window, targets=[miners[0].pk]).command
    assert refused(command=curtail, actor=owner).code == "no_inverse"
    waiting = propose(farm, miners[:1], type="HASHING_ENABLE")
    error = refused(command=waiting, actor=owner)
    assert (error.code, error.status, error.details["status"]) == ("not_finished", 409, S.APPROVED)
    failed = run(propose(farm, miners[:1], type="HASHING_ENABLE"), device, {miners[0].serial: ("failed", None)})
    assert failed.status == S.FAILED and refused(command=failed, actor=owner).code == "not_finished"
    outcomes = {miners[0].serial: ("ok", {"fan_percent": 50}), miners[1].serial: ("ok", {"status": "hashing"})}
    fan = run(propose(farm, miners, type="SET_FAN", params={"percent": 90}), device, outcomes)
    error = refused(command=fan, actor=owner)
    assert (error.code, error.status) == ("no_previous_state", 409)
    assert [t["serial"] for t in error.details["targets"]] == [miners[1].serial]
    pool = run(propose(farm, miners[:1], type="POOL_SET", params={"url": "stratum+tcp://a.example:1", "worker": "w"}),
               device, {miners[0].serial: ("ok", {"pool_url": "http://bad", "pool_worker": "w"})})  # fmt: skip
    assert refused(command=pool, actor=owner).code == "invalid_previous_state"
    assert not Command.objects.filter(rollback_of__isnull=False).exists()


def test_an_unsafe_inverse_is_refused_whole(farm, miners, device):
    """Rolling a fan back to 20 % on a miner with no temperature reading: the safety guard refuses it, and
    the other group (50 %, safe) is not proposed either — one transaction."""
    outcomes = {miners[0].serial: ("ok", {"fan_percent": 50}), miners[1].serial: ("ok", {"fan_percent": 20})}
    original = run(propose(farm, miners, type="SET_FAN", params={"percent": 90}), device, outcomes)
    error = refused(command=original, actor=farm.users["owner"])
    assert error.code == "unsafe_command"
    assert not Command.objects.filter(rollback_of=original).exists()


def test_who_may_roll_back(farm, miners, device):
    original = run(propose(farm, miners[:1], type="HASHING_DISABLE"), device, {miners[0].serial: ("ok", None)})
    assert refused(command=original, actor=farm.users["siteowner_b_ro"]).status == 404  # site A hidden
    assert refused(command=original, actor=farm.users["client_x"]).status == 404
    b_miner = farm.miners[("site-b", "own")]
    _row, code = devices.enrollment_code_create(site=farm.site_b)
    device_b, _t, _s = devices.device_register(code=code, name="b", version="1.0.0")
    on_b = services.command_propose(actor=farm.users["owner"], type="HASHING_ENABLE", targets=[b_miner.pk]).command
    on_b = run(on_b, device_b, {b_miner.serial: ("ok", None)})
    error = refused(command=on_b, actor=farm.users["siteowner_b_ro"])
    assert (error.status, error.code) == (403, "site_read_only")
    assert not Command.objects.filter(rollback_of__isnull=False).exists()


def test_the_rollback_endpoint(api, farm, miners, device):
    original = propose(farm, miners, type="SET_FAN", params={"percent": 90})
    run(
        original, device, {miners[0].serial: ("ok", {"fan_percent": 40}), miners[1].serial: ("ok", {"fan_percent": 70})}
    )
    api.force_authenticate(farm.users["siteowner_a"])
    response = api.post(f"/api/v1/commands/{original.pk}/rollback", {"reason": "too loud"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rollback_of"] == original.pk and body["type"] == "SET_FAN"
    assert len(body["rollback_group"]) == 2 and body["rollback_group"][0] == body["id"]
    assert set(Command.objects.filter(rollback_of=original).values_list("pk", flat=True)) == set(body["rollback_group"])
    again = api.post(f"/api/v1/commands/{original.pk}/rollback", {}, format="json")
    assert again.status_code == 409 and again.json()["error_code"] == "rollback_pending"
    detail = api.get(f"/api/v1/commands/{original.pk}").json()
    assert sorted(detail["rollbacks"]) == sorted(body["rollback_group"])
    assert api.post("/api/v1/commands/999999/rollback", {}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_rollbacks_propose_one(on_postgres, farm, miners, device):
    """The original's row is locked for the whole rollback: the second request waits, then sees the first's
    live rollback (rollback_pending). Likewise an acknowledgement settling the original waits for the lock."""
    from commands.tests.test_lifecycle import _in_threads

    original = run(propose(farm, miners, type="HASHING_DISABLE"), device, {m.serial: ("ok", None) for m in miners})
    users = (farm.users["owner"], farm.users["admin"])
    results = _in_threads(*(lambda u=u: command_rollback(command=original, actor=u).command.pk for u in users))
    (made,) = Command.objects.filter(rollback_of=original)
    assert sorted(map(str, results)) == sorted([str(made.pk), "rollback_pending"])
    run(made, device, {m.serial: ("ok", None) for m in miners})
    original.refresh_from_db()
    assert original.status == S.ROLLED_BACK
