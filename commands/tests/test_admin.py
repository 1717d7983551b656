"""Django admin approvals: the pending list shows risk, targets, proposer and expiry; approve and deny go
through the services (same rules), and a site owner decides only on commands of sites they manage."""

from __future__ import annotations

import pytest

from commands import services
from commands.models import Command, CommandStatus, SiteApprovalPolicy
from sites.services import site_grant

S = CommandStatus
pytestmark = pytest.mark.django_db
LIST = "/admin/commands/command/"


def propose(farm, who="owner", site="site-a", type="MINER_RESTART", params=None):
    miner = farm.miners[(site, "own")]
    return services.command_propose(actor=farm.users[who], type=type, params=params, targets=[miner.pk]).command


def test_the_pending_list_shows_risk_proposer_and_expiry_and_only_visible_sites(client, farm):
    on_a, on_b = propose(farm), propose(farm, site="site-b")
    propose(farm, type="SET_FAN", params={"percent": 70})  # LOW: auto-approved, not pending
    client.force_login(farm.users["siteowner_a"])
    response = client.get(LIST, {"approval": "pending"})
    assert response.status_code == 200
    shown = {c.pk for c in response.context["cl"].result_list}
    assert shown == {on_a.pk}
    page = response.content.decode()
    assert "MEDIUM" in page and "owner (User)" in page and "0 / 1" in page
    detail = client.get(f"{LIST}{on_a.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert farm.miners[("site-a", "own")].serial in body and "contribution" in body
    assert client.get(f"{LIST}{on_b.pk}/change/").status_code == 404


def test_approve_action_goes_through_the_service_and_skips_sites_the_owner_only_views(client, farm):
    site_grant(user=farm.users["siteowner_a"], site=farm.site_b, manage=False)
    on_a, on_b = propose(farm), propose(farm, site="site-b")
    own = propose(farm, who="siteowner_a")
    client.force_login(farm.users["siteowner_a"])
    response = client.post(LIST, {"action": "approve", "_selected_action": [on_a.pk, on_b.pk, own.pk]}, follow=True)
    assert response.status_code == 200
    statuses = dict(Command.objects.values_list("pk", "status"))
    assert statuses == {on_a.pk: S.APPROVED, on_b.pk: S.PENDING_APPROVAL, own.pk: S.PENDING_APPROVAL}
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 approval" in m for m in messages)
    assert any(f"#{own.pk}" in m and "own command" in m for m in messages)
    assert any(f"#{on_b.pk}" in m for m in messages)


def test_critical_commands_are_refused_to_a_site_owner_in_admin(client, farm):
    SiteApprovalPolicy.objects.create(site=farm.site_a, min_tiers={"MINER_RESTART": "CRITICAL"})
    command = propose(farm)
    client.force_login(farm.users["siteowner_a"])
    client.post(LIST, {"action": "approve", "_selected_action": [command.pk]})
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL and not command.approvals.exists()


def test_deny_action_needs_a_reason(client, farm):
    command = propose(farm)
    client.force_login(farm.users["admin"])
    client.post(LIST, {"action": "deny", "_selected_action": [command.pk], "reason": ""})
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL
    client.post(LIST, {"action": "deny", "_selected_action": [command.pk], "reason": "maintenance window"})
    command.refresh_from_db()
    assert (command.status, command.status_reason) == (S.DENIED, "maintenance window")


def test_commands_cannot_be_added_or_deleted_in_admin_and_clients_see_none(client, farm):
    command = propose(farm)
    client.force_login(farm.users["owner"])
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{command.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Command.objects.filter(pk=command.pk).exists()
    client.force_login(farm.users["client_x"])
    assert client.get(LIST).status_code in (302, 403)


def test_policy_form_refuses_unknown_types_and_tiers(client, farm):
    client.force_login(farm.users["owner"])
    url = "/admin/commands/siteapprovalpolicy/add/"
    base = {"site": farm.site_a.pk, "auto_approve_rules": "[]", "fan_floor_pct": 30, "chip_limit_c": 85}
    bad = client.post(url, {**base, "min_tiers": '{"FLY": "HIGH"}'})
    assert bad.status_code == 200 and not SiteApprovalPolicy.objects.exists()
    bad = client.post(url, {**base, "min_tiers": '{"*": "SEVERE"}'})
    assert bad.status_code == 200 and not SiteApprovalPolicy.objects.exists()
    ok = client.post(url, {**base, "min_tiers": '{"reboot": "HIGH"}'})
    assert ok.status_code == 302
    assert SiteApprovalPolicy.objects.get().min_tiers == {"reboot": "HIGH"}


def _run(command, ok_serials, before=None):
    """Dispatch ``command`` to a fresh device of its site and acknowledge it (ok for ``ok_serials``)."""
    from commands import dispatch
    from telemetry import devices

    _row, code = devices.enrollment_code_create(site=command.site)
    device, _token, _secret = devices.device_register(code=code, name=f"edge-{command.pk}", version="1.0.0")
    command = services.command_mark_dispatched(command=command, device=device)
    results = [
        {"miner": t.serial, "status": "ok" if t.serial in ok_serials else "failed", "message": "done",
         "before_state": before}
        for t in command.targets.all()
    ]  # fmt: skip
    command, _ = services.command_acknowledge(
        command_id=command.pk, device=device, nonce=dispatch.dispatch_nonce(command), results=results,
        visible=dispatch.acknowledgeable(device),
    )  # fmt: skip
    return command


def test_the_change_page_shows_per_target_results_verification_and_rollbacks(client, farm):
    from commands.models import CommandTarget

    miner = farm.miners[("site-a", "own")]
    command = _run(propose(farm, type="SET_FAN", params={"percent": 70}), {miner.serial}, {"fan_percent": 55})
    CommandTarget.objects.filter(command=command).update(verification="not_seen", verification_detail="fan still 55")
    Command.objects.filter(pk=command.pk).update(verification="not_seen")
    client.force_login(farm.users["admin"])
    listing = client.get(LIST, {"verification": "not_seen"})
    assert [c.pk for c in listing.context["cl"].result_list] == [command.pk]
    page = client.get(f"{LIST}{command.pk}/change/").content.decode()
    assert "fan still 55" in page and "Not seen" in page and "Succeeded" in page and f"edge-{command.pk}" in page


def test_rollback_action_goes_through_the_service(client, farm):
    miner = farm.miners[("site-a", "own")]
    done = _run(propose(farm, type="SET_FAN", params={"percent": 70}), {miner.serial}, {"fan_percent": 55})
    restart = propose(farm, who="siteowner_a")
    services.command_approve(command=restart, actor=farm.users["owner"])
    restart = _run(restart, set())  # FAILED, and a restart has no inverse anyway
    client.force_login(farm.users["siteowner_a"])
    response = client.post(
        LIST, {"action": "rollback", "_selected_action": [done.pk, restart.pk], "reason": "too loud"}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 rollback" in m for m in messages) and any(f"#{restart.pk}" in m for m in messages)
    (rollback,) = Command.objects.filter(rollback_of=done)
    assert (rollback.params, rollback.proposer) == ({"percent": 55}, farm.users["siteowner_a"])
    assert not Command.objects.filter(rollback_of=restart).exists()
    page = client.get(f"{LIST}{done.pk}/change/").content.decode()
    assert f"#{rollback.pk} SET_FAN" in page
