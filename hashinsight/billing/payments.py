"""Payments against issued invoices (module FINANCE): the operator's pool of receiving addresses, recording bank
and crypto payments, their chain confirmations, and the invoice's paid / partially paid / overdue status.

The rules, in one place:
- An invoice takes one unused BTC and one unused USDT (TRC-20) address from the pool when it is issued
  (``assign_addresses``, inside the issuing transaction; rows locked with ``skip_locked`` so two issuers never take
  the same address). An empty pool never stops issuing: the invoice is issued without that address and the
  networks left without one are returned and logged, so the issuer can say so.
- ``payment_record``: a bank transfer carries its bank reference and counts at once; a crypto payment carries its
  transaction id (unique per method) and stays *pending* until the chain adapter (``hashinsight.billing.chain``)
  or an operator reports enough confirmations. Only counted payments (bank, confirmed) make ``amount_paid``.
  The amount is above 0 and at most the balance still open (balance due less pending crypto payments) unless
  ``allow_overpayment`` says otherwise; the invoice must be issued. A refusal is a ``DomainError`` naming the
  field, and nothing is written.
- Every change recomputes ``amount_paid`` from the payment rows (so a replay changes nothing), refreshes the status,
  appends ``payment.recorded`` (and ``invoice.changed`` when the invoice's figures or status moved) to the outbox and
  the event to the audit chain, in the same transaction; an invoice that becomes paid earns its sales owner's
  commission once (``hashinsight.billing.commissions``).

Reads go through ``payment_list``/``payment_get``, scoped by the invoice's site and client (``scope_of``): a hidden
payment or invoice is a 404; FINANCE FULL (owners, admins) is needed to write, the pool is theirs alone."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import GLOBAL_ROLES, Access, Module, has_access, role_of
from hashinsight.billing import addresses as address_codec
from hashinsight.billing import chain
from hashinsight.billing.models import (
    ISSUED_STATUSES,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAddress,
    PaymentMethod,
)
from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from hashinsight.events.audit import actor_of, audit_append
from sites.selectors import scope_of

logger = logging.getLogger(__name__)

NETWORKS = ("btc", "usdt")
CRYPTO = (PaymentMethod.BTC, PaymentMethod.USDT)
COUNTED = (Payment.ChainStatus.NOT_APPLICABLE, Payment.ChainStatus.CONFIRMED)
MAX_AMOUNT = Decimal("100000000000000")  # 10^14: the column holds 16 digits with 2 decimals
MAX_IMPORT = 1000
OPEN_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)
# Invoices in these currencies are payable 1:1 in USDT and priced in BTC from the USD market price.
USD_LIKE = ("USD", "USDT")


def _bad(code: str, field_name: str, message: str, *, status: int = 400, **details) -> DomainError:
    return DomainError(code, message, status=status, details={"field": field_name, **details})


def _not_found() -> DomainError:
    return DomainError("not_found", _("Not found."), status=404)


def _require_full(actor) -> None:
    if not has_access(actor, Module.FINANCE, Access.FULL):
        raise DomainError("permission_denied", _("Your role may not record or change payments."), status=403)


def _require_pool_manager(actor) -> None:
    if role_of(actor) not in GLOBAL_ROLES:
        raise DomainError("permission_denied", _("Only owners and administrators manage the address pool."), status=403)


def _actor_audit(actor) -> tuple[str, str]:
    return actor_of(actor)


# ---------------------------------------------------------------------------------------------------
# Reads


def invoice_list(*, user) -> QuerySet[Invoice]:
    """Invoices ``user`` sees: the statements part's selector (``billing.selectors.invoice_list``), one rule."""
    from hashinsight.billing import selectors

    return selectors.invoice_list(user=user)


def invoice_get(*, user, invoice_id) -> Invoice:
    try:
        invoice_id = int(invoice_id)
    except (TypeError, ValueError):
        raise _bad("invalid", "invoice", _("invoice is an invoice id (a number).")) from None
    if not 0 < invoice_id < 2**63:
        raise _not_found()
    invoice = invoice_list(user=user).select_related("customer", "site", "contract").filter(pk=invoice_id).first()
    if invoice is None:
        raise _not_found()
    return invoice


