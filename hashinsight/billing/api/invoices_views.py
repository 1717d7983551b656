"""The invoices API (module FINANCE): ``/api/v1/invoices`` (list with filters, sort, pages and CSV),
``/api/v1/invoices/build`` (drafts of a month), ``/api/v1/invoices/{id}`` (with its lines and credit notes),
``…/{id}/issue``, ``…/{id}/void``, ``…/{id}/statement`` (the canonical statement file, streamed) and
``/api/v1/credit-notes`` (list; create against an invoice).

FINANCE READ to read, FULL (owners, admins) to build, issue, void and credit. What a user sees is
``hashinsight.billing.selectors`` (a site owner their sites' invoices, read-only; a client only its own issued
ones): anything else answers 404, a visible invoice a read-only user tries to change 403. Bad input is a 400 with
the standard error shape and changes nothing. Writes go through ``hashinsight.billing.invoicing`` and ``issuing``."""

from __future__ import annotations

import re
from datetime import date

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from hashinsight.billing import invoicing, issuing, selectors, statements
from hashinsight.billing.api.common import FinanceView, valid
from hashinsight.billing.models import CreditNote, Invoice, InvoiceLine
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from sites.models import HostingContract

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")
STATEMENT_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="the canonical statement CSV (text/csv)")
SORTS = {
    "period": "period_start", "number": "number", "total": "total", "due": "due_date", "status": "status",
    "client": "customer__company", "created": "generated_at", "id": "id",
}  # fmt: skip
MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
MAX_ID = 2**63 - 1


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


def _manage(request) -> None:
    """A visible invoice; changing it needs FINANCE FULL (403 for read-only users)."""
    if not selectors.may_manage(user=request.user):
        raise DomainError("forbidden", _("You may read this invoice but not change it."), status=403)


def _pk(value) -> int:
    pk = int(value)
    if pk < 1 or pk > MAX_ID:
        raise DomainError("not_found", _("No such invoice."), status=404)
    return pk


def _month(value, *, field: str = "month") -> date:
    if not isinstance(value, str) or not MONTH_RE.match(value):
        raise DomainError("invalid_month", _("The month is written YYYY-MM."), details={"field": field})
    return date(int(value[:4]), int(value[5:7]), 1)


# ---------------------------------------------------------------------------------------------------------------
# Serializers (the response bodies; also the schema)


class LineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount"]


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    currency = serializers.CharField(source="invoice.currency", read_only=True)

    class Meta:
        model = CreditNote
        fields = ["id", "number", "invoice", "invoice_number", "amount", "currency", "reason", "issued_at",
                  "content_sha256", "audit_event_id"]  # fmt: skip


class InvoiceSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="customer.company", read_only=True)
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    balance_due = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "number", "status", "customer", "client", "contract", "contract_number", "site", "site_name",
            "period_start", "period_end", "currency", "subtotal", "credits", "prior_balance", "deposit_applied",
            "total", "amount_paid", "amount_credited", "balance_due", "energy_kwh", "miner_count", "uptime_pct",
            "sla_uptime_pct", "issue_date", "due_date", "issued_at", "content_sha256", "statement_sha256",
            "audit_event_id", "btc_address", "usdt_address", "generated_at",
        ]  # fmt: skip


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = LineSerializer(many=True, read_only=True)
    credit_notes = CreditNoteSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines", "credit_notes"]


class InvoicePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = InvoiceSerializer(many=True)


class CreditNotePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CreditNoteSerializer(many=True)


class InvoiceFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Invoice.Status.values, required=False)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    site = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    contract = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    period = serializers.RegexField(MONTH_RE, required=False, help_text="YYYY-MM: invoices whose period starts then")
    sort = serializers.ChoiceField(choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-period",
                                   help_text="- for descending")  # fmt: skip
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


class BuildRequestSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM, a month that has ended")
    contract = serializers.IntegerField(required=False, help_text="one contract; default: every contract of the month")


class BuildResponseSerializer(serializers.Serializer):
    month = serializers.CharField()
    built = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    invoice = InvoiceDetailSerializer(required=False, allow_null=True)


class CreditNoteRequestSerializer(serializers.Serializer):
    invoice = serializers.IntegerField()
    amount = serializers.CharField(help_text="decimal, at most two places, ≤ the invoice's open balance")
    reason = serializers.CharField(max_length=500)


class CreditNoteFilterSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


