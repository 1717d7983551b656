"""The command lifecycle through the services: propose (score, guards, auto-approval, dedupe), approve,
deny, cancel, expire; the state table; outbox events and audit rows per transition; concurrent approvals
on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from commands import services
from commands.models import Approval, Command, CommandStatus, CommandTarget, SiteApprovalPolicy
from commands.state import TRANSITIONS, can_transition, transition
from hashinsight.accounts.roles import Role
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import MinerFactory, UserFactory

S = CommandStatus
pytestmark = pytest.mark.django_db


def propose(farm, who="siteowner_a", type="MINER_RESTART", params=None, targets=None, **kw):
    if targets is None:
        targets = [farm.miners[("site-a", "own")].pk]
    return services.command_propose(
        actor=farm.users[who] if isinstance(who, str) else who, type=type, params=params or {}, targets=targets, **kw
    ).command


def refused(fn, **kw) -> DomainError:
    with pytest.raises(DomainError) as info:
        fn(**kw)
    return info.value


def events(command) -> list[tuple[str, str]]:
    rows = OutboxEvent.objects.filter(aggregate=f"command:{command.pk}").order_by("created_at", "pk")
    return [(row.event_type, row.payload["status"]) for row in rows]


def audit_types(command) -> list[str]:
    rows = AuditEvent.objects.filter(reference=f"command:{command.pk}").order_by("seq")
    return list(rows.values_list("event_type", flat=True))


# ---------------------------------------------------------------------------------------------------
# The state table


def test_every_pair_of_states_is_legal_exactly_when_the_table_says_so():
    for source in S.values:
        for target in S.values:
            assert can_transition(source, target) == (target in TRANSITIONS[source])
    assert TRANSITIONS[S.PENDING_APPROVAL] == {S.APPROVED, S.DENIED, S.CANCELLED, S.TIMEOUT}
    assert not TRANSITIONS[S.DENIED] and not TRANSITIONS[S.TIMEOUT] and not TRANSITIONS[S.CANCELLED]


def test_every_legal_transition_is_saved_and_every_illegal_one_refused_with_a_409_naming_both(farm):
    command = propose(farm)
    for source in S.values:
        for target in S.values:
            Command.objects.filter(pk=command.pk).update(status=source)
            command.refresh_from_db()
            if target in TRANSITIONS[source]:
                assert transition(command, target) == source
                command.refresh_from_db()
                assert command.status == target
            else:
                error = refused(transition, command=command, to=target)
                assert (error.code, error.status) == ("illegal_transition", 409)
                assert error.details["from"] == source and error.details["to"] == target
                assert source in error.message and target in error.message
                command.refresh_from_db()
                assert command.status == source


def test_dispatch_and_finish_are_stamped(farm):
    command = propose(farm)
    Command.objects.filter(pk=command.pk).update(status=S.APPROVED)
    command.refresh_from_db()
    transition(command, S.DISPATCHED)
    assert command.dispatched_at is not None and command.finished_at is None
    transition(command, S.COMPLETED)
    command.refresh_from_db()
    assert command.finished_at is not None


# ---------------------------------------------------------------------------------------------------
# Propose


def test_a_low_command_is_auto_approved_with_a_system_approval_and_published_per_transition(farm):
    command = propose(farm, type="set_fan", params={"percent": 80})
    command.refresh_from_db()
    assert (command.command_type, command.risk_tier, command.status) == ("SET_FAN", "LOW", S.APPROVED)
    approval = command.approvals.get()
    assert approval.approver is None and approval.decision == "approve" and "auto-approved" in approval.reason
    assert events(command) == [("command.created", S.PENDING), ("command.updated", S.APPROVED)]
    assert audit_types(command) == ["command.proposed", "command.approved"]


def test_a_site_may_turn_auto_approval_off_by_tightening_every_type_to_medium(farm):
    SiteApprovalPolicy.objects.create(site=farm.site_a, min_tiers={"*": "MEDIUM"})
    command = propose(farm, type="SET_FAN", params={"percent": 80})
    assert (command.risk_tier, command.status, command.approvals_required) == ("MEDIUM", S.PENDING_APPROVAL, 1)


def test_a_site_rule_that_refuses_keeps_a_low_command_pending(farm):
    SiteApprovalPolicy.objects.create(
        site=farm.site_a, auto_approve_rules=[{"name": "fans only", "action_types": ["HASHING_ENABLE"]}]
    )
    command = propose(farm, type="SET_FAN", params={"percent": 80})
    assert (command.risk_tier, command.status) == ("LOW", S.PENDING_APPROVAL)
    assert "fans only" in command.status_reason
    # One approver is enough for a LOW command that was not auto-approved.
    services.command_approve(command=command, actor=farm.users["owner"])
    command.refresh_from_db()
    assert command.status == S.APPROVED


def test_a_proposal_freezes_its_targets_with_their_state_before_and_stores_its_risk(farm):
    from telemetry.models import LiveStatus

    miner = farm.miners[("site-a", "own")]
    LiveStatus.objects.create(
        miner=miner, site_id=miner.site_id, customer_id=None, last_seen=timezone.now(), power_w=3400.0,
        temp_chip_max_c=70.0, status="online", updated_at=timezone.now(),
    )  # fmt: skip
    command = propose(farm, targets={"zone": farm.zone_a.pk})
    zone_miners = sorted(m.pk for m in farm.miners.values() if m.zone_id == farm.zone_a.pk)
    assert sorted(command.targets.values_list("miner_id", flat=True)) == zone_miners
    assert CommandTarget.objects.get(command=command, miner=miner).before_state["power_w"] == 3400.0
    breakdown = command.risk_breakdown
    assert {item["factor"] for item in breakdown["breakdown"]} >= {"action", "targets", "power"}
    assert breakdown["inputs"]["target_count"] == 3
    assert breakdown["inputs"]["power_kw"] == "10.500"  # 3 × 3,500 W nominal
    assert float(breakdown["inputs"]["revenue_usd_per_day"]) > 0
    assert str(command.risk_score) == breakdown["score"]
    # A miner added later is not a target.
    MinerFactory(zone=farm.zone_a, site=farm.site_a)
    assert command.targets.count() == 3


def test_targets_by_serial_and_legacy_type_names(farm):
    miner = farm.miners[("site-a", "client-x")]
    command = propose(farm, type="reboot", targets=[miner.serial])
    assert command.command_type == "MINER_RESTART"
    assert list(command.targets.values_list("miner_id", flat=True)) == [miner.pk]


@pytest.mark.parametrize(
    "type_, params, code",
    [
        ("SET_FAN", {"percent": 120}, "out_of_range"),
        ("SET_FAN", {}, "required"),
        ("POWER_MODE", {"mode": "turbo"}, "invalid_choice"),
        ("POOL_SET", {"url": "http://pool.example.com:3333", "worker": "w1"}, "invalid_scheme"),
        ("MINER_RESTART", {"force": True}, "unexpected_field"),
        ("CURTAIL", {"kw": 10}, "required"),
        ("FLY", {}, "unknown_type"),
    ],
)
def test_bad_parameters_per_type_are_refused_with_their_code_and_nothing_is_created(farm, type_, params, code):
    error = refused(propose, farm=farm, type=type_, params=params)
    assert (error.status, error.code) == (400, code)
    assert not Command.objects.exists() and not OutboxEvent.objects.filter(aggregate__startswith="command:").exists()


def test_hidden_targets_answer_404_and_read_only_sites_403(farm):
    site_b_miner = farm.miners[("site-b", "own")]
    error = refused(propose, farm=farm, who="siteowner_a", targets=[site_b_miner.pk])
    assert (error.status, error.code) == (404, "miner_not_found")
    error = refused(propose, farm=farm, who="siteowner_a", targets={"zone": farm.zone_b.pk})
    assert error.status == 404
    error = refused(propose, farm=farm, who="siteowner_b_ro", targets=[site_b_miner.pk])
    assert (error.status, error.code) == (403, "site_read_only")
    error = refused(propose, farm=farm, who="client_x", targets=[farm.miners[("site-a", "client-x")].pk])
    assert error.status == 403
    assert not Command.objects.exists()


def test_targets_on_several_sites_are_a_400(farm):
    ids = [farm.miners[("site-a", "own")].pk, farm.miners[("site-b", "own")].pk]
    error = refused(propose, farm=farm, who="owner", targets=ids)
    assert (error.status, error.code) == (400, "targets_span_sites")


def test_an_unsafe_command_is_refused_whatever_its_approvals(farm):
    from telemetry.models import Alert

    miner = farm.miners[("site-a", "own")]
    Alert.objects.create(
        site=farm.site_a, miner=miner, alert_type="safety_overheat_shutdown", severity="critical",
        message="shut down", dedupe_key="x", first_seen=timezone.now(), last_seen=timezone.now(),
    )  # fmt: skip
    error = refused(propose, farm=farm, type="HASHING_ENABLE", targets=[miner.pk])
    assert (error.status, error.code) == (400, "unsafe_command")
    assert error.details["refusals"][0]["code"] == "safety_shutdown_open"
    # Fans below the floor with no temperature reading: refused (fail closed).
    error = refused(propose, farm=farm, type="SET_FAN", params={"percent": 10}, targets=[miner.pk])
    assert error.details["refusals"][0]["code"] == "fan_floor_temp_unknown"
    assert not Command.objects.exists()


def test_re_proposing_a_live_dedupe_key_returns_the_same_command(farm):
    first = services.command_propose(
        actor=farm.users["siteowner_a"], type="MINER_RESTART", targets=[farm.miners[("site-a", "own")].pk],
        dedupe_key="restart-1",
    )  # fmt: skip
    again = services.command_propose(
        actor=farm.users["owner"], type="reboot", targets=[farm.miners[("site-a", "own")].pk], dedupe_key="restart-1"
    )
    assert first.created and not again.created and again.command.pk == first.command.pk
    assert Command.objects.count() == 1
    other = refused(propose, farm=farm, type="SET_FAN", params={"percent": 50}, dedupe_key="restart-1")
    assert (other.status, other.code) == (409, "dedupe_conflict")
    # Once final, the key is free again.
    services.command_cancel(command=first.command, actor=farm.users["siteowner_a"])
    assert propose(farm, dedupe_key="restart-1").pk != first.command.pk


# ---------------------------------------------------------------------------------------------------
# Approve, deny, cancel


def test_medium_one_approval_and_its_events(farm):
    command = propose(farm)
    assert (command.risk_tier, command.status, command.approvals_required) == ("MEDIUM", S.PENDING_APPROVAL, 1)
    services.command_approve(command=command, actor=farm.users["owner"])
    command.refresh_from_db()
    assert command.status == S.APPROVED
    assert events(command) == [
        ("command.created", S.PENDING),
        ("command.updated", S.PENDING_APPROVAL),
        ("command.updated", S.APPROVED),
    ]
    assert audit_types(command) == [
        "command.proposed",
        "command.pending_approval",
        "command.approval",
        "command.approved",
    ]


def test_self_approval_and_double_approval_are_refused(farm):
    command = propose(farm, who="siteowner_a", type="HASHING_DISABLE")
    assert (command.risk_tier, command.approvals_required) == ("HIGH", 2)
    error = refused(services.command_approve, command=command, actor=farm.users["siteowner_a"])
    assert (error.status, error.code) == (403, "self_approval")
    services.command_approve(command=command, actor=farm.users["owner"])
    error = refused(services.command_approve, command=command, actor=farm.users["owner"])
    assert (error.status, error.code) == (409, "already_approved")
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL and command.approvals.count() == 1


def test_high_needs_two_distinct_approvers(farm):
    command = propose(farm, who="siteowner_a", type="stop")
    services.command_approve(command=command, actor=farm.users["owner"])
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL
    assert OutboxEvent.objects.filter(aggregate=f"command:{command.pk}").last().payload["approvals"] == 1
    services.command_approve(command=command, actor=farm.users["admin"])
    command.refresh_from_db()
    assert command.status == S.APPROVED


def test_critical_is_for_owners_and_admins_only(farm):
    SiteApprovalPolicy.objects.create(site=farm.site_a, min_tiers={"POOL_SET": "CRITICAL"})
    params = {"url": "stratum+tcp://pool.example.com:3333", "worker": "farm.a1"}
    command = propose(farm, who="owner", type="POOL_SET", params=params)
    assert (command.risk_tier, command.owner_admin_only, command.approvals_required) == ("CRITICAL", True, 2)
    error = refused(services.command_approve, command=command, actor=farm.users["siteowner_a"])
    assert (error.status, error.code) == (403, "owner_admin_only")
    services.command_approve(command=command, actor=farm.users["admin"])
    services.command_approve(command=command, actor=UserFactory(username="admin2", role=Role.ADMIN))
    command.refresh_from_db()
    assert command.status == S.APPROVED


def test_approvers_without_permission_get_404_or_403(farm):
    command = propose(farm, who="owner")
    for who, status in (("siteowner_b_ro", 404), ("client_x", 404), ("customer", 404), ("guest", 404)):
        error = refused(services.command_approve, command=command, actor=farm.users[who])
        assert error.status == status, who
    # Site B: its read-only site owner sees it but cannot approve.
    command_b = propose(farm, who="owner", targets=[farm.miners[("site-b", "own")].pk])
    error = refused(services.command_approve, command=command_b, actor=farm.users["siteowner_b_ro"])
    assert (error.status, error.code) == (403, "site_read_only")
    assert not Approval.objects.filter(approver__isnull=False).exists()


def test_deny_needs_a_reason_and_ends_the_command(farm):
    command = propose(farm)
    error = refused(services.command_deny, command=command, actor=farm.users["owner"], reason="  ")
    assert (error.status, error.code) == (400, "reason_required")
    services.command_deny(command=command, actor=farm.users["owner"], reason="wrong miner")
    command.refresh_from_db()
    assert (command.status, command.status_reason) == (S.DENIED, "wrong miner")
    error = refused(services.command_approve, command=command, actor=farm.users["admin"])
    assert (error.status, error.code) == (409, "illegal_transition")
    assert "command.denied" in audit_types(command)


def test_cancel_by_the_proposer_or_a_manager_only_before_dispatch(farm):
    command = propose(farm, who="siteowner_a")
    services.command_cancel(command=command, actor=farm.users["siteowner_a"])
    command.refresh_from_db()
    assert command.status == S.CANCELLED
    other = propose(farm, who="owner", type="SET_FAN", params={"percent": 60})
    assert other.status == S.APPROVED
    services.command_cancel(command=other, actor=farm.users["siteowner_a"])  # a manager of site A
    other.refresh_from_db()
    assert other.status == S.CANCELLED
    sent = propose(farm, who="owner")
    Command.objects.filter(pk=sent.pk).update(status=S.DISPATCHED)
    error = refused(services.command_cancel, command=sent, actor=farm.users["owner"])
    assert (error.status, error.code) == (409, "illegal_transition")
    hidden = propose(farm, who="owner", targets=[farm.miners[("site-b", "own")].pk])
    assert refused(services.command_cancel, command=hidden, actor=farm.users["siteowner_a"]).status == 404


def test_expiry_times_out_waiting_commands_and_the_job_runs_it(farm):
    waiting = propose(farm)
    approved = propose(farm, type="SET_FAN", params={"percent": 60})
    fresh = propose(farm, type="MINER_RESTART", targets=[farm.miners[("site-a", "client-x")].pk])
    past = timezone.now() - timedelta(seconds=1)
    Command.objects.filter(pk__in=[waiting.pk, approved.pk]).update(expires_at=past)
    error = refused(services.command_approve, command=waiting, actor=farm.users["owner"])
    assert (error.status, error.code) == (409, "command_expired")
    from commands.tasks import expire

    assert expire.apply(kwargs={"trigger": "manual"}).get() == {"expired": 2}
    statuses = dict(Command.objects.values_list("pk", "status"))
    assert statuses == {waiting.pk: S.TIMEOUT, approved.pk: S.TIMEOUT, fresh.pk: S.PENDING_APPROVAL}
    assert events(waiting)[-1] == ("command.updated", S.TIMEOUT)
    assert services.commands_expire() == 0


# ---------------------------------------------------------------------------------------------------
# PostgreSQL: concurrent approvals


def _in_threads(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except DomainError as exc:
            results[i] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_count_once_and_transition_once(on_postgres, farm):
    command = propose(farm, who="siteowner_a")  # MEDIUM: one approval suffices
    users = (farm.users["owner"], farm.users["admin"])
    results = _in_threads(*(lambda u=u: services.command_approve(command=command, actor=u).status for u in users))
    assert sorted(map(str, results)) == sorted([S.APPROVED, "illegal_transition"])
    command.refresh_from_db()
    assert command.status == S.APPROVED and command.approvals.count() == 1
    assert [s for _, s in events(command)].count(S.APPROVED) == 1
    # The same person twice at once: one approval.
    high = propose(farm, who="siteowner_a", type="HASHING_DISABLE")
    owner = farm.users["owner"]
    results = _in_threads(*(lambda: services.command_approve(command=high, actor=owner).status for _ in range(2)))
    assert sorted(map(str, results)) == sorted([S.PENDING_APPROVAL, "already_approved"])
    assert high.approvals.count() == 1


def test_every_transition_leaves_the_audit_chain_verifiable(farm):
    from hashinsight.events.audit import verify_chain

    command = propose(farm, who="siteowner_a", type="HASHING_DISABLE")
    services.command_approve(command=command, actor=farm.users["owner"])
    services.command_deny(command=command, actor=farm.users["admin"], reason="no")
    result = verify_chain()
    assert result.ok and result.count >= 5
    proposed = AuditEvent.objects.get(reference=f"command:{command.pk}", event_type="command.proposed")
    assert proposed.actor_type == "user" and proposed.actor_id == str(farm.users["siteowner_a"].pk)
    assert proposed.site_id == farm.site_a.pk


def test_an_ai_proposal_is_audited_as_the_ai_and_keeps_its_confidence(farm):
    command = propose(farm, who="owner", proposer_kind="ai", ai_confidence=0.9)
    command.refresh_from_db()
    assert (command.proposer_kind, str(command.ai_confidence)) == ("ai", "0.9000")
    proposed = AuditEvent.objects.get(reference=f"command:{command.pk}", event_type="command.proposed")
    assert proposed.actor_type == "ai"
    assert any(item["factor"] == "confidence" and item["raw"] == 0.9 for item in command.risk_breakdown["breakdown"])


def test_a_dedupe_race_lost_at_the_constraint_returns_the_winner(farm, monkeypatch):
    winner = propose(farm, dedupe_key="race")
    real = services._live_duplicate
    calls = []

    def miss_once(site_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real(site_id, key)

    monkeypatch.setattr(services, "_live_duplicate", miss_once)
    again = services.command_propose(
        actor=farm.users["owner"], type="MINER_RESTART", targets=[farm.miners[("site-a", "own")].pk], dedupe_key="race"
    )
    assert (again.created, again.command.pk) == (False, winner.pk)
    assert Command.objects.count() == 1


def test_the_expiry_job_is_scheduled_on_the_housekeeping_queue():
    # Created by sync_schedules (which migration 0002 runs); called here because a transactional test
    # earlier on the same worker may have flushed the rows the migrations made.
    from django_celery_beat.models import PeriodicTask

    from hashinsight.events.schedules import sync_schedules

    PeriodicTask.objects.filter(task="commands.expire").delete()
    sync_schedules()
    job = PeriodicTask.objects.get(task="commands.expire")
    assert (job.queue, job.interval.every) == ("housekeeping", 30)
