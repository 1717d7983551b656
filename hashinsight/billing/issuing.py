"""Issuing invoices and credit notes, and an issued invoice's status (module FINANCE).

- ``invoice_issue``: a draft gets its number (``INV-YYYYMM-NNNNN``, the month of the issue date, gap-free), issue
  and due dates (payment terms), the SHA-256 of its statement file (``statements``) and of its canonical document
  (the invoice, its lines and the statement's hash, ``invoice_document``), an ``invoice.issued`` event in the audit
  chain carrying both hashes, a proof leaf (``statement``), payment addresses and the month's SLA certificate.
- ``credit_note_issue``: the only way to lower what an issued invoice asks (``CN-YYYYMM-NNNNN``), at most its open
  balance; hashed, audited and recorded as a proof leaf like the invoice.
- ``refresh_status``: issued / partially paid / paid / overdue from the amounts and the due date (the payments part
  calls it after recording a payment; ``refresh_overdue`` is the daily sweep).
- ``void_draft``: a draft thrown away.

**Numbers are gap-free**: the next number is read and used under a lock held until the transaction ends (a
PostgreSQL advisory lock; SQLite has one writer at a time), so two issuers never take the same number and a
rolled-back issue leaves no hole.

**Immutability**: once issued, the sealed figures of an invoice, its lines and its statement rows never change. The
services refuse; and a guard on the models (``pre_save``/``pre_delete`` receivers registered below) raises for any
save or delete that would change them, whatever code path tries (bulk ``QuerySet.update`` bypasses signals: on
PostgreSQL a trigger would close that too, see the invoicing notes)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models.signals import pre_delete, pre_save
from django.utils import timezone
from django.utils.translation import gettext

from hashinsight.billing import certificates, payments, proofs
from hashinsight.billing.models import ISSUED_STATUSES, CreditNote, Invoice, InvoiceLine, StatementRow
from hashinsight.billing.statements import statement_sha256
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import actor_of, audit_append
from hashinsight.events.outbox import publish
from hashinsight.security.canonical import canonical_json

NUMBER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"hashinsight.billing.numbers").digest()[:8], "big", signed=True)
OPEN_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE)
ZERO = Decimal("0")
CENT = Decimal("0.01")

# Fields an issued invoice never changes (status, payments, credit notes, addresses and reminders still move).
FROZEN_FIELDS = (
    "number", "customer_id", "contract_id", "site_id", "period_start", "period_end", "currency", "subtotal",
    "credits", "prior_balance", "deposit_applied", "total", "energy_kwh", "miner_count", "uptime_pct",
    "sla_uptime_pct", "issue_date", "due_date", "issued_at", "content_sha256", "statement_sha256", "audit_event_id",
)  # fmt: skip


class InvoiceImmutable(DomainError):
    def __init__(self, message: str | None = None):
        super().__init__("invoice_immutable", message or gettext("An issued invoice cannot be changed: issue a "
                                                                 "credit note instead."), status=409)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Numbers and hashes


def _lock_numbers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NUMBER_LOCK_KEY])


def next_number(model, prefix: str, day: date) -> str:
    """``PREFIX-YYYYMM-NNNNN``: one more than the highest of that month (call inside the issuing transaction)."""
    _lock_numbers()
    stem = f"{prefix}-{day:%Y%m}-"
    last = model.objects.filter(number__startswith=stem).order_by("-number").values_list("number", flat=True).first()
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{stem}{n:05d}"


def _fixed(model, name: str, value):
    """A decimal field's value with the field's own places (the same text before and after a database round trip)."""
    if value is None:
        return None
    places = model._meta.get_field(name).decimal_places
    return format(Decimal(value).quantize(Decimal(1).scaleb(-places)), "f")


def invoice_document(invoice: Invoice) -> dict:
    """The canonical content of an issued invoice: what ``content_sha256`` is the SHA-256 of (canonical JSON)."""
    money = ("subtotal", "credits", "prior_balance", "deposit_applied", "total", "energy_kwh", "uptime_pct",
             "sla_uptime_pct")  # fmt: skip
    doc = {
        "format": "hashinsight-invoice/1",
        "number": invoice.number,
        "customer_id": invoice.customer_id,
        "client": invoice.customer.company,
        "contract": invoice.contract.number,
        "site_id": invoice.site_id,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "currency": invoice.currency,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "miner_count": invoice.miner_count,
        "statement_sha256": invoice.statement_sha256,
        "lines": [
            {
                "position": line.position, "kind": line.kind, "description": line.description,
                "quantity": _fixed(InvoiceLine, "quantity", line.quantity), "unit": line.unit,
                "unit_price": _fixed(InvoiceLine, "unit_price", line.unit_price),
                "amount": _fixed(InvoiceLine, "amount", line.amount),
            }
            for line in invoice.lines.order_by("position")
        ],
    }  # fmt: skip
    for name in money:
        doc[name] = _fixed(Invoice, name, getattr(invoice, name))
    return doc


def invoice_content_sha256(invoice: Invoice) -> str:
    return hashlib.sha256(canonical_json(invoice_document(invoice))).hexdigest()


def verify_invoice(invoice: Invoice) -> dict:
    """Recompute both hashes of an issued invoice: ``{"content": bool, "statement": bool}``."""
    return {
        "content": invoice_content_sha256(invoice) == invoice.content_sha256,
        "statement": statement_sha256(invoice) == invoice.statement_sha256,
    }


def credit_note_document(note: CreditNote) -> dict:
    return {
        "format": "hashinsight-credit-note/1",
        "number": note.number,
        "invoice": note.invoice.number,
        "invoice_content_sha256": note.invoice.content_sha256,
        "customer_id": note.invoice.customer_id,
        "amount": _fixed(CreditNote, "amount", note.amount),
        "currency": note.invoice.currency,
        "reason": note.reason,
        "issued_at": note.issued_at,
    }


def _changed(invoice: Invoice, previous: str | None) -> None:
    publish(
        "invoice.changed", aggregate=f"invoice:{invoice.pk}",
        payload={"invoice_id": invoice.pk, "customer_id": invoice.customer_id, "site_id": invoice.site_id,
                 "status": invoice.status, "previous_status": previous, "number": invoice.number},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Services


@transaction.atomic(durable=True)
def invoice_issue(invoice: Invoice, *, actor) -> Invoice:
    """Issue a draft (module docstring). Refused (409) for anything but a draft."""
    invoice = Invoice.objects.select_for_update().select_related("customer", "contract").get(pk=invoice.pk)
    if invoice.status != Invoice.Status.DRAFT:
        raise DomainError("invoice_not_draft", gettext("Only a draft invoice can be issued."), status=409)
    now = timezone.now()
    invoice.number = next_number(Invoice, "INV", now.date())
    invoice.issue_date = now.date()
    invoice.due_date = now.date() + timedelta(days=invoice.contract.payment_terms_days)
    invoice.issued_at, invoice.issued_by = now, (actor if getattr(actor, "pk", None) else None)
    invoice.statement_sha256 = statement_sha256(invoice)
    invoice.content_sha256 = invoice_content_sha256(invoice)
    actor_type, actor_id = actor_of(actor)
    event = audit_append(
        event_type="invoice.issued", actor_type=actor_type, actor_id=actor_id, reference=invoice.number,
        site=invoice.site_id,
        payload={"invoice_id": invoice.pk, "number": invoice.number, "customer_id": invoice.customer_id,
                 "content_sha256": invoice.content_sha256, "statement_sha256": invoice.statement_sha256,
                 "total": _fixed(Invoice, "total", invoice.total), "currency": invoice.currency},
    )  # fmt: skip
    invoice.audit_event_id = str(event.public_id)
    invoice.status = Invoice.Status.ISSUED
    invoice.save()
    proofs.record_leaf(
        kind="statement", object_id=invoice.pk, sha256=invoice.statement_sha256,
        customer_id=invoice.customer_id, site_id=invoice.site_id,
    )  # fmt: skip
    payments.assign_addresses(invoice)
    certificates.issue_certificate(invoice)
    invoice.refresh_from_db()
    refresh_status(invoice, publish_change=False)
    _changed(invoice, Invoice.Status.DRAFT)
    return invoice


@transaction.atomic(durable=True)
def void_draft(invoice: Invoice, *, actor) -> Invoice:
    """Throw a draft away (its statement rows are deleted; its lines stay for the record). A repeat is a no-op."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status == Invoice.Status.VOID:
        return invoice
    if invoice.status != Invoice.Status.DRAFT:
        raise DomainError("invoice_not_draft", gettext("Only a draft invoice can be voided."), status=409)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {StatementRow._meta.db_table} WHERE invoice_id = %s", [invoice.pk])  # noqa: S608
    invoice.status = Invoice.Status.VOID
    invoice.save(update_fields=["status", "updated_at"])
    _changed(invoice, Invoice.Status.DRAFT)
    return invoice