INVOICE_CSV = [
    CsvColumn(gettext_lazy("Invoice"), "number"),
    CsvColumn(gettext_lazy("Status"), "status", display=dict(Invoice.Status.choices)),
    CsvColumn(gettext_lazy("Client"), "customer__company"),
    CsvColumn(gettext_lazy("Contract"), "contract__number"),
    CsvColumn(gettext_lazy("Site"), "site__name"),
    CsvColumn(gettext_lazy("Period start"), "period_start"),
    CsvColumn(gettext_lazy("Period end"), "period_end"),
    CsvColumn(gettext_lazy("Currency"), "currency"),
    CsvColumn(gettext_lazy("Charges"), "subtotal"),
    CsvColumn(gettext_lazy("Credits"), "credits"),
    CsvColumn(gettext_lazy("Deposit"), "deposit_applied"),
    CsvColumn(gettext_lazy("Total due"), "total"),
    CsvColumn(gettext_lazy("Paid"), "amount_paid"),
    CsvColumn(gettext_lazy("Credit notes"), "amount_credited"),
    CsvColumn(gettext_lazy("Energy (kWh)"), "energy_kwh"),
    CsvColumn(gettext_lazy("SLA uptime (%)"), "sla_uptime_pct"),
    CsvColumn(gettext_lazy("Issued"), "issue_date"),
    CsvColumn(gettext_lazy("Due"), "due_date"),
]


def _filtered(qs, p: dict):
    for key in ("status",):
        if p.get(key):
            qs = qs.filter(**{key: p[key]})
    for key in ("customer", "site", "contract"):
        if p.get(key) is not None:
            qs = qs.filter(**{f"{key}_id": p[key]})
    if p.get("period"):
        first, last = invoicing.month_bounds(_month(p["period"], field="period"))
        qs = qs.filter(period_start__gte=first, period_start__lte=last)
    sort = p.get("sort") or "-period"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


# ---------------------------------------------------------------------------------------------------------------
# Views


