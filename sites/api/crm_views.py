"""The CRM API: ``/api/v1/deals`` (list with filters, ordering, search, pages and ``?format=csv``; create; read;
update; ``…/{id}/stage``; ``…/{id}/convert``) and ``/api/v1/contracts`` (the same for hosting contracts;
``…/{id}/activate``, ``/end``, ``/terminate``; ``…/{id}/miners`` GET/PUT; ``…/{id}/document`` POST (multipart) and
GET (the signed file, as an attachment)).

CRM module: READ to read (owners, admins, site owners for their sites' rows), FULL to write (owners, admins);
hosting clients, app customers and guests have none (403 on every endpoint). A row outside the reader's scope is a
404 on every method, a visible one a site owner cannot change a 403. Reads through ``sites.crm_selectors``, writes
through ``sites.crm_services``."""

from __future__ import annotations

import re

from django.db.models import Count
from django.http import FileResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView, CSVRenderer
from hashinsight.core.api.views import ScopedViewSet
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from sites import crm_selectors, crm_services
from sites.api.crm_serializers import (
    ContractFilter,
    ContractSerializer,
    ConvertSerializer,
    DealFilter,
    DealSerializer,
    DocumentSerializer,
    EndSerializer,
    MinersResultSerializer,
    MinersSerializer,
    StageSerializer,
    TerminateSerializer,
)
from sites.models import CurtailmentCreditKind, Deal, EnergyBasis, HostingContract, TariffKind

UPLOAD_FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the signed_at field
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: every matching row as a CSV file")

