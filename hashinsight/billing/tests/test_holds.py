"""Holds go through a proposed command, never a dispatched one (owner: payments)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commands.models import Command, CommandStatus
from hashinsight.billing import holds
from hashinsight.billing.models import InvoiceStatus
from hashinsight.billing.tests.factories_payments import issued_invoice
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent
from hashinsight.tests.factories import HostingContractFactory


@pytest.fixture
def overdue_x(farm):
    return issued_invoice(
        contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a), status=InvoiceStatus.OVERDUE,
        due_date=timezone.now().date() - timedelta(days=10),
    )  # fmt: skip


def test_a_hold_is_a_proposed_high_risk_command_waiting_for_approvals(farm, overdue_x):
    owner = farm.users["owner"]
    result = holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=owner, reason="Invoice 10 days late")
    command = Command.objects.get(pk=result.command_id)
    assert command.command_type == "HASHING_DISABLE"
    assert command.status == CommandStatus.PENDING_APPROVAL  # not approved, not dispatched
    assert command.approvals_required == 2 and command.proposer == owner
    assert command.dedupe_key == f"billing-hold:{farm.client_x.pk}:{farm.site_a.pk}"
    targets = set(command.targets.values_list("miner_id", flat=True))
    assert targets == {farm.miners[("site-a", "client-x")].pk}  # the client's miners at that site only
    event = AuditEvent.objects.get(event_type="billing.hold_proposed")
    assert event.payload["command_id"] == command.pk and event.payload["overdue_invoices"] == [overdue_x.number]
    assert event.payload["reason"] == "Invoice 10 days late"
    assert AuditEvent.objects.filter(event_type="command.proposed").count() == 1
    # Proposing again while it is live answers the same command.
    again = holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=owner, reason="again")
    assert again.command_id == command.pk and not again.created
    assert Command.objects.count() == 1
    assert result.as_dict()["command_url"] == f"/commands/{command.pk}/"


def test_no_hold_without_an_overdue_invoice_or_a_reason(farm):
    owner = farm.users["owner"]
    issued_invoice(contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a))  # issued, not late
    with pytest.raises(DomainError) as exc:
        holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=owner, reason="late")
    assert (exc.value.code, exc.value.status) == ("not_overdue", 409)
    with pytest.raises(DomainError) as exc:
        holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=owner, reason="  ")
    assert exc.value.code == "required"
    assert Command.objects.count() == 0


def test_release_proposes_hashing_enable(farm, overdue_x):
    owner = farm.users["owner"]
    result = holds.release_hold(customer=farm.client_x, site=farm.site_a, actor=owner, reason="paid")
    command = Command.objects.get(pk=result.command_id)
    assert command.command_type == "HASHING_ENABLE"
    assert command.status in (CommandStatus.PENDING_APPROVAL, CommandStatus.APPROVED)  # LOW: the site's rules decide
    assert command.status != CommandStatus.DISPATCHED
    assert AuditEvent.objects.filter(event_type="billing.hold_release_proposed").count() == 1


def test_hold_permissions(farm, overdue_x):
    with pytest.raises(DomainError) as exc:
        holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=farm.users["client_x"], reason="x")
    assert exc.value.status == 403
    with pytest.raises(DomainError) as exc:
        holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=farm.users["client_y"], reason="x")
    assert exc.value.status == 404
    with pytest.raises(DomainError) as exc:
        holds.propose_hold(customer=farm.client_x, site=farm.site_a, actor=farm.users["siteowner_a"], reason="x")
    assert exc.value.status == 403
    assert Command.objects.count() == 0


def test_hold_api_answers_the_proposed_command(api, farm, overdue_x):
    api.force_authenticate(farm.users["admin"])
    url = f"/api/v1/customers/{farm.client_x.pk}/hold"
    r = api.post(url, {"site": farm.site_a.pk, "reason": "late"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["command_type"] == "HASHING_DISABLE" and body["command_status"] == "PENDING_APPROVAL"
    assert body["command_url"] == f"/commands/{body['command_id']}/"
    assert api.post(url, {"site": farm.site_a.pk, "reason": "late"}, format="json").status_code == 200
    assert api.post(url, {"site": "a", "reason": "late"}, format="json").json()["error_code"] == "invalid"
    assert api.post(url, {"site": 999999, "reason": "late"}, format="json").status_code == 404
    r = api.delete(url, {"site": farm.site_a.pk}, format="json")
    assert r.status_code == 201 and r.json()["command_type"] == "HASHING_ENABLE"
    api.force_authenticate(farm.users["client_y"])
    assert api.post(url, {"site": farm.site_a.pk, "reason": "x"}, format="json").status_code == 404
    api.force_authenticate(farm.users["client_x"])
    assert api.post(url, {"site": farm.site_a.pk, "reason": "x"}, format="json").status_code == 403
    assert Command.objects.count() == 2