def payment_list(*, user) -> QuerySet[Payment]:
    """Payments of the invoices ``user`` sees, with their invoice, client and site; one query."""
    if not has_access(user, Module.FINANCE, Access.READ):
        return Payment.objects.none()
    qs = Payment.objects.select_related("invoice", "invoice__customer", "invoice__site", "recorded_by")
    q = scope_of(user).q(prefix="invoice__")
    return qs if q is None else qs.filter(q)


def payment_get(*, user, payment_id) -> Payment:
    try:
        payment_id = int(payment_id)
    except (TypeError, ValueError):
        raise _not_found() from None
    if not 0 < payment_id < 2**63:
        raise _not_found()
    payment = payment_list(user=user).filter(pk=payment_id).first()
    if payment is None:
        raise _not_found()
    return payment


def address_list(*, user) -> QuerySet[PaymentAddress]:
    """The pool, for owners and administrators only (others: none)."""
    if role_of(user) not in GLOBAL_ROLES:
        return PaymentAddress.objects.none()
    return PaymentAddress.objects.select_related("invoice")


def pool_counts() -> dict[str, dict[str, int]]:
    """Free and assigned addresses per network."""
    out = {n: {"free": 0, "assigned": 0} for n in NETWORKS}
    for network, assigned in PaymentAddress.objects.values_list("network", "assigned_at"):
        out.setdefault(network, {"free": 0, "assigned": 0})["assigned" if assigned else "free"] += 1
    return out


# ---------------------------------------------------------------------------------------------------
# The address pool


def btc_network() -> str:
    return getattr(settings, "BILLING_BTC_NETWORK", "mainnet")


@dataclass
class ImportResult:
    network: str
    created: list[str] = field(default_factory=list)
    already_known: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "network": self.network,
            "created": len(self.created),
            "already_known": self.already_known,
            "addresses": self.created,
        }


def _address_lines(raw) -> list[str]:
    if isinstance(raw, str):
        items = raw.replace(",", "\n").splitlines()
    elif isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
        items = list(raw)
    else:
        raise _bad("invalid", "addresses", _("addresses is text (one a line) or a list of strings."))
    return [line.strip() for line in items if line.strip() and not line.strip().startswith("#")]


@transaction.atomic
def address_import(*, actor, network, addresses) -> ImportResult:
    """Add addresses to the pool. Every line is checked first (BTC: Base58Check or Bech32/Bech32m of
    ``BILLING_BTC_NETWORK``; USDT: TRC-20); one bad line refuses the whole import (``invalid_address`` with each bad
    line and why) and nothing is added. Addresses already in the pool are skipped and named."""
    _require_pool_manager(actor)
    if network not in NETWORKS:
        raise _bad("invalid_choice", "network", _("network is btc or usdt."))
    lines = _address_lines(addresses)
    if not lines:
        raise _bad("required", "addresses", _("Give at least one address."))
    if len(lines) > MAX_IMPORT:
        raise _bad("too_many", "addresses", _("At most %(n)s addresses per import.") % {"n": MAX_IMPORT})
    clean, bad = [], []
    for number, line in enumerate(lines, start=1):
        if len(line) > 100:
            bad.append({"line": number, "address": line[:40] + "…", "code": "too_long", "reason": _("is too long")})
            continue
        try:
            clean.append(address_codec.validate(network, line, btc_network=btc_network()))
        except address_codec.AddressError as exc:
            bad.append({"line": number, "address": line, "code": exc.code, "reason": _(exc.message)})
    if bad:
        raise DomainError(
            "invalid_address",
            _("%(bad)s of %(all)s addresses are not valid %(network)s addresses; nothing was imported.")
            % {"bad": len(bad), "all": len(lines), "network": network.upper()},
            details={"field": "addresses", "invalid": bad},
        )
    unique = list(dict.fromkeys(clean))
    known = set(PaymentAddress.objects.filter(address__in=unique).values_list("address", flat=True))
    result = ImportResult(network=network, already_known=[a for a in unique if a in known])
    fresh = [a for a in unique if a not in known]
    PaymentAddress.objects.bulk_create([PaymentAddress(network=network, address=a) for a in fresh])
    result.created = fresh
    if fresh:
        actor_type, actor_id = _actor_audit(actor)
        audit_append(
            event_type="payment_addresses.imported", actor_type=actor_type, actor_id=actor_id,
            reference=network, payload={"network": network, "count": len(fresh), "addresses": fresh},
        )  # fmt: skip
    return result