DEAL_CSV = [
    CsvColumn(_("Deal"), "id"),
    CsvColumn(_("Title"), "title"),
    CsvColumn(_("Stage"), "stage", display=dict(Deal.Stage.choices)),
    CsvColumn(_("Hosting client"), "customer__company"),
    CsvColumn(_("Prospect company"), "prospect_company"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Expected miners"), "expected_miners"),
    CsvColumn(_("Expected load (MW)"), "expected_mw"),
    CsvColumn(_("Value"), "value"),
    CsvColumn(_("Currency"), "currency"),
    CsvColumn(_("Sales owner"), "owner__username"),
    CsvColumn(_("Expected close"), "expected_close"),
    CsvColumn(_("Contact"), "contact_name"),
    CsvColumn(_("Contact e-mail"), "contact_email"),
    CsvColumn(_("Updated (UTC)"), "updated_at"),
]
CONTRACT_CSV = [
    CsvColumn(_("Contract"), "number"),
    CsvColumn(_("Hosting client"), "customer__company"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Status"), "status", display=dict(HostingContract.Status.choices)),
    CsvColumn(_("Start"), "start_date"),
    CsvColumn(_("End"), "end_date"),
    CsvColumn(_("Currency"), "currency"),
    CsvColumn(_("Deposit"), "deposit"),
    CsvColumn(_("Payment terms (days)"), "payment_terms_days"),
    CsvColumn(_("Tariff"), "tariff_kind", display=dict(TariffKind.choices)),
    CsvColumn(_("Energy basis"), "energy_basis", display=dict(EnergyBasis.choices)),
    CsvColumn(_("Rate (per kWh)"), "rate_per_kwh"),
    CsvColumn(_("Fixed fee (per miner per month)"), "fixed_fee_per_miner_month"),
    CsvColumn(_("Operator's revenue share (%)"), "revenue_share_pct"),
    CsvColumn(_("SLA uptime target (%)"), "sla_uptime_target_pct"),
    CsvColumn(_("Curtailment allowance (h per miner per month)"), "curtailment_allowance_hours"),
    CsvColumn(_("Curtailment credit"), "curtailment_credit_kind", display=dict(CurtailmentCreditKind.choices)),
    CsvColumn(_("Curtailment credit (per miner-hour)"), "curtailment_credit_per_miner_hour"),
    CsvColumn(_("Curtailment priority"), "curtailment_priority"),
    CsvColumn(_("Firm"), "firm"),
    CsvColumn(_("Sales owner"), "sales_owner__username"),
    CsvColumn(_("Commission (%)"), "commission_pct"),
    CsvColumn(_("Signed"), "signed_at"),
    CsvColumn(_("Document SHA-256"), "signed_document_sha256"),
]


class CrmViewSet(ScopedViewSet, CsvCapableAPIView):
    # The CRM module's viewset: lists also answer ?format=csv (every matching row, streamed); no DELETE (a deal is
    # lost, a contract terminated: both stay on record).
    module = Module.CRM
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    csv_columns: list[CsvColumn] = []
    csv_name = "export"

    def get_renderers(self):
        # CSV (and its JSON error shape, CsvCapableAPIView.finalize_response) for the lists only.
        found = super().get_renderers()
        return (
            found if getattr(self, "action", None) == "list" else [r for r in found if not isinstance(r, CSVRenderer)]
        )

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) == "csv":
            qs = self.filter_queryset(self.get_queryset())
            return streamed_csv(request, csv_chunks(self.csv_columns, qs), self.csv_name)
        return super().list(request, *args, **kwargs)

    def _body(self, serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


@extend_schema(tags=["crm"])
class DealViewSet(CrmViewSet):
    """Sales leads and deals per hosting client or prospect: stage, expected miners and MW, value, sales owner."""

    serializer_class = DealSerializer
    filterset_class = DealFilter
    search_fields = ["title", "prospect_company", "customer__company", "contact_name"]
    ordering_fields = ["updated_at", "created_at", "value", "expected_mw", "expected_miners", "expected_close",
                       "stage", "title", "id"]  # fmt: skip
    ordering = ["-updated_at", "-id"]
    csv_columns = DEAL_CSV
    csv_name = "deals"

    def get_queryset(self):
        return crm_selectors.deal_list(user=self.request.user).order_by("-updated_at", "-id")

    @extend_schema(responses={200: DealSerializer(many=True), (200, "text/csv"): CSV_RESPONSE})
    def list(self, request, *args, **kwargs):
        """Deals you may read (filters: stage, customer, site, owner, currency, open; ``ordering``; ``search``);
        ``?format=csv`` exports every matching row."""
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = crm_services.deal_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = crm_services.deal_update(
            actor=self.request.user, deal=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=StageSerializer, responses={200: DealSerializer})
    @action(detail=True, methods=["post"])
    def stage(self, request, pk=None):
        """Move the deal to another stage (a won deal with contracts stays won: 409)."""
        deal = self.get_object()
        data = self._body(StageSerializer, request.data)
        deal = crm_services.deal_set_stage(actor=request.user, deal=deal, stage=data["stage"])
        return Response(DealSerializer(deal, context=self.get_serializer_context()).data)

    @extend_schema(request=ConvertSerializer, responses={201: ContractSerializer, 200: ContractSerializer})
    @action(detail=True, methods=["post"])
    def convert(self, request, pk=None):
        """Turn the deal into a draft hosting contract for its client at its site (a prospect becomes a hosting
        client); the deal is won. A deal already converted answers 200 with its contract."""
        deal = self.get_object()
        data = self._body(ConvertSerializer, request.data)
        contract, created = crm_services.deal_convert(actor=request.user, deal=deal, **data)
        body = ContractSerializer(contract, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["crm"])
class ContractViewSet(CrmViewSet):
    """Hosting contracts: term, deposit, tariff, SLA and curtailment terms, miners covered, signed document."""

    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    search_fields = ["number", "customer__company", "site__name"]
    ordering_fields = ["start_date", "end_date", "number", "status", "updated_at", "created_at", "deposit", "id"]
    ordering = ["-start_date", "-id"]
    csv_columns = CONTRACT_CSV
    csv_name = "contracts"

    def get_queryset(self):
        qs = crm_selectors.contract_list(user=self.request.user)
        return qs.annotate(miners_listed=Count("miners")).order_by("-start_date", "-id")

    def _fresh(self, contract):
        return self.get_queryset().get(pk=contract.pk)

    def _out(self, contract, code=status.HTTP_200_OK):
        return Response(ContractSerializer(self._fresh(contract), context=self.get_serializer_context()).data,
                        status=code)  # fmt: skip

    @extend_schema(responses={200: ContractSerializer(many=True), (200, "text/csv"): CSV_RESPONSE})
    def list(self, request, *args, **kwargs):
        """Contracts you may read (filters: status, customer, site, deal, tariff_kind, sales_owner, currency,
        active_on; ``ordering``; ``search``); ``?format=csv`` exports every matching row."""
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        contract = crm_services.contract_create(actor=self.request.user, **self._fields(serializer))
        serializer.instance = self._fresh(contract)

    def perform_update(self, serializer):
        contract = crm_services.contract_update(
            actor=self.request.user, contract=serializer.instance, **self._fields(serializer)
        )
        serializer.instance = self._fresh(contract)

    @staticmethod
    def _fields(serializer) -> dict:
        data = dict(serializer.validated_data)
        if "sla_credit_schedule" in data:
            data["sla_credit_schedule"] = [dict(step) for step in data["sla_credit_schedule"]]
        return data

    @extend_schema(request=None, responses={200: ContractSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Draft → active (409 ``contract_overlap`` when the client has another active contract at the site for
        these dates)."""
        return self._out(crm_services.contract_activate(actor=request.user, contract=self.get_object()))

    @extend_schema(request=EndSerializer, responses={200: ContractSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        """Active → ended on ``end_date`` (default today)."""
        contract = self.get_object()
        data = self._body(EndSerializer, request.data)
        return self._out(crm_services.contract_end(actor=request.user, contract=contract, **data))

    @extend_schema(request=TerminateSerializer, responses={200: ContractSerializer})
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        """Draft or active → terminated, with a reason."""
        contract = self.get_object()
        data = self._body(TerminateSerializer, request.data)
        return self._out(crm_services.contract_terminate(actor=request.user, contract=contract, **data))

    @extend_schema(methods=["GET"], request=None, responses={200: MinersResultSerializer})
    @extend_schema(methods=["PUT"], request=MinersSerializer, responses={200: MinersResultSerializer})
    @action(detail=True, methods=["get", "put"])
    def miners(self, request, pk=None):
        """The miners the contract lists (none: every miner of the client at the site); PUT sets them."""
        contract = self.get_object()
        if request.method == "PUT":
            data = self._body(MinersSerializer, request.data)
            crm_services.contract_set_miners(actor=request.user, contract=contract, miners=data["miners"])
        listed = list(contract.miners.order_by("serial").values("id", "serial")[:10_000])
        return Response({
            "miners_listed": contract.miners.count(),
            "miners_covered": crm_selectors.contract_miner_count(contract),
            "miners": listed,
        })  # fmt: skip

    @extend_schema(methods=["GET"], request=None, responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @extend_schema(methods=["POST"], request={"multipart/form-data": DocumentSerializer},
                   responses={200: ContractSerializer})  # fmt: skip
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser])
    def document(self, request, pk=None):
        """GET: the signed document as an attachment (404 when none). POST (multipart ``document``, optional
        ``signed_at``): upload it (PDF, PNG or JPEG, at most 10 MB); its SHA-256 goes to the audit chain."""
        contract = self.get_object()
        if request.method == "POST":
            refuse_oversized_upload(request)
            upload = request.FILES.get("document")
            if upload is None:
                raise DomainError("invalid", gettext("Send the file in the multipart field “document”."),
                                  details={"field": "document"})  # fmt: skip
            data = self._body(DocumentSerializer, request.data)
            contract = crm_services.contract_upload_document(
                actor=request.user, contract=contract, upload=upload, signed_at=data.get("signed_at")
            )
            return self._out(contract)
        return document_response(contract)


def refuse_oversized_upload(request) -> None:
    """A 413 before the multipart body is parsed when its declared length is beyond a document and the form's
    other fields: the parser would otherwise spool all of it to disk first. (The service checks the file's own
    size as well.)"""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > crm_services.DOCUMENT_MAX_BYTES + UPLOAD_FORM_OVERHEAD:
        raise DomainError("document_too_large", gettext("The document is larger than 10 MB."), status=413,
                          details={"max_bytes": crm_services.DOCUMENT_MAX_BYTES})  # fmt: skip


def document_response(contract: HostingContract) -> FileResponse:
    """The contract's signed document as a download (the caller has checked that the user may read the
    contract). Served with its own content type, as an attachment, never cached, never sniffed."""
    if not contract.signed_document:
        raise DomainError("not_found", gettext("This contract has no signed document."), status=404)
    try:
        handle = contract.signed_document.open("rb")
    except FileNotFoundError:
        raise DomainError("not_found", gettext("The signed document's file is missing."), status=404) from None
    ext = contract.signed_document.name.rsplit(".", 1)[-1].lower()
    name = re.sub(r"[^A-Za-z0-9._-]", "-", contract.number) or str(contract.pk)  # never a quote or a line break
    response = FileResponse(
        handle, as_attachment=True, filename=f"{name}-signed.{ext}",
        content_type=crm_services.document_content_type(contract),
    )  # fmt: skip
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
