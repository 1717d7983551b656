"""Sales commissions (CRM's "commission for the sales owner per paid invoice").

When an invoice becomes paid, its contract's sales owner earns ``commission_pct`` % of what was paid towards it
(``amount_paid``, capped at what was due: an overpayment earns nothing), rounded half-up to the cent. Earned once:
``Commission.invoice`` is one-to-one, and ``commission_earn`` is a no-op when the row exists, so replays and a second
payment after the invoice was paid add nothing. A contract with no sales owner, or a 0 % rate, earns no row.

Who reads them: owners and administrators (FINANCE FULL) see every commission; any other user sees the ones
earned by themselves (a sales owner who is a site owner, say)."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing.models import Commission, Invoice, InvoiceStatus
from hashinsight.billing.money import round_money
from hashinsight.events.audit import audit_append


def commission_amount(paid: Decimal, rate_pct: Decimal) -> Decimal:
    return round_money(Decimal(paid) * Decimal(rate_pct) / Decimal(100))


def commission_earn(invoice: Invoice) -> Commission | None:
    """Inside the caller's transaction, on a paid invoice: the commission row (created once), or None."""
    if invoice.status != InvoiceStatus.PAID:
        return None
    existing = Commission.objects.filter(invoice_id=invoice.pk).first()
    if existing is not None:
        return existing
    contract = invoice.contract
    if contract.sales_owner_id is None or not contract.commission_pct or contract.commission_pct <= 0:
        return None
    due = invoice.total - invoice.amount_credited
    base = min(invoice.amount_paid, due) if due > 0 else Decimal("0.00")
    if base <= 0:
        return None
    try:
        with transaction.atomic():
            commission = Commission.objects.create(
                invoice=invoice, sales_owner_id=contract.sales_owner_id, rate_pct=contract.commission_pct,
                base_amount=round_money(base), amount=commission_amount(base, contract.commission_pct),
                currency=invoice.currency,
            )  # fmt: skip
    except IntegrityError:  # earned by a concurrent transaction a moment ago
        return Commission.objects.get(invoice_id=invoice.pk)
    audit_append(
        event_type="commission.earned", actor_type="system", actor_id="", reference=f"invoice:{invoice.pk}",
        site=invoice.site_id,
        payload={
            "commission_id": commission.pk, "invoice_id": invoice.pk, "invoice_number": invoice.number or "",
            "sales_owner_id": commission.sales_owner_id, "rate_pct": commission.rate_pct,
            "base_amount": commission.base_amount, "amount": commission.amount, "currency": commission.currency,
        },
    )  # fmt: skip
    return commission


def commission_list(*, user) -> QuerySet[Commission]:
    """Every commission for FINANCE FULL; a user's own otherwise (none for anonymous visitors)."""
    qs = Commission.objects.select_related("invoice", "invoice__customer", "sales_owner")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if has_access(user, Module.FINANCE, Access.FULL):
        return qs
    return qs.filter(sales_owner_id=user.pk)


@transaction.atomic
def commission_mark_paid_out(*, actor, commission_ids) -> int:
    """Owners and administrators mark commissions as paid out to their sales owners (audited); returns how many
    changed."""
    from hashinsight.core.errors import DomainError
    from hashinsight.events.audit import actor_of

    if not has_access(actor, Module.FINANCE, Access.FULL):
        raise DomainError("permission_denied", _("Your role may not pay out commissions."), status=403)
    ids = list(
        Commission.objects.select_for_update()
        .filter(pk__in=list(commission_ids), paid_out=False)
        .values_list("pk", flat=True)
    )
    if ids:
        Commission.objects.filter(pk__in=ids).update(paid_out=True)
        actor_type, actor_id = actor_of(actor)
        audit_append(
            event_type="commission.paid_out", actor_type=actor_type, actor_id=actor_id, reference="commissions",
            payload={"commission_ids": ids},
        )  # fmt: skip
    return len(ids)