class InvoiceListView(FinanceView):
    @extend_schema(
        operation_id="invoices_list", parameters=[InvoiceFilterSerializer],
        responses={200: InvoicePageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["finance"],
    )  # fmt: skip
    def get(self, request):
        """Invoices you see, newest period first (``sort``: period, number, total, due, status, client, created,
        id; ``-`` for descending), filtered by ``status``, ``customer``, ``site``, ``contract`` and ``period``
        (YYYY-MM), in ``limit``/``offset`` pages; ``?format=csv`` exports every matching row."""
        p = valid(InvoiceFilterSerializer, request.query_params)
        qs = _filtered(selectors.invoice_list(user=request.user).select_related("customer", "contract", "site"), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(INVOICE_CSV, qs), "invoices")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response(InvoiceSerializer(page, many=True).data)


class InvoiceBuildView(FinanceView):
    @extend_schema(operation_id="invoices_build", request=BuildRequestSerializer,
                   responses={200: BuildResponseSerializer}, tags=["finance"])  # fmt: skip
    def post(self, request):
        """Build (or rebuild) the draft invoices of a month that has ended: of one ``contract``, or of every
        contract overlapping the month. Issued invoices are never touched. FINANCE FULL."""
        data = request.data
        if not isinstance(data, dict):
            raise DomainError("invalid_body", _("The body is a JSON object."))
        unknown = set(data) - {"month", "contract"}
        if unknown:
            raise DomainError(
                "invalid_body", _("Unknown keys: %(keys)s.") % {"keys": ", ".join(sorted(map(str, unknown)))}
            )
        month = _month(data.get("month"))
        if invoicing.month_bounds(month)[1] >= timezone.now().date():
            raise DomainError("month_not_ended", _("Invoices are built for months that have ended."),
                              details={"field": "month"})  # fmt: skip
        contract_id = data.get("contract")
        if contract_id is None:
            return Response(invoicing.build_drafts(month))
        if not isinstance(contract_id, int) or isinstance(contract_id, bool) or not 1 <= contract_id <= MAX_ID:
            raise DomainError("invalid_contract", _("The contract is an id."), details={"field": "contract"})
        contract = HostingContract.objects.filter(pk=contract_id).first()
        if contract is None:
            raise DomainError("not_found", _("No such contract."), status=404)
        if invoicing.contract_period(contract, month) is None or not invoicing.is_billed(contract):
            raise DomainError("contract_not_billed", _("The contract is not billed for that month."),
                              details={"field": "contract"})  # fmt: skip
        invoice = invoicing.build_draft(contract, month)
        built = invoice.status == Invoice.Status.DRAFT
        return Response({
            "month": month.isoformat(), "built": int(built), "skipped": int(not built), "failed": 0,
            "invoice": InvoiceDetailSerializer(invoice).data,
        })  # fmt: skip


class InvoiceDetailView(FinanceView):
    detail = True

    @extend_schema(operation_id="invoices_retrieve", responses={200: InvoiceDetailSerializer}, tags=["finance"])
    def get(self, request, pk):
        """One invoice with its lines and credit notes."""
        invoice = selectors.invoice_get(user=request.user, pk=_pk(pk))
        return Response(InvoiceDetailSerializer(invoice).data)


class InvoiceIssueView(FinanceView):
    detail = True

    @extend_schema(operation_id="invoices_issue", request=None, responses={200: InvoiceDetailSerializer},
                   tags=["finance"])  # fmt: skip
    def post(self, request, pk):
        """Issue a draft: numbered, sealed by its hashes in the audit chain, never changed again (409 if not a
        draft)."""
        invoice = selectors.invoice_get(user=request.user, pk=_pk(pk))
        _manage(request)
        invoice = issuing.invoice_issue(invoice, actor=request.user)
        return Response(InvoiceDetailSerializer(Invoice.objects.get(pk=invoice.pk)).data)


class InvoiceVoidView(FinanceView):
    detail = True

    @extend_schema(operation_id="invoices_void", request=None, responses={200: InvoiceDetailSerializer},
                   tags=["finance"])  # fmt: skip
    def post(self, request, pk):
        """Throw a draft away (409 for an issued invoice: issue a credit note instead)."""
        invoice = selectors.invoice_get(user=request.user, pk=_pk(pk))
        _manage(request)
        invoice = issuing.void_draft(invoice, actor=request.user)
        return Response(InvoiceDetailSerializer(Invoice.objects.get(pk=invoice.pk)).data)


class InvoiceStatementView(FinanceView):
    detail = True

    @extend_schema(operation_id="invoices_statement", responses={(200, "text/csv"): STATEMENT_RESPONSE},
                   tags=["finance"])  # fmt: skip
    def get(self, request, pk):
        """The invoice's canonical statement file (one row per miner-day), streamed: for an issued invoice, the
        exact bytes whose SHA-256 is ``statement_sha256`` (also sent as ``X-Statement-SHA256``)."""
        invoice = selectors.invoice_get(user=request.user, pk=_pk(pk))
        response = streamed_csv(request, statements.iter_statement_csv(invoice), "statement")
        response["Content-Disposition"] = f'attachment; filename="{statements.statement_filename(invoice)}"'
        if invoice.statement_sha256:
            response["X-Statement-SHA256"] = invoice.statement_sha256
        return response


class CreditNoteListView(FinanceView):
    @extend_schema(operation_id="credit_notes_list", parameters=[CreditNoteFilterSerializer],
                   responses={200: CreditNotePageSerializer}, tags=["finance"])  # fmt: skip
    def get(self, request):
        """Credit notes of the invoices you see, newest first (``invoice`` filter; ``limit``/``offset``)."""
        p = valid(CreditNoteFilterSerializer, request.query_params)
        qs = CreditNote.objects.filter(invoice__in=selectors.invoice_list(user=request.user)).select_related("invoice")
        if p.get("invoice") is not None:
            qs = qs.filter(invoice_id=p["invoice"])
        pager = Pagination()
        page = pager.paginate_queryset(qs.order_by("-issued_at", "-id"), request, view=self)
        return pager.get_paginated_response(CreditNoteSerializer(page, many=True).data)

    @extend_schema(operation_id="credit_notes_create", request=CreditNoteRequestSerializer,
                   responses={201: CreditNoteSerializer}, tags=["finance"])  # fmt: skip
    def post(self, request):
        """Issue a credit note against an issued invoice (FINANCE FULL): ``amount`` at most the open balance, a
        ``reason``; numbered, hashed and audited like the invoice."""
        data = request.data
        if not isinstance(data, dict):
            raise DomainError("invalid_body", _("The body is a JSON object."))
        unknown = set(data) - {"invoice", "amount", "reason"}
        if unknown:
            raise DomainError(
                "invalid_body", _("Unknown keys: %(keys)s.") % {"keys": ", ".join(sorted(map(str, unknown)))}
            )
        invoice_id = data.get("invoice")
        if not isinstance(invoice_id, int) or isinstance(invoice_id, bool):
            raise DomainError("invalid_invoice", _("The invoice is an id."), details={"field": "invoice"})
        invoice = selectors.invoice_get(user=request.user, pk=invoice_id)
        amount = data.get("amount")
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            amount = repr(amount)  # a JSON number: its shortest text (59.2 → "59.2"), then the service's checks
        note = issuing.credit_note_issue(invoice, amount=amount, reason=data.get("reason"), actor=request.user)
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)
