"""Reads of invoices and what hangs off them (statement rows, credit notes, payments), already restricted to what a
user may see. Pages, API views and exports read through here; none filters invoices on its own.

The rule, in one place (module FINANCE, then ``sites.selectors.scope_of`` on the invoice's ``site_id`` /
``customer_id``):
- OWNER and ADMIN (FINANCE full) see every invoice and may change them (``may_manage``);
- a MINING_SITE_OWNER (FINANCE read) sees the invoices of the sites granted to them, read-only;
- a CLIENT (FINANCE read, own) sees only the invoices of its own hosting clients, and only once they are issued:
  a draft is the operator's working copy and a void draft never existed for the client;
- a CUSTOMER or GUEST (no FINANCE) sees none.

A hidden invoice and a missing one answer the same ``DomainError("not_found", status=404)``. Everything below an
invoice (rows, credit notes, payments) is reached through a visible invoice only, never by its own id.

Costs: ``invoice_list`` is one queryset (plus the grant ids, read once per request and cached on the user);
``invoice_get`` one query more."""

from __future__ import annotations

from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Collate
from django.utils.translation import gettext as _

from commands.models import Command
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing.models import ISSUED_STATUSES, CreditNote, Invoice, Payment, StatementRow
from hashinsight.core.errors import DomainError
from sites.selectors import scope_of

MAX_ID = 2**63 - 1  # a bigger id matches no row, and the database driver would refuse it (a 500, not a 404)


def _not_found() -> DomainError:
    return DomainError("not_found", _("No such invoice."), status=404)


def invoice_list(*, user) -> QuerySet[Invoice]:
    """The invoices ``user`` may see (see the module docstring), unordered beyond the model's default."""
    if not user.is_authenticated or not has_access(user, Module.FINANCE, Access.READ):
        return Invoice.objects.none()
    scope = scope_of(user)
    qs = Invoice.objects.all()
    q = scope.q()
    if q is not None:
        qs = qs.filter(q)
    if scope.kind == "customers":
        qs = qs.filter(status__in=ISSUED_STATUSES)
    return qs


def invoice_get(*, user, pk: int) -> Invoice:
    """One invoice ``user`` may see, with its client, contract and site; else a 404 ``DomainError``."""
    if not isinstance(pk, int) or pk < 1 or pk > MAX_ID:
        raise _not_found()
    invoice = invoice_list(user=user).select_related("customer", "contract", "site").filter(pk=pk).first()
    if invoice is None:
        raise _not_found()
    return invoice


def may_manage(*, user) -> bool:
    """Whether ``user`` may build, issue, void, credit, record payments and hold (FINANCE full). The invoice itself
    must already have come through ``invoice_get`` for this user."""
    return user.is_authenticated and has_access(user, Module.FINANCE, Access.FULL)


def statement_rows(*, invoice: Invoice) -> QuerySet[StatementRow]:
    """The statement of a visible invoice, in the canonical file's order: day, then serial in binary order (the
    same on every database, ``hashinsight.billing.statements``)."""
    serial = Collate("serial", "C") if connections[StatementRow.objects.db].vendor == "postgresql" else "serial"
    return StatementRow.objects.filter(invoice_id=invoice.pk).order_by("day", serial)


def statement_rows_filtered(
    *, invoice: Invoice, serial: str | None = None, day=None, downtime_only: bool = False
) -> QuerySet[StatementRow]:
    """``statement_rows`` with the filters the pages and the API offer: a serial (exact, or a prefix ending in
    ``*``), a day, and only rows with any downtime, curtailment or no telemetry."""
    qs = statement_rows(invoice=invoice)
    if serial:
        qs = qs.filter(serial__startswith=serial[:-1]) if serial.endswith("*") else qs.filter(serial=serial)
    if day is not None:
        qs = qs.filter(day=day)
    if downtime_only:
        qs = qs.filter(
            Q(downtime_operator_h__gt=0)
            | Q(downtime_client_h__gt=0)
            | Q(downtime_excluded_h__gt=0)
            | Q(curtailed_h__gt=0)
            | Q(reported=False)
        )
    return qs


def invoice_credit_notes(*, invoice: Invoice) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(invoice_id=invoice.pk).order_by("issued_at", "pk")


def invoice_payments(*, invoice: Invoice) -> QuerySet[Payment]:
    return Payment.objects.filter(invoice_id=invoice.pk).order_by("received_at", "pk")


def statement_has_command(*, invoice: Invoice, command_id: int) -> bool:
    """Whether a command is named by a row of this invoice's statement (so its holder may read it through the
    statement, even without access to the commands pages). One query; JSON containment is not portable to SQLite,
    so the rows that name any command are scanned (a statement names few)."""
    rows = statement_rows(invoice=invoice).exclude(command_ids=[]).values_list("command_ids", flat=True)
    return any(command_id in (ids or ()) for ids in rows.iterator(chunk_size=2000))


def statement_command(*, invoice: Invoice, command_id: int) -> dict:
    """A command named by the statement, as the statement's reader may see it: what it was and when, and which of
    the statement's miner-days it explains (not its other targets, parameters or approvers). Else a 404."""
    if command_id > MAX_ID or not statement_has_command(invoice=invoice, command_id=command_id):
        raise DomainError("not_found", _("No such command in this statement."), status=404)
    command = Command.objects.filter(pk=command_id, site_id=invoice.site_id).first()
    if command is None:
        raise DomainError("not_found", _("No such command in this statement."), status=404)
    rows = statement_rows(invoice=invoice).exclude(command_ids=[]).values_list("serial", "day", "command_ids")
    days = [{"serial": s, "day": d.isoformat()} for s, d, ids in rows if command_id in (ids or ())]
    return {
        "id": command.pk, "type": command.command_type, "type_label": str(command.get_command_type_display()),
        "status": command.status, "status_label": str(command.get_status_display()),
        "created_at": command.created_at, "dispatched_at": command.dispatched_at, "finished_at": command.finished_at,
        "miner_days": days,
    }  # fmt: skip
