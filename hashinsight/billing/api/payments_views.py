"""The payments API: ``/api/v1/payments`` (list with filters, sort, pages and CSV; record a payment),
``/api/v1/payments/{id}`` (read), ``…/{id}/confirm`` and ``…/{id}/reject`` (an operator's verdict on a pending
crypto payment, the offline chain adapter's way), ``/api/v1/payment-addresses`` (the pool: list, import),
``/api/v1/commissions`` (list, CSV) and ``/api/v1/customers/{id}/hold`` (POST proposes a hold, DELETE proposes its
release: both answer the proposed command, which goes through the control plane's approvals).

FINANCE module: READ to read (payments of the invoices in the reader's scope), FULL (owners, administrators) to
record, confirm, reject and hold; the pool is the owners' and administrators' alone; commissions are read by staff
(owners and administrators see all, a site owner the ones they earned). A hidden invoice, payment or client is a
404, a visible one the reader may not change a 403. Every write goes through ``hashinsight.billing.payments`` /
``holds``; bad input is a 400 naming the field, and changes nothing."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from hashinsight.accounts.roles import GLOBAL_ROLES, STAFF_ROLES, role_of, sees_staff_identities
from hashinsight.billing import commissions, holds, payments
from hashinsight.billing.api.common import FinanceView, valid
from hashinsight.billing.models import Payment, PaymentMethod
from hashinsight.core.api.pagination import LimitOffsetPagination
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")

PAYMENT_SORTS = {
    "received": "received_at", "recorded": "created_at", "amount": "amount", "id": "id",
    "invoice": "invoice__number", "customer": "invoice__customer__company", "status": "chain_status",
}  # fmt: skip
COMMISSION_SORTS = {"earned": "created_at", "amount": "amount", "id": "id", "invoice": "invoice__number"}

PAYMENT_CSV = [
    CsvColumn(_("Payment"), "id"),
    CsvColumn(_("Invoice"), "invoice__number"),
    CsvColumn(_("Hosting client"), "invoice__customer__company"),
    CsvColumn(_("Site"), "invoice__site__name"),
    CsvColumn(_("Method"), "method", display=dict(PaymentMethod.choices)),
    CsvColumn(_("Amount"), "amount"),
    CsvColumn(_("Currency"), "currency"),
    CsvColumn(_("Received (UTC)"), "received_at"),
    CsvColumn(_("Bank reference"), "reference"),
    CsvColumn(_("Transaction id"), "txid"),
    CsvColumn(_("Crypto amount"), "crypto_amount"),
    CsvColumn(_("Chain status"), "chain_status", display=dict(Payment.ChainStatus.choices)),
    CsvColumn(_("Confirmations"), "confirmations"),
    CsvColumn(_("Recorded (UTC)"), "created_at"),
]
COMMISSION_CSV = [
    CsvColumn(_("Commission"), "id"),
    CsvColumn(_("Invoice"), "invoice__number"),
    CsvColumn(_("Hosting client"), "invoice__customer__company"),
    CsvColumn(_("Sales owner"), "sales_owner__username"),
    CsvColumn(_("Rate (%)"), "rate_pct"),
    CsvColumn(_("Paid amount"), "base_amount"),
    CsvColumn(_("Commission"), "amount"),
    CsvColumn(_("Currency"), "currency"),
    CsvColumn(_("Earned (UTC)"), "created_at"),
    CsvColumn(_("Paid out"), "paid_out"),
]


def _body(data, allowed: set[str]) -> dict:
    if not isinstance(data, dict):
        raise DomainError("invalid_body", _("The body is a JSON object."), details={"field": "body"})
    unknown = set(data) - allowed
    if unknown:
        raise DomainError(
            "invalid_body",
            _("Unknown keys: %(keys)s.") % {"keys": ", ".join(sorted(map(str, unknown)))},
            details={"field": "body"},
        )
    return data


def _sorted(qs, sort: str, sorts: dict):
    field = sorts[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


def payment_body(p: Payment, *, user) -> dict:
    invoice = p.invoice
    return {
        "id": p.pk,
        "invoice": invoice.pk,
        "invoice_number": invoice.number,
        "customer": invoice.customer_id,
        "customer_name": invoice.customer.company,
        "site": invoice.site_id,
        "method": p.method,
        "amount": str(p.amount),
        "currency": p.currency,
        "received_at": p.received_at,
        "reference": p.reference,
        "txid": p.txid,
        "crypto_amount": None if p.crypto_amount is None else str(p.crypto_amount),
        "chain_status": p.chain_status,
        "confirmations": p.confirmations,
        "required_confirmations": payments.chain.required_confirmations(p.method) if p.txid else None,
        "recorded_by": p.recorded_by_id if sees_staff_identities(user) else None,
        "created_at": p.created_at,
        "invoice_status": invoice.status,
        "invoice_balance_due": str(invoice.balance_due),
    }


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    invoice = serializers.IntegerField()
    invoice_number = serializers.CharField(allow_null=True)
    customer = serializers.IntegerField()
    customer_name = serializers.CharField()
    site = serializers.IntegerField()
    method = serializers.CharField(help_text="bank | btc | usdt")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.CharField()
    received_at = serializers.DateTimeField()
    reference = serializers.CharField()
    txid = serializers.CharField()
    crypto_amount = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    chain_status = serializers.CharField(help_text="n/a | pending | confirmed | failed")
    confirmations = serializers.IntegerField()
    required_confirmations = serializers.IntegerField(allow_null=True)
    recorded_by = serializers.IntegerField(
        allow_null=True, help_text="the operator who recorded it; null for a hosting client"
    )
    created_at = serializers.DateTimeField()
    invoice_status = serializers.CharField()
    invoice_balance_due = serializers.DecimalField(max_digits=16, decimal_places=2)


class PaymentPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PaymentSerializer(many=True)


class PaymentFilterSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
    method = serializers.ChoiceField(choices=PaymentMethod.values, required=False)
    chain_status = serializers.ChoiceField(choices=Payment.ChainStatus.values, required=False)
    sort = serializers.ChoiceField(
        choices=[*PAYMENT_SORTS, *(f"-{k}" for k in PAYMENT_SORTS)], required=False, default="-received",
        help_text="- for descending",
    )  # fmt: skip
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


class PaymentCreateSerializer(serializers.Serializer):
    """The request body (checked by ``hashinsight.billing.payments.payment_record``; this is its documentation)."""

    invoice = serializers.IntegerField(help_text="an issued invoice you see")
    method = serializers.CharField(help_text="bank | btc | usdt")
    amount = serializers.CharField(help_text="in the invoice's currency, > 0, at most 2 decimals")
    received_at = serializers.DateTimeField(required=False, help_text="default now; not in the future")
    reference = serializers.CharField(required=False, help_text="bank: the transfer's reference (required)")
    txid = serializers.CharField(required=False, help_text="btc/usdt: 64 hex characters (required), unique per method")
    crypto_amount = serializers.CharField(required=False, help_text="btc/usdt: the amount on chain, 8 decimals")
    confirmations = serializers.IntegerField(required=False, help_text="btc/usdt: as seen by the operator")
    allow_overpayment = serializers.BooleanField(required=False, default=False)


CREATE_KEYS = {
    "invoice", "method", "amount", "received_at", "reference", "txid", "crypto_amount", "confirmations",
    "allow_overpayment",
}  # fmt: skip


class PaymentListView(FinanceView):
    @extend_schema(
        operation_id="payments_list", parameters=[PaymentFilterSerializer],
        responses={200: PaymentPageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["finance"],
    )  # fmt: skip
    def get(self, request):
        """Payments of the invoices you see, newest first (``sort``: received, recorded, amount, id, invoice,
        customer, status; ``-`` for descending), filtered by ``invoice``, ``customer``, ``method`` and
        ``chain_status``, in ``limit``/``offset`` pages; ``?format=csv`` exports every matching row."""
        p = valid(PaymentFilterSerializer, request.query_params)
        qs = payments.payment_filter(
            payments.payment_list(user=request.user), invoice=p.get("invoice"), customer=p.get("customer"),
            method=p.get("method"), chain_status=p.get("chain_status"),
        )  # fmt: skip
        qs = _sorted(qs, p["sort"], PAYMENT_SORTS)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(PAYMENT_CSV, qs), "payments")
        pager = LimitOffsetPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([payment_body(x, user=request.user) for x in page])

    @extend_schema(
        operation_id="payments_create", request=PaymentCreateSerializer, responses={201: PaymentSerializer},
        tags=["finance"],
    )  # fmt: skip
    def post(self, request):
        """Record a payment: a bank transfer (counts at once) or a BTC/USDT transaction (pending until confirmed).
        Refusals: 400 naming the field (``exceeds_balance``, ``invalid_txid``, ``required``…), 404 for an invoice
        you do not see, 409 ``duplicate_txid`` / ``invoice_not_issued`` / ``invoice_paid``."""
        data = _body(request.data, CREATE_KEYS)
        if "invoice" not in data:
            raise DomainError("required", _("invoice is required."), details={"field": "invoice"})
        invoice = payments.invoice_get(user=request.user, invoice_id=data["invoice"])
        payment = payments.payment_record(
            actor=request.user, invoice=invoice, method=data.get("method"), amount=data.get("amount"),
            received_at=data.get("received_at"), reference=data.get("reference"), txid=data.get("txid"),
            crypto_amount=data.get("crypto_amount"), confirmations=data.get("confirmations"),
            allow_overpayment=data.get("allow_overpayment", False),
        )  # fmt: skip
        payment = payments.payment_get(user=request.user, payment_id=payment.pk)
        return Response(payment_body(payment, user=request.user), status=status.HTTP_201_CREATED)


class PaymentDetailView(FinanceView):
    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentSerializer}, tags=["finance"])
    def get(self, request, pk):
        """One payment."""
        return Response(payment_body(payments.payment_get(user=request.user, payment_id=pk), user=request.user))


class ConfirmSerializer(serializers.Serializer):
    confirmations = serializers.IntegerField(
        required=False, min_value=0, help_text="as seen; below the threshold it is stored and the payment stays pending"
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class PaymentConfirmView(FinanceView):
    detail = True  # looked up first: hidden → 404, read-only → 403

    @extend_schema(
        operation_id="payments_confirm", request=ConfirmSerializer, responses={200: PaymentSerializer},
        tags=["finance"],
    )  # fmt: skip
    def post(self, request, pk):
        """Confirm a pending crypto payment by hand (the offline adapter's way): without ``confirmations`` (or at
        the threshold: BTC 3, USDT 20) it counts towards the invoice. 409 ``not_pending`` for a bank or failed one."""
        payment = payments.payment_get(user=request.user, payment_id=pk)
        data = _body(request.data, {"confirmations", "reason"})
        payments.payment_confirm(
            actor=request.user, payment=payment, confirmations=data.get("confirmations"), reason=data.get("reason")
        )
        return Response(payment_body(payments.payment_get(user=request.user, payment_id=pk), user=request.user))


class PaymentRejectView(FinanceView):
    detail = True

    @extend_schema(
        operation_id="payments_reject", request=RejectSerializer, responses={200: PaymentSerializer},
        tags=["finance"],
    )  # fmt: skip
    def post(self, request, pk):
        """Mark a pending crypto payment failed (it will not arrive), with a reason."""
        payment = payments.payment_get(user=request.user, payment_id=pk)
        data = _body(request.data, {"reason"})
        payments.payment_reject(actor=request.user, payment=payment, reason=data.get("reason"))
        return Response(payment_body(payments.payment_get(user=request.user, payment_id=pk), user=request.user))


# --- the address pool ----------------------------------------------------------------------------


def _require_pool(user) -> None:
    if role_of(user) not in GLOBAL_ROLES:
        raise DomainError("permission_denied", _("Only owners and administrators manage the address pool."), status=403)


class AddressSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    network = serializers.CharField(help_text="btc | usdt")
    address = serializers.CharField()
    assigned = serializers.BooleanField()
    assigned_at = serializers.DateTimeField(allow_null=True)
    invoice = serializers.IntegerField(allow_null=True)


class AddressImportSerializer(serializers.Serializer):
    network = serializers.CharField(help_text="btc | usdt (TRC-20)")
    addresses = serializers.JSONField(help_text="a list of addresses, or text with one a line")


class AddressFilterSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=payments.NETWORKS, required=False)
    assigned = serializers.BooleanField(required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


def address_body(a) -> dict:
    return {
        "id": a.pk, "network": a.network, "address": a.address, "assigned": a.assigned_at is not None,
        "assigned_at": a.assigned_at, "invoice": a.invoice_id,
    }  # fmt: skip


class AddressListView(FinanceView):
    @extend_schema(
        operation_id="payment_addresses_list", parameters=[AddressFilterSerializer],
        responses={200: OpenApiTypes.OBJECT}, tags=["finance"],
    )  # fmt: skip
    def get(self, request):
        """The pool (owners and administrators): each address, whether it was given to an invoice; ``counts``
        says how many are free per network."""
        _require_pool(request.user)
        p = valid(AddressFilterSerializer, request.query_params)
        qs = payments.address_list(user=request.user).order_by("network", "id")
        if p.get("network"):
            qs = qs.filter(network=p["network"])
        if p.get("assigned") is not None:
            qs = qs.filter(assigned_at__isnull=not p["assigned"])
        pager = LimitOffsetPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        response = pager.get_paginated_response([address_body(a) for a in page])
        response.data["counts"] = payments.pool_counts()
        return response

    @extend_schema(
        operation_id="payment_addresses_import", request=AddressImportSerializer, responses={201: OpenApiTypes.OBJECT},
        tags=["finance"],
    )  # fmt: skip
    def post(self, request):
        """Import addresses (BTC: Base58Check or Bech32/Bech32m; USDT: TRC-20 ``T…``), checked offline. One bad
        address refuses the whole import (400 ``invalid_address``, ``details.invalid`` lists each line and why);
        ones already in the pool are skipped and named."""
        _require_pool(request.user)
        data = _body(request.data, {"network", "addresses"})
        result = payments.address_import(
            actor=request.user, network=data.get("network"), addresses=data.get("addresses")
        )
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


# --- commissions ---------------------------------------------------------------------------------


class CommissionFilterSerializer(serializers.Serializer):
    paid_out = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(
        choices=[*COMMISSION_SORTS, *(f"-{k}" for k in COMMISSION_SORTS)], required=False, default="-earned"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


def commission_body(c) -> dict:
    return {
        "id": c.pk, "invoice": c.invoice_id, "invoice_number": c.invoice.number,
        "customer_name": c.invoice.customer.company, "sales_owner": c.sales_owner_id,
        "sales_owner_name": c.sales_owner.get_username(), "rate_pct": str(c.rate_pct),
        "base_amount": str(c.base_amount), "amount": str(c.amount), "currency": c.currency,
        "created_at": c.created_at, "paid_out": c.paid_out,
    }  # fmt: skip


def require_commission_reader(user) -> None:
    if role_of(user) not in STAFF_ROLES:
        raise DomainError("permission_denied", _("Commissions are read by staff."), status=403)


class CommissionListView(FinanceView):
    @extend_schema(
        operation_id="commissions_list", parameters=[CommissionFilterSerializer],
        responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): CSV_RESPONSE}, tags=["finance"],
    )  # fmt: skip
    def get(self, request):
        """Sales commissions, one per paid invoice: all of them for owners and administrators, a site owner's own
        (as a contract's sales owner) otherwise; ``?format=csv`` exports them."""
        require_commission_reader(request.user)
        p = valid(CommissionFilterSerializer, request.query_params)
        qs = commissions.commission_list(user=request.user)
        if p.get("paid_out") is not None:
            qs = qs.filter(paid_out=p["paid_out"])
        qs = _sorted(qs, p["sort"], COMMISSION_SORTS)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(COMMISSION_CSV, qs), "commissions")
        pager = LimitOffsetPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([commission_body(c) for c in page])


