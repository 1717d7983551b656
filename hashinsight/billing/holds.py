"""Putting a hosting client on hold for unpaid invoices, and releasing it: never silently.

``propose_hold`` does not stop a single miner itself. It *proposes* a HASHING_DISABLE command for the client's miners
at one site to the control plane (``commands.services.command_propose``), which scores its risk (HIGH: two distinct
approvers, never the proposer), records it in the audit chain and waits for approvals like any other command; the
miners stop only when it is approved and dispatched. The hold itself is audited (``billing.hold_proposed``, with the
overdue invoices and the reason) in the same transaction as the proposal. ``release_hold`` proposes HASHING_ENABLE
the same way (``billing.hold_release_proposed``).

Refusals: FINANCE FULL is needed (403); the client and site must be visible (404); a hold needs at least one overdue
invoice of the client (``not_overdue``, 409) and a reason; a site where the client has no miner is ``no_miners``.
A repeated proposal while the first is still live answers the same command (dedupe key
``billing-hold:<client>:<site>``) instead of a second one."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing.models import Invoice, InvoiceStatus
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import actor_of, audit_append

HOLD_TYPE = "HASHING_DISABLE"
RELEASE_TYPE = "HASHING_ENABLE"


@dataclass(frozen=True)
class HoldProposal:
    command: object  # commands.models.Command
    created: bool
    overdue_invoice_ids: tuple[int, ...] = ()

    @property
    def command_id(self) -> int:
        return self.command.pk

    def as_dict(self) -> dict:
        return {
            "command_id": self.command.pk,
            "command_status": self.command.status,
            "command_type": self.command.command_type,
            "risk_tier": self.command.risk_tier,
            "created": self.created,
            "overdue_invoices": list(self.overdue_invoice_ids),
            "command_url": f"/commands/{self.command.pk}/",
        }


def _require(actor, customer, site) -> None:
    from sites.selectors import customer_list, site_list

    if not has_access(actor, Module.FINANCE, Access.READ):
        raise DomainError("not_found", _("Not found."), status=404)
    if not customer_list(user=actor).filter(pk=customer.pk).exists():
        raise DomainError("not_found", _("Not found."), status=404)
    if not has_access(actor, Module.FINANCE, Access.FULL):
        raise DomainError("permission_denied", _("Your role may not put clients on hold."), status=403)
    if site is None or not site_list(user=actor).filter(pk=site.pk).exists():
        raise DomainError("site_not_found", _("Not found."), status=404, details={"field": "site"})


def _reason(reason) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or "\x00" in reason:
        raise DomainError("invalid", _("reason is text."), details={"field": "reason"})
    reason = reason.strip()
    if len(reason) > 300:
        raise DomainError("too_long", _("reason has at most 300 characters."), details={"field": "reason"})
    return reason


def _miner_ids(customer, site) -> list[int]:
    from miners.models import Miner, MinerStatus

    ids = list(
        Miner.objects.filter(customer_id=customer.pk, site_id=site.pk)
        .exclude(status=MinerStatus.RETIRED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        raise DomainError("no_miners", _("The client has no miners at this site."), details={"field": "site"})
    return ids


def overdue_invoices(customer) -> list[Invoice]:
    return list(Invoice.objects.filter(customer_id=customer.pk, status=InvoiceStatus.OVERDUE).order_by("due_date"))


def _propose(*, actor, customer, site, kind: str, dedupe: str, event_type: str, reason: str, invoices) -> HoldProposal:
    from commands.services import command_propose

    ids = _miner_ids(customer, site)
    with transaction.atomic():
        proposed = command_propose(
            actor=actor, type=kind, targets={"miner_ids": ids}, site_id=site.pk,
            dedupe_key=f"{dedupe}:{customer.pk}:{site.pk}",
        )  # fmt: skip
        actor_type, actor_id = actor_of(actor)
        audit_append(
            event_type=event_type, actor_type=actor_type, actor_id=actor_id, reference=f"customer:{customer.pk}",
            site=site.pk,
            payload={
                "customer_id": customer.pk, "site_id": site.pk, "command_id": proposed.command.pk,
                "command_type": kind, "created": proposed.created, "miners": len(ids), "reason": reason,
                "overdue_invoices": [i.number or str(i.pk) for i in invoices],
            },
        )  # fmt: skip
    return HoldProposal(proposed.command, proposed.created, tuple(i.pk for i in invoices))


def propose_hold(*, customer, site, actor, reason) -> HoldProposal:
    """Propose stopping the client's miners at ``site`` (see the module docstring)."""
    _require(actor, customer, site)
    reason = _reason(reason)
    if not reason:
        raise DomainError("required", _("Say why the client is put on hold."), details={"field": "reason"})
    invoices = overdue_invoices(customer)
    if not invoices:
        raise DomainError(
            "not_overdue", _("The client has no overdue invoice; a hold needs one."), status=409,
            details={"field": "customer"},
        )  # fmt: skip
    return _propose(
        actor=actor, customer=customer, site=site, kind=HOLD_TYPE, dedupe="billing-hold",
        event_type="billing.hold_proposed", reason=reason, invoices=invoices,
    )  # fmt: skip


def release_hold(*, customer, site, actor, reason="") -> HoldProposal:
    """Propose resuming the client's miners at ``site``."""
    _require(actor, customer, site)
    return _propose(
        actor=actor, customer=customer, site=site, kind=RELEASE_TYPE, dedupe="billing-release",
        event_type="billing.hold_release_proposed", reason=_reason(reason) or "released", invoices=[],
    )  # fmt: skip


def latest_hold_commands(customer_ids) -> dict[tuple[int, int], object]:
    """The newest hold or release command per (client, site), from the dedupe keys; one query."""
    from commands.models import Command

    keys = {}
    rows = (
        Command.objects.filter(dedupe_key__startswith="billing-")
        .order_by("-created_at", "-pk")
        .only("pk", "dedupe_key", "command_type", "status", "created_at", "site_id")
    )
    wanted = {int(c) for c in customer_ids}
    for command in rows[:2000]:
        parts = command.dedupe_key.split(":")
        if (
            len(parts) != 3
            or parts[0] not in ("billing-hold", "billing-release")
            or not all(p.isdigit() for p in parts[1:])
        ):
            continue
        key = (int(parts[1]), int(parts[2]))
        if key[0] in wanted and key not in keys:
            keys[key] = command
    return keys