def assign_addresses(invoice) -> tuple[str, ...]:
    """Called inside the issuing transaction: give the invoice an unused BTC and USDT address from the pool.

    Never fails issuing: a network whose pool is empty is left blank, logged, and returned (the networks that
    got no address; empty when both did), so the caller can warn. Rows are locked with ``skip_locked``: two
    invoices issued at once take different addresses, and neither waits for the other. An invoice that already has
    an address keeps it (a repeat call changes nothing). The networks given out are
    ``BILLING_CRYPTO_NETWORKS`` (default both)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("assign_addresses runs inside the issuing transaction")
    wanted = tuple(getattr(settings, "BILLING_CRYPTO_NETWORKS", NETWORKS))
    missing, changed = [], []
    now = timezone.now()
    for network in wanted:
        attr = f"{network}_address"
        if network not in NETWORKS or getattr(invoice, attr):
            continue
        row = (
            PaymentAddress.objects.select_for_update(skip_locked=True)
            .filter(network=network, invoice__isnull=True, assigned_at__isnull=True)
            .order_by("id")
            .first()
        )
        if row is None:
            logger.warning("invoice %s issued without a %s address: the pool is empty", invoice.pk, network)
            missing.append(network)
            continue
        row.invoice, row.assigned_at = invoice, now
        row.save(update_fields=["invoice", "assigned_at"])
        setattr(invoice, attr, row.address)
        changed.append(attr)
    if changed and invoice.pk:
        Invoice.objects.filter(pk=invoice.pk).update(**{a: getattr(invoice, a) for a in changed})
    return tuple(missing)


# ---------------------------------------------------------------------------------------------------
# Input checks (the API passes the body as sent; these name the field that is wrong)


def _money(value, field_name: str, *, places: int = 2, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise _bad("required", field_name, _("%(field)s is required.") % {"field": field_name})
    if isinstance(value, bool):
        raise _bad("invalid", field_name, _("%(field)s is a number.") % {"field": field_name})
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _bad("invalid", field_name, _("%(field)s is a number.") % {"field": field_name}) from None
    if not amount.is_finite():
        raise _bad("invalid", field_name, _("%(field)s is a finite number.") % {"field": field_name})
    if amount <= 0:
        raise _bad("not_positive", field_name, _("%(field)s is above 0.") % {"field": field_name})
    if amount >= MAX_AMOUNT:
        raise _bad("out_of_range", field_name, _("%(field)s is too large.") % {"field": field_name})
    if -amount.as_tuple().exponent > places:
        raise _bad(
            "too_precise",
            field_name,
            _("%(field)s has at most %(n)s decimal places.") % {"field": field_name, "n": places},
        )
    return amount.quantize(Decimal(1).scaleb(-places))


def _text(value, field_name: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad("invalid", field_name, _("%(field)s is text.") % {"field": field_name})
    value = value.strip()
    if "\x00" in value:
        raise _bad("invalid", field_name, _("%(field)s contains a NUL character.") % {"field": field_name})
    if len(value) > max_length:
        raise _bad(
            "too_long",
            field_name,
            _("%(field)s has at most %(n)s characters.") % {"field": field_name, "n": max_length},
        )
    return value


def _txid(method: str, value) -> str:
    txid = _text(value, "txid", 100).lower()
    if not txid:
        raise _bad("required", "txid", _("A crypto payment needs its transaction id."))
    if txid.startswith("0x"):
        txid = txid[2:]
    if not chain.TXID_RE.match(txid):
        raise _bad("invalid_txid", "txid", _("A transaction id is 64 hexadecimal characters."))
    return txid


def _when(value) -> datetime:
    now = timezone.now()
    if value is None or value == "":
        return now
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = parse_datetime(value.strip())
        except ValueError:
            when = None
        if when is None:
            raise _bad("invalid", "received_at", _("received_at is an ISO-8601 date and time."))
    else:
        raise _bad("invalid", "received_at", _("received_at is an ISO-8601 date and time."))
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_fixed_timezone(0))
    if when > now + timedelta(minutes=5):
        raise _bad("in_future", "received_at", _("received_at is not in the future."))
    return when


def _confirmations(value) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _bad("invalid", "confirmations", _("confirmations is a whole number."))
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or number < 0 or number > 10_000_000:
        raise _bad("invalid", "confirmations", _("confirmations is a whole number from 0."))
    return number


# ---------------------------------------------------------------------------------------------------
# Status


def status_for(invoice: Invoice, today=None) -> str:
    """The status the figures give: the invoicing part's rule (``issuing.status_for``), one rule for both parts."""
    from hashinsight.billing import issuing

    if invoice.status not in ISSUED_STATUSES:
        return invoice.status
    return issuing.status_for(invoice, today=today or timezone.now().date())


