"""CURTAIL on the server: the plan frozen per target at proposal (soft power targets, least efficient first, before
hard stops; hard mode stops only), shown in the preview; not sent before its window starts (``not_before``) and
expiring after it; the envelope's targets as {serial, action, power_w}; the edge's restore report at the window's
end accepted once (identical resend a no-op, anything else 409)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from commands import dispatch, services
from commands.models import Command, CommandStatus
from edge.signing import key_from_secret, signature_matches
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import MinerFactory, MinerModelFactory
from telemetry import devices

S = CommandStatus
POLL = "/api/edge/v1/commands/poll"
pytestmark = pytest.mark.django_db


@pytest.fixture
def edge(farm):
    _row, code = devices.enrollment_code_create(site=farm.site_a)
    device, token, secret = devices.device_register(code=code, name="collector", version="1.0.0")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return device, client, secret


@pytest.fixture
def miners(farm):
    """Three S21 (17.5 J/TH) and one S19 (3,250 W / 95 TH/s ≈ 34 J/TH: the least efficient), all live."""
    from telemetry.models import LiveStatus

    s19 = MinerModelFactory(code="antminer-s19-95t", name="Antminer S19", hashrate_ths=Decimal(95), power_w=3250)
    found = [
        farm.miners[("site-a", "own")],
        MinerFactory(zone=farm.zone_a, site=farm.site_a),
        MinerFactory(zone=farm.zone_a, site=farm.site_a),
        MinerFactory(zone=farm.zone_a, site=farm.site_a, model=s19),
    ]
    now = timezone.now()
    for miner in found:
        LiveStatus.objects.create(
            miner=miner, site_id=miner.site_id, last_seen=now, status="online", updated_at=now,
            power_w=float(miner.model.power_w),
        )  # fmt: skip
    return found


def window(minutes_from_now=-1, hours=2, **extra):
    now = timezone.now()
    start = now + timedelta(minutes=minutes_from_now)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(), **extra}


def curtail(farm, miners, params, *, approve=True, **kw):
    command = services.command_propose(
        actor=farm.users["siteowner_a"], type="CURTAIL", params=params, targets=[m.pk for m in miners], **kw
    ).command
    if approve and command.status == S.PENDING_APPROVAL:
        services.command_approve(command=command, actor=farm.users["owner"])
        command.refresh_from_db()
    return command


def actions(command) -> dict:
    return {t.miner_id: t.action for t in command.targets.all()}


def test_soft_curtailment_throttles_the_least_efficient_first_and_stops_only_what_is_left(farm, miners):
    s19 = miners[3]
    s21a, s21b, s21c = sorted(miners[:3], key=lambda m: str(m.pk))  # equal J/TH: the engine's tie-break order
    # 2 kW: the S19 alone can give up half its 3.25 kW (1.625), then the first S21 the remaining 0.375.
    command = curtail(farm, miners, window(kw=2))
    plan = actions(command)
    assert plan[s19.pk] == {"action": "power_target", "power_w": 1625}
    assert plan[s21a.pk] == {"action": "power_target", "power_w": 3125}
    assert plan[s21b.pk] == plan[s21c.pk] == {"action": "none", "power_w": None}
    # 8 kW: every soft target (6.875 kW) is not enough; the rest is a hard stop, least efficient first.
    command = curtail(farm, miners, window(kw=8))
    plan = actions(command)
    assert plan[s19.pk] == {"action": "stop", "power_w": None}
    assert [plan[m.pk]["action"] for m in (s21a, s21b, s21c)] == ["power_target"] * 3
    stored = command.risk_breakdown["curtail_plan"]
    assert (stored["requested_kw"], stored["counts"]) == ("8.000", {"power_target": 3, "stop": 1, "none": 0})


def test_hard_curtailment_stops_only_and_percent_is_of_the_live_draw(farm, miners):
    command = curtail(farm, miners, window(percent=20, mode="hard"))  # 20 % of 13.75 kW = 2.75 kW
    plan = actions(command)
    assert plan[miners[3].pk] == {"action": "stop", "power_w": None}  # the S19's 3.25 kW is enough
    assert all(plan[m.pk]["action"] == "none" for m in miners[:3])
    assert command.risk_tier in ("HIGH", "CRITICAL")  # a hard curtailment is at least HIGH


def test_the_preview_shows_the_plan(api, farm, miners):
    api.force_authenticate(farm.users["siteowner_a"])
    body = {"type": "CURTAIL", "params": window(kw=2), "targets": [m.pk for m in miners]}
    preview = api.post("/api/v1/commands/preview", body, format="json")
    assert preview.status_code == 200, preview.content
    plan = preview.json()["curtail_plan"]
    assert (plan["mode"], plan["requested_kw"], plan["planned_kw"], plan["shortfall_kw"]) == (
        "soft", "2.000", "2.000", "0.000"
    )  # fmt: skip
    assert plan["counts"] == {"power_target": 2, "stop": 0, "none": 2}
    rows = {row["serial"]: row for row in plan["targets"]}
    assert rows[miners[3].serial]["action"] == "power_target" and rows[miners[3].serial]["power_w"] == 1625
    assert rows[miners[3].serial]["saved_kw"] == "1.625"
    assert sorted(rows[m.serial]["saved_kw"] for m in miners[:3]) == ["0.000", "0.000", "0.375"]
    assert not Command.objects.exists()
    other = api.post("/api/v1/commands/preview", {**body, "type": "SET_FAN", "params": {"percent": 80}}, format="json")
    assert "curtail_plan" not in other.json()


def test_a_curtailment_waits_for_its_window_and_expires_after_it_starts(farm, miners, edge):
    _device, client, _secret = edge
    later = curtail(farm, miners, window(minutes_from_now=30, kw=2))
    start = timezone.now() + timedelta(minutes=30)
    assert later.status == S.APPROVED and abs((later.not_before - start).total_seconds()) < 5
    assert later.expires_at > later.not_before + timedelta(minutes=59)  # an hour after the start
    assert client.get(POLL).json()["commands"] == []  # not yet
    Command.objects.filter(pk=later.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    (env,) = client.get(POLL).json()["commands"]
    assert env["command_id"] == later.pk


def test_curtailment_timing_refusals(farm, miners):
    with pytest.raises(DomainError) as info:
        curtail(farm, miners, window(minutes_from_now=8 * 24 * 60, kw=1))
    assert info.value.code == "window_too_far"
    with pytest.raises(DomainError) as info:
        curtail(farm, miners, window(minutes_from_now=120, kw=1), expires_at=timezone.now() + timedelta(minutes=30))
    assert info.value.code == "invalid_expiry"
    with pytest.raises(DomainError) as info:
        curtail(farm, miners, {**window(kw=1), "end": (timezone.now() - timedelta(minutes=1)).isoformat()})
    assert info.value.code in ("window_in_past", "end_before_start")
    assert not Command.objects.exists()


def test_the_envelope_carries_each_targets_action_and_is_signed(farm, miners, edge):
    _device, client, secret = edge
    command = curtail(farm, miners, window(kw=2))
    (env,) = client.get(POLL).json()["commands"]
    assert env["command_id"] == command.pk and env["type"] == "CURTAIL"
    assert env["targets"] == [
        {"serial": t.serial, "action": t.action["action"], "power_w": t.action["power_w"]}
        for t in command.targets.order_by("id")
    ]
    assert {t["action"] for t in env["targets"]} == {"power_target", "none"}
    assert signature_matches(env, env["signature"], key_from_secret(secret))
    other = services.command_propose(
        actor=farm.users["siteowner_a"], type="SET_FAN", params={"percent": 80}, targets=[miners[0].pk]
    ).command
    (plain,) = client.get(POLL).json()["commands"]
    assert plain["command_id"] == other.pk and plain["targets"] == [miners[0].serial]


def ack(client, command, results, **extra):
    command.refresh_from_db()
    body = {"nonce": dispatch.dispatch_nonce(command), "results": results, **extra}
    return client.post(f"/api/edge/v1/commands/{command.pk}/ack", body, format="json")


def test_the_restore_report_is_accepted_once_and_an_identical_resend_changes_nothing(farm, miners, edge):
    _device, client, _secret = edge
    command = curtail(farm, miners, window(kw=2))
    client.get(POLL)
    changed = [t.serial for t in command.targets.all() if t.action["action"] != "none"]
    early = ack(client, command, [{"miner": s, "status": "ok"} for s in changed], phase="restore")
    assert early.status_code == 409 and early.json()["error_code"] == "restore_not_expected"

    applied = ack(client, command, [{"miner": m.serial, "status": "ok"} for m in miners])
    assert applied.status_code == 200 and applied.json()["status"] == S.COMPLETED
    restore = [{"miner": changed[0], "status": "ok"}, {"miner": changed[1], "status": "failed", "message": "busy"}]
    first = ack(client, command, restore, phase="restore")
    assert first.status_code == 200 and first.json() == {
        "command_id": command.pk,
        "status": "COMPLETED",
        "changed": True,
    }
    by_serial = {t.serial: t.action["restore"] for t in command.targets.all()}
    assert by_serial[changed[0]]["status"] == "ok" and by_serial[changed[1]]["message"] == "busy"
    untouched = next(m.serial for m in miners if m.serial not in changed)
    assert by_serial[untouched]["status"] == "skipped"  # its part was "none": nothing to restore
    assert command.targets.get(serial=changed[0]).action["action"] == "power_target"  # the plan stays
    event = AuditEvent.objects.get(reference=f"command:{command.pk}", event_type="command.curtail_restored")
    assert (event.actor_type, event.payload["ok"], event.payload["failed"], event.payload["skipped"]) == (
        "device", 1, 1, 2
    )  # fmt: skip
    outbox = OutboxEvent.objects.filter(aggregate=f"command:{command.pk}", event_type="command.updated").count()

    again = ack(client, command, restore, phase="restore")
    assert again.status_code == 200 and again.json()["changed"] is False
    other = ack(client, command, [{"miner": changed[0], "status": "ok"}], phase="restore")
    assert other.status_code == 409 and other.json()["error_code"] == "already_restored"
    assert (
        AuditEvent.objects.filter(reference=f"command:{command.pk}", event_type="command.curtail_restored").count() == 1
    )
    assert OutboxEvent.objects.filter(aggregate=f"command:{command.pk}", event_type="command.updated").count() == outbox
    command.refresh_from_db()
    assert command.status == S.COMPLETED


def test_a_restore_report_is_refused_for_other_types_and_bad_bodies(farm, miners, edge):
    _device, client, _secret = edge
    fan = services.command_propose(
        actor=farm.users["siteowner_a"], type="SET_FAN", params={"percent": 80}, targets=[miners[0].pk]
    ).command
    client.get(POLL)
    assert ack(client, fan, [{"miner": miners[0].serial, "status": "ok"}]).status_code == 200
    refused = ack(client, fan, [{"miner": miners[0].serial, "status": "ok"}], phase="restore")
    assert refused.status_code == 409 and refused.json()["error_code"] == "restore_not_applicable"
    bad = ack(client, fan, [{"miner": miners[0].serial, "status": "ok"}], phase="undo")
    assert bad.status_code == 400
    wrong_nonce = client.post(
        f"/api/edge/v1/commands/{fan.pk}/ack", {"nonce": "x", "phase": "restore", "results": []}, format="json"
    )
    assert wrong_nonce.status_code == 409 and wrong_nonce.json()["error_code"] == "nonce_mismatch"


def test_a_miner_already_throttled_is_never_planned_below_half_its_nameplate(farm, miners):
    """Firmware refuses very low power targets (the simulator: under 40 % of nameplate); a miner already in low
    power mode drawing 60 % of its nameplate is throttled to 50 % of the nameplate at most, then stopped."""
    from telemetry.models import LiveStatus

    s19 = miners[3]
    nameplate_w = int(s19.model.power_w)
    LiveStatus.objects.filter(miner=s19).update(power_w=float(nameplate_w) * 0.6)
    small = curtail(farm, [s19], window(kw=0.2))  # 0.2 kW of 1.95 kW drawn: a throttle is enough
    assert actions(small)[s19.pk] == {"action": "power_target", "power_w": int(nameplate_w * 0.6) - 200}
    big = curtail(farm, [s19], window(kw=0.5, minutes_from_now=5))  # more than the 0.325 kW to half the nameplate
    assert actions(big)[s19.pk] == {"action": "stop", "power_w": None}