def parse_amount(value) -> Decimal:
    """A positive amount with at most two decimals (a 400 naming the field otherwise)."""
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite() or isinstance(value, bool | float):
        raise DomainError("invalid_amount", gettext("The amount is a decimal number."), details={"field": "amount"})
    if amount <= 0 or amount != amount.quantize(CENT) or amount >= Decimal("1e14"):
        raise DomainError(
            "invalid_amount", gettext("The amount is positive, with at most two decimals."), details={"field": "amount"}
        )
    return amount.quantize(CENT)


@transaction.atomic(durable=True)
def credit_note_issue(invoice: Invoice, *, amount, reason: str, actor) -> CreditNote:
    """A credit note of ``amount`` (≤ the open balance) against an issued invoice."""
    amount = parse_amount(amount)
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > 500 or "\x00" in reason:
        raise DomainError("invalid_reason", gettext("Give a reason (at most 500 characters)."),
                          details={"field": "reason"})  # fmt: skip
    invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)
    if invoice.status not in OPEN_STATUSES:
        raise DomainError("invoice_not_open", gettext("Credit notes are issued against open issued invoices."),
                          status=409)  # fmt: skip
    if amount > invoice.balance_due:
        raise DomainError(
            "amount_exceeds_balance", gettext("The amount is more than the invoice's open balance."),
            details={"field": "amount", "balance_due": str(invoice.balance_due)},
        )  # fmt: skip
    now = timezone.now()
    note = CreditNote(
        number=next_number(CreditNote, "CN", now.date()), invoice=invoice, amount=amount, reason=reason,
        issued_at=now, issued_by=actor if getattr(actor, "pk", None) else None,
    )  # fmt: skip
    note.content_sha256 = hashlib.sha256(canonical_json(credit_note_document(note))).hexdigest()
    actor_type, actor_id = actor_of(actor)
    event = audit_append(
        event_type="credit_note.issued", actor_type=actor_type, actor_id=actor_id, reference=note.number,
        site=invoice.site_id,
        payload={"number": note.number, "invoice_id": invoice.pk, "invoice": invoice.number,
                 "amount": _fixed(CreditNote, "amount", amount), "currency": invoice.currency,
                 "content_sha256": note.content_sha256},
    )  # fmt: skip
    note.audit_event_id = str(event.public_id)
    note.save(force_insert=True)
    proofs.record_leaf(
        kind="credit_note", object_id=note.pk, sha256=note.content_sha256,
        customer_id=invoice.customer_id, site_id=invoice.site_id,
    )  # fmt: skip
    previous = invoice.status
    invoice.amount_credited += amount
    invoice.save(update_fields=["amount_credited", "updated_at"])
    refresh_status(invoice, publish_change=False)
    _changed(invoice, previous)
    return note