def counted_total(invoice_id: int) -> Decimal:
    total = Payment.objects.filter(invoice_id=invoice_id, chain_status__in=COUNTED).aggregate(s=Sum("amount"))["s"]
    return total or Decimal("0")


def pending_total(invoice_id: int) -> Decimal:
    total = Payment.objects.filter(invoice_id=invoice_id, chain_status=Payment.ChainStatus.PENDING).aggregate(
        s=Sum("amount")
    )["s"]
    return total or Decimal("0")


def publish_invoice_changed(invoice: Invoice, previous: str | None) -> None:
    outbox.publish(
        "invoice.changed",
        aggregate=f"invoice:{invoice.pk}",
        payload={
            "invoice_id": invoice.pk, "customer_id": invoice.customer_id, "site_id": invoice.site_id,
            "status": invoice.status, "previous_status": previous, "number": invoice.number or None,
        },
    )  # fmt: skip


def invoice_refresh(invoice: Invoice, *, today=None) -> bool:
    """Recompute ``amount_paid`` from the counted payments and the status from the figures, on a locked invoice
    (the caller's transaction). Publishes ``invoice.changed`` and earns the commission when the invoice became paid.
    True when something changed."""
    from hashinsight.billing import issuing

    previous_status, previous_paid = invoice.status, invoice.amount_paid
    invoice.amount_paid = counted_total(invoice.pk)
    if invoice.amount_paid != previous_paid:
        invoice.save(update_fields=["amount_paid", "updated_at"])
    issuing.refresh_status(invoice, today=today, publish_change=False)  # saves the status when it moves
    if (invoice.status, invoice.amount_paid) == (previous_status, previous_paid):
        return False
    publish_invoice_changed(invoice, previous_status)
    if invoice.status == InvoiceStatus.PAID:
        from hashinsight.billing.commissions import commission_earn

        commission_earn(invoice)
    return True


def _locked_invoice(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)


def _publish_payment(payment: Payment, invoice: Invoice) -> None:
    outbox.publish(
        "payment.recorded",
        aggregate=f"invoice:{invoice.pk}",
        payload={
            "payment_id": payment.pk, "invoice_id": invoice.pk, "customer_id": invoice.customer_id,
            "method": payment.method, "amount": payment.amount, "currency": payment.currency,
            "chain_status": payment.chain_status,
        },
    )  # fmt: skip