# --- holds ---------------------------------------------------------------------------------------


class HoldSerializer(serializers.Serializer):
    site = serializers.IntegerField(help_text="the site where the client's miners are held")
    reason = serializers.CharField(required=False, max_length=300, help_text="required to put on hold")


class HoldResultSerializer(serializers.Serializer):
    command_id = serializers.IntegerField()
    command_status = serializers.CharField()
    command_type = serializers.CharField()
    risk_tier = serializers.CharField()
    created = serializers.BooleanField()
    overdue_invoices = serializers.ListField(child=serializers.IntegerField())
    command_url = serializers.CharField()


def _hold_args(request, pk):
    from sites.models import Site
    from sites.selectors import customer_list

    try:
        customer_id = int(pk)
    except (TypeError, ValueError):
        raise DomainError("not_found", _("Not found."), status=404) from None
    customer = customer_list(user=request.user).filter(pk=customer_id).first() if 0 < customer_id < 2**62 else None
    if customer is None:
        raise DomainError("not_found", _("Not found."), status=404)
    data = _body(request.data, {"site", "reason"})
    site_id = data.get("site")
    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise DomainError("invalid", _("site is a site id (a number)."), details={"field": "site"})
    site = Site.objects.filter(pk=site_id).first() if 0 < site_id < 2**62 else None
    if site is None:
        raise DomainError("site_not_found", _("Not found."), status=404, details={"field": "site"})
    return customer, site, data.get("reason")


class CustomerHoldView(FinanceView):
    detail = True  # the client is looked up first: hidden → 404, visible but read-only → 403

    @extend_schema(
        operation_id="customers_hold", request=HoldSerializer,
        responses={201: HoldResultSerializer, 200: HoldResultSerializer}, tags=["finance"],
    )  # fmt: skip
    def post(self, request, pk):
        """Propose putting the client on hold at a site: a HASHING_DISABLE command for its miners there, proposed
        to the control plane (risk HIGH: approvals needed), never run directly. Needs an overdue invoice
        (409 ``not_overdue``) and a reason. A repeat while the command is live answers the same command (200)."""
        customer, site, reason = _hold_args(request, pk)
        result = holds.propose_hold(customer=customer, site=site, actor=request.user, reason=reason)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="customers_hold_release", request=HoldSerializer,
        responses={201: HoldResultSerializer, 200: HoldResultSerializer}, tags=["finance"],
    )  # fmt: skip
    def delete(self, request, pk):
        """Propose releasing the hold: a HASHING_ENABLE command for the client's miners at the site."""
        customer, site, reason = _hold_args(request, pk)
        result = holds.release_hold(customer=customer, site=site, actor=request.user, reason=reason)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