def status_for(invoice: Invoice, *, today: date) -> str:
    """What an issued invoice's status should be: paid when nothing is left, overdue after the due date, partially
    paid once a payment came in, else issued."""
    if invoice.balance_due <= 0:
        return Invoice.Status.PAID
    if invoice.due_date and today > invoice.due_date:
        return Invoice.Status.OVERDUE
    if invoice.amount_paid > 0:
        return Invoice.Status.PARTIALLY_PAID
    return Invoice.Status.ISSUED


def refresh_status(invoice: Invoice, *, today: date | None = None, publish_change: bool = True) -> str:
    """Set an issued invoice's status from its amounts (call inside the transaction that changed them, after
    saving ``amount_paid``/``amount_credited``); drafts and void invoices are left alone. Publishes
    ``invoice.changed`` when the status moves."""
    if invoice.status not in ISSUED_STATUSES:
        return invoice.status
    new = status_for(invoice, today=today or timezone.now().date())
    if new != invoice.status:
        previous, invoice.status = invoice.status, new
        invoice.save(update_fields=["status", "updated_at"])
        if publish_change:
            _changed(invoice, previous)
    return invoice.status


def refresh_overdue(*, today: date | None = None) -> int:
    """Mark overdue the open invoices past their due date (the daily sweep); returns how many moved."""
    today = today or timezone.now().date()
    moved = 0
    ids = list(
        Invoice.objects.filter(
            status__in=(Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID), due_date__lt=today
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        with transaction.atomic():
            invoice = Invoice.objects.select_for_update().get(pk=pk)
            before = invoice.status
            if refresh_status(invoice, today=today) != before:
                moved += 1
    return moved


# ---------------------------------------------------------------------------------------------------------------
# The model guard


def _guard_invoice_save(sender, instance: Invoice, raw=False, update_fields=None, **kwargs):
    if raw or instance._state.adding or instance.pk is None:
        return
    fields = FROZEN_FIELDS if update_fields is None else [f for f in FROZEN_FIELDS if f.removesuffix("_id") in
                                                          update_fields or f in update_fields]  # fmt: skip
    old = Invoice.objects.filter(pk=instance.pk).values("status", *FROZEN_FIELDS).first()
    if old is None or old["status"] not in ISSUED_STATUSES:
        return
    if instance.status not in ISSUED_STATUSES:
        raise InvoiceImmutable(gettext("An issued invoice cannot go back to draft or be voided."))
    for name in fields:
        if getattr(instance, name) != old[name]:
            raise InvoiceImmutable()


def _guard_invoice_delete(sender, instance: Invoice, **kwargs):
    if Invoice.objects.filter(pk=instance.pk, status__in=ISSUED_STATUSES).exists():
        raise InvoiceImmutable()


def _guard_child(sender, instance, raw=False, **kwargs):
    if raw:
        return
    if Invoice.objects.filter(pk=instance.invoice_id, status__in=ISSUED_STATUSES).exists():
        raise InvoiceImmutable()


pre_save.connect(_guard_invoice_save, sender=Invoice, dispatch_uid="billing.invoice.immutable")
pre_delete.connect(_guard_invoice_delete, sender=Invoice, dispatch_uid="billing.invoice.undeletable")
for _model in (InvoiceLine, StatementRow):
    pre_save.connect(_guard_child, sender=_model, dispatch_uid=f"billing.{_model.__name__}.immutable.save")
    pre_delete.connect(_guard_child, sender=_model, dispatch_uid=f"billing.{_model.__name__}.immutable.delete")