def _audit_payment(event_type: str, payment: Payment, invoice: Invoice, actor, **extra) -> None:
    actor_type, actor_id = _actor_audit(actor)
    audit_append(
        event_type=event_type, actor_type=actor_type, actor_id=actor_id, reference=f"payment:{payment.pk}",
        site=invoice.site_id,
        payload={
            "payment_id": payment.pk, "invoice_id": invoice.pk, "invoice_number": invoice.number or "",
            "customer_id": invoice.customer_id, "method": payment.method, "amount": payment.amount,
            "currency": payment.currency, "reference": payment.reference, "txid": payment.txid,
            "chain_status": payment.chain_status, "confirmations": payment.confirmations,
            "amount_paid": invoice.amount_paid, "invoice_status": invoice.status, **extra,
        },
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Writes


@transaction.atomic
def payment_record(
    *,
    actor,
    invoice: Invoice,
    method,
    amount,
    received_at=None,
    reference=None,
    txid=None,
    crypto_amount=None,
    confirmations=None,
    allow_overpayment: bool = False,
) -> Payment:
    """Record a payment (see the module docstring). ``invoice`` must be one the actor sees (the caller looked it
    up through ``invoice_get``)."""
    _require_full(actor)
    if method not in PaymentMethod.values:
        raise _bad(
            "invalid_choice",
            "method",
            _("method is one of %(choices)s.") % {"choices": ", ".join(PaymentMethod.values)},
        )
    value = _money(amount, "amount")
    when = _when(received_at)
    reference = _text(reference, "reference", 120)
    if not isinstance(allow_overpayment, bool):
        raise _bad("invalid", "allow_overpayment", _("allow_overpayment is true or false."))
    if method == PaymentMethod.BANK:
        if not reference:
            raise _bad("required", "reference", _("A bank transfer needs its bank reference."))
        if txid:
            raise _bad("unexpected_field", "txid", _("A bank transfer has no transaction id."))
        if crypto_amount not in (None, ""):
            raise _bad("unexpected_field", "crypto_amount", _("A bank transfer has no crypto amount."))
        clean_txid, crypto, seen = "", None, 0
    else:
        clean_txid = _txid(method, txid)
        crypto = _money(crypto_amount, "crypto_amount", places=8, allow_none=True)
        seen = _confirmations(confirmations)
    invoice = _locked_invoice(invoice.pk)
    if invoice.status not in OPEN_STATUSES and not (invoice.status == InvoiceStatus.PAID and allow_overpayment):
        if invoice.status == InvoiceStatus.PAID:
            raise _bad(
                "invoice_paid", "invoice", _("This invoice is paid; record an overpayment explicitly."), status=409
            )
        raise _bad(
            "invoice_not_issued", "invoice", _("Payments are recorded against issued invoices only."), status=409
        )
    if clean_txid and Payment.objects.filter(method=method, txid=clean_txid).exists():
        raise _bad("duplicate_txid", "txid", _("This transaction id is already recorded."), status=409)
    open_balance = invoice.balance_due - pending_total(invoice.pk)
    if value > open_balance and not allow_overpayment:
        raise _bad(
            "exceeds_balance", "amount",
            _("The amount is more than the open balance (%(balance)s %(currency)s); allow an overpayment explicitly "
              "to record it.") % {"balance": open_balance, "currency": invoice.currency},
            balance_due=str(invoice.balance_due), open_balance=str(open_balance),
        )  # fmt: skip
    status = Payment.ChainStatus.NOT_APPLICABLE if method == PaymentMethod.BANK else Payment.ChainStatus.PENDING
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                invoice=invoice, method=method, amount=value, currency=invoice.currency, received_at=when,
                reference=reference, txid=clean_txid, crypto_amount=crypto, chain_status=status,
                confirmations=seen, recorded_by=actor,
            )  # fmt: skip
    except IntegrityError:
        raise _bad("duplicate_txid", "txid", _("This transaction id is already recorded."), status=409) from None
    invoice_refresh(invoice)
    _publish_payment(payment, invoice)
    _audit_payment("payment.recorded", payment, invoice, actor, overpayment=value > open_balance)
    return payment


def _settle(payment: Payment, invoice: Invoice, *, status: str, confirmations: int, actor, reason: str) -> Payment:
    payment.chain_status, payment.confirmations = status, confirmations
    payment.save(update_fields=["chain_status", "confirmations"])
    invoice_refresh(invoice)
    _publish_payment(payment, invoice)
    event = "payment.confirmed" if status == Payment.ChainStatus.CONFIRMED else "payment.failed"
    _audit_payment(event, payment, invoice, actor, reason=reason)
    return payment


def _locked_pair(payment_id: int) -> tuple[Payment, Invoice]:
    # The invoice first, then the payment: the same order as payment_record (which locks the invoice only).
    invoice_id = Payment.objects.filter(pk=payment_id).values_list("invoice_id", flat=True).first()
    if invoice_id is None:
        raise _not_found()
    invoice = _locked_invoice(invoice_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    return payment, invoice


@transaction.atomic
def payment_confirm(*, actor, payment: Payment, confirmations=None, reason: str = "") -> Payment:
    """An operator's confirmation of a pending crypto payment (the offline adapter's way). With ``confirmations``
    below the threshold the count is stored and the payment stays pending; without it (or at the threshold) it is
    confirmed and counts. Confirming a confirmed payment changes nothing; a bank or failed one is refused."""
    _require_full(actor)
    reason = _text(reason, "reason", 300)
    given = None if confirmations in (None, "") else _confirmations(confirmations)
    payment, invoice = _locked_pair(payment.pk)
    if payment.chain_status == Payment.ChainStatus.CONFIRMED:
        return payment
    if payment.chain_status != Payment.ChainStatus.PENDING:
        raise _bad("not_pending", "payment", _("Only pending crypto payments are confirmed."), status=409)
    needed = chain.required_confirmations(payment.method)
    if given is not None and given < needed:
        payment.confirmations = given
        payment.save(update_fields=["confirmations"])
        _audit_payment("payment.confirmations", payment, invoice, actor, reason=reason, required=needed)
        return payment
    return _settle(
        payment, invoice, status=Payment.ChainStatus.CONFIRMED, confirmations=max(given or 0, needed),
        actor=actor, reason=reason or "confirmed by an operator",
    )  # fmt: skip


@transaction.atomic
def payment_reject(*, actor, payment: Payment, reason) -> Payment:
    """An operator's verdict that a pending crypto payment will not arrive (wrong txid, double spend)."""
    _require_full(actor)
    reason = _text(reason, "reason", 300)
    if not reason:
        raise _bad("required", "reason", _("Say why the payment is rejected."))
    payment, invoice = _locked_pair(payment.pk)
    if payment.chain_status == Payment.ChainStatus.FAILED:
        return payment
    if payment.chain_status != Payment.ChainStatus.PENDING:
        raise _bad("not_pending", "payment", _("Only pending crypto payments are rejected."), status=409)
    return _settle(
        payment, invoice, status=Payment.ChainStatus.FAILED, confirmations=payment.confirmations, actor=actor,
        reason=reason,
    )  # fmt: skip


def payment_observe(payment_id: int, adapter: chain.ChainAdapter) -> str:
    """The periodic check for one pending payment: ask the adapter, then confirm, fail or store the count.
    Locks with ``skip_locked`` (a payment held by an operator's confirmation is left for the next run); returns
    what happened (``confirmed``, ``failed``, ``pending``, ``skipped``)."""
    with transaction.atomic():
        row = (
            Payment.objects.select_for_update(skip_locked=True)
            .filter(pk=payment_id, chain_status=Payment.ChainStatus.PENDING)
            .values_list("method", "txid", "confirmations", "invoice_id", "invoice__btc_address",
                         "invoice__usdt_address")
            .first()
        )  # fmt: skip
    if row is None:
        return "skipped"
    method, txid, seen, _invoice_id, btc_address, usdt_address = row
    # The network call happens outside any transaction: no row is held while an explorer answers.
    found = adapter.observe(
        method=method, txid=txid, address=btc_address if method == "btc" else usdt_address,
        recorded_confirmations=seen,
    )  # fmt: skip
    if found.confirmations is None and not found.failed:
        return "pending"
    with transaction.atomic():
        payment, invoice = _locked_pair(payment_id)
        if payment.chain_status != Payment.ChainStatus.PENDING:
            return "skipped"
        if found.failed:
            _settle(payment, invoice, status=Payment.ChainStatus.FAILED, confirmations=payment.confirmations,
                    actor=None, reason=f"{adapter.name}: {found.detail}")  # fmt: skip
            return "failed"
        count = max(found.confirmations, 0)
        if count >= chain.required_confirmations(method):
            _settle(payment, invoice, status=Payment.ChainStatus.CONFIRMED, confirmations=count, actor=None,
                    reason=f"{adapter.name}: {found.detail}")  # fmt: skip
            return "confirmed"
        if count != payment.confirmations:
            payment.confirmations = count
            payment.save(update_fields=["confirmations"])
        return "pending"


def check_chain_payments(*, limit: int = 5000) -> dict:
    """Every pending crypto payment, oldest first, through the configured adapter."""
    adapter = chain.get_adapter()
    counts = {"confirmed": 0, "failed": 0, "pending": 0, "skipped": 0}
    ids = list(
        Payment.objects.filter(chain_status=Payment.ChainStatus.PENDING, method__in=CRYPTO)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    for payment_id in ids:
        counts[payment_observe(payment_id, adapter)] += 1
    return {"adapter": adapter.name, "checked": len(ids), **counts}


# ---------------------------------------------------------------------------------------------------
# Payment instructions (for the client's invoice page, the statements part)


def _btc_price() -> tuple[Decimal | None, str | None]:
    try:
        from intelligence.market import latest_snapshot

        snap = latest_snapshot()
        price = Decimal(snap.btc_price_usd)
        return (price if price > 0 else None), snap.date
    except Exception:  # instructions are shown without a BTC amount rather than not at all
        logger.warning("no BTC price for payment instructions", exc_info=True)
        return None, None


def bip21_uri(address: str, amount_btc: Decimal | None, *, label: str = "", message: str = "") -> str:
    """``bitcoin:<address>?amount=…&label=…&message=…`` (BIP-21; amount in BTC, no exponent)."""
    params = []
    if amount_btc is not None:
        params.append(f"amount={amount_btc:f}")
    if label:
        params.append(f"label={quote(label, safe='')}")
    if message:
        params.append(f"message={quote(message, safe='')}")
    return f"bitcoin:{address}" + ("?" + "&".join(params) if params else "")


def payment_instructions(invoice: Invoice) -> dict:
    """How to pay ``invoice`` (the caller has checked the reader may see it): the bank details
    (``BILLING_BANK_DETAILS``, with the invoice number as the transfer reference), its BTC address with the amount
    at the latest market price (rounded up to the satoshi) and a BIP-21 ``bitcoin:`` URI, its USDT (TRC-20) address
    with the amount (1:1 for USD and USDT invoices). Amounts are strings; a part that cannot be given is None, and
    ``notes`` says why."""
    balance = invoice.balance_due if invoice.balance_due > 0 else Decimal("0.00")
    number = invoice.number or f"draft {invoice.pk}"
    notes: list[str] = []
    bank_details = dict(getattr(settings, "BILLING_BANK_DETAILS", {}) or {})
    bank = {**bank_details, "reference": number} if bank_details else None
    if bank is None:
        notes.append("no_bank_details")
    btc = None
    if invoice.btc_address:
        price, price_date = (None, None)
        amount_btc = None
        if invoice.currency in USD_LIKE and balance > 0:
            price, price_date = _btc_price()
            if price is not None:
                amount_btc = (balance / price).quantize(Decimal("0.00000001"), rounding=ROUND_UP)
        if amount_btc is None and balance > 0:
            notes.append("no_btc_amount")
        label = getattr(settings, "BILLING_PAYEE_NAME", "HashInsight")
        btc = {
            "address": invoice.btc_address,
            "amount_btc": None if amount_btc is None else f"{amount_btc:f}",
            "price_usd": None if price is None else str(price),
            "price_date": price_date,
            "uri": bip21_uri(invoice.btc_address, amount_btc, label=label, message=f"Invoice {number}"),
            "confirmations": chain.required_confirmations("btc"),
        }
    else:
        notes.append("no_btc_address")
    usdt = None
    if invoice.usdt_address:
        usdt = {
            "address": invoice.usdt_address,
            "network": "TRC-20 (TRON)",
            "amount": str(balance) if invoice.currency in USD_LIKE else None,
            "confirmations": chain.required_confirmations("usdt"),
        }
        if invoice.currency not in USD_LIKE:
            notes.append("no_usdt_amount")
    else:
        notes.append("no_usdt_address")
    return {
        "invoice_id": invoice.pk,
        "number": number,
        "currency": invoice.currency,
        "balance_due": str(balance),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "status": invoice.status,
        "bank": bank,
        "btc": btc,
        "usdt": usdt,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------------
# Helpers for lists


def payment_filter(qs: QuerySet[Payment], *, invoice=None, customer=None, method=None, chain_status=None):
    if invoice:
        qs = qs.filter(invoice_id=invoice)
    if customer:
        qs = qs.filter(invoice__customer_id=customer)
    if method:
        qs = qs.filter(method=method)
    if chain_status:
        qs = qs.filter(chain_status=chain_status)
    return qs


def search_q(text: str) -> Q:
    text = text.strip()
    return (
        Q(reference__icontains=text)
        | Q(txid__istartswith=text.lower())
        | Q(invoice__number__icontains=text)
        | Q(invoice__customer__company__icontains=text)
    )


def demo_addresses(network: str, count: int) -> list[str]:
    """Addresses for the demo seed: well-formed (they pass the pool's checks) but derived from a hash of a fixed
    text, not from anyone's key, so nobody can spend what is sent to them. Never for production."""
    import hashlib

    version = 0x00 if network == "btc" else address_codec.TRON_VERSION
    return [
        address_codec.b58check_encode(
            bytes([version]) + hashlib.sha256(f"hashinsight-demo-{network}-{n}".encode()).digest()[:20]
        )
        for n in range(count)
    ]


def seed_demo_pool(*, count: int = 20) -> int:
    """Fill the pool with ``count`` demo addresses per network (a repeat adds nothing); how many were added."""
    rows = [PaymentAddress(network=n, address=a) for n in NETWORKS for a in demo_addresses(n, count)]
    known = set(PaymentAddress.objects.filter(address__in=[r.address for r in rows]).values_list("address", flat=True))
    fresh = [r for r in rows if r.address not in known]
    PaymentAddress.objects.bulk_create(fresh)
    return len(fresh)
