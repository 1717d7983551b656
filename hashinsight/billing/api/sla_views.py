"""The SLA API: force-majeure windows and SLA certificates.

- ``/api/v1/force-majeure`` (list with filters, sort, pages and ``?format=csv``; create) and ``/{id}`` (read,
  delete). Module FINANCE: READ to read (scoped by site: a site owner its sites, a client the sites its miners stand
  in), FULL to write (owners and admins). A window an issued invoice covers answers 409 ``period_invoiced``.
- ``/api/v1/sla-certificates`` (list, scoped; CSV), ``/{id}``, ``/{id}/document`` (the signed JSON, byte for byte
  what was hashed into the proofs), ``/{id}/erc721`` (ERC-721 metadata), ``/public-key`` (the Ed25519 public keys:
  public, no login) and ``/verify`` (POST a certificate JSON, or a ``file`` upload: valid, or the reason). Module
  FINANCE, READ (a client sees only its own: another client's certificate is a 404). ``verify`` needs FINANCE or
  WEB3 READ: it reads no one's data, it checks what it is given."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.roles import Access, Module, has_access, sees_staff_identities
from hashinsight.billing import certificates, sla_selectors, sla_signing, sla_windows
from hashinsight.billing.api.common import FinanceView, valid
from hashinsight.core.api import parsers
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv

MAX_UPLOAD = 256 * 1024
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


def ordered(qs, sorts: dict, sort: str):
    field = sorts[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


# ---------------------------------------------------------------------------------------------------------
# Force-majeure windows

FM_SORTS = {"start": "start", "end": "end", "site": "site__name", "created": "created_at", "id": "id"}


class ForceMajeureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.IntegerField(source="site_id")
    site_name = serializers.CharField(source="site.name")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    hours = serializers.DecimalField(max_digits=10, decimal_places=2)
    reason = serializers.CharField()
    created_by = serializers.IntegerField(
        source="created_by_id", allow_null=True, help_text="the operator who entered it; null for a hosting client"
    )
    created_at = serializers.DateTimeField()
    frozen = serializers.BooleanField(help_text="an issued invoice covers it: no change or deletion")


class ForceMajeurePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ForceMajeureSerializer(many=True)


class ForceMajeureCreateSerializer(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    start = serializers.DateTimeField(help_text="ISO 8601 with a time zone")
    end = serializers.DateTimeField(help_text="after start, at most 92 days later")
    reason = serializers.CharField(max_length=500, help_text="what happened and who declared it")


class ForceMajeureFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    start_after = serializers.DateTimeField(required=False, help_text="windows ending after this moment")
    start_before = serializers.DateTimeField(required=False, help_text="windows starting before this moment")
    q = serializers.CharField(required=False, max_length=80, help_text="reason contains")
    sort = serializers.ChoiceField(choices=[*FM_SORTS, *(f"-{k}" for k in FM_SORTS)], required=False, default="-start")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


FM_CSV = [
    CsvColumn(_("Window"), "id"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Start (UTC)"), "start"),
    CsvColumn(_("End (UTC)"), "end"),
    CsvColumn(_("Reason"), "reason"),
    CsvColumn(_("Entered by"), "created_by__username"),
    CsvColumn(_("Entered (UTC)"), "created_at"),
]


def fm_csv_columns(user) -> list[CsvColumn]:
    """The export's columns for ``user``: the operator who entered a window only for operators."""
    if sees_staff_identities(user):
        return FM_CSV
    return [c for c in FM_CSV if c.field != "created_by__username"]


def fm_filtered(qs, p: dict):
    if p.get("site"):
        qs = qs.filter(site_id=p["site"])
    if p.get("start_after"):
        qs = qs.filter(end__gt=p["start_after"])
    if p.get("start_before"):
        qs = qs.filter(start__lt=p["start_before"])
    if p.get("q"):
        qs = qs.filter(reason__icontains=p["q"])
    return ordered(qs, FM_SORTS, p.get("sort") or "-start")


def fm_body(window, frozen: bool | None = None, *, user) -> dict:
    hours = round((window.end - window.start).total_seconds() / 3600, 2)
    if frozen is None:
        frozen = window.pk in sla_windows.frozen_ids([window])
    return {
        "id": window.pk, "site": window.site_id, "site_name": window.site.name, "start": window.start,
        "end": window.end, "hours": f"{hours:.2f}", "reason": window.reason,
        "created_by": window.created_by_id if sees_staff_identities(user) else None,
        "created_at": window.created_at, "frozen": frozen,
    }  # fmt: skip


class ForceMajeureListView(FinanceView):
    @extend_schema(
        operation_id="force_majeure_list", parameters=[ForceMajeureFilterSerializer],
        responses={200: ForceMajeurePageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["sla"],
    )  # fmt: skip
    def get(self, request):
        """Force-majeure windows of the sites you see, latest start first (``sort``: start, end, site, created, id;
        ``-`` for descending), filtered by ``site``, time and reason text; ``?format=csv`` exports them all."""
        p = valid(ForceMajeureFilterSerializer, request.query_params)
        qs = fm_filtered(sla_windows.force_majeure_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(fm_csv_columns(request.user), qs), "force-majeure")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        frozen = sla_windows.frozen_ids(page)
        return pager.get_paginated_response([fm_body(w, w.pk in frozen, user=request.user) for w in page])

    @extend_schema(
        operation_id="force_majeure_create", request=ForceMajeureCreateSerializer,
        responses={201: ForceMajeureSerializer}, tags=["sla"],
    )  # fmt: skip
    def post(self, request):
        """Declare a window at a site, with its reason: downtime inside it is excluded from the SLA. Refusals: 400
        naming the field, 404 for a site you do not see, 403, 409 ``period_invoiced`` when an issued invoice already
        covers those days."""
        d = valid(ForceMajeureCreateSerializer, request.data)
        window = sla_windows.force_majeure_create(
            actor=request.user, site_id=d["site"], start=d["start"], end=d["end"], reason=d["reason"]
        )
        return Response(fm_body(window, user=request.user), status=status.HTTP_201_CREATED)


class ForceMajeureDetailView(FinanceView):
    detail = True  # the service decides: hidden → 404, read-only → 403

    @extend_schema(operation_id="force_majeure_retrieve", responses={200: ForceMajeureSerializer}, tags=["sla"])
    def get(self, request, pk):
        """One window."""
        return Response(fm_body(sla_windows.force_majeure_get(user=request.user, pk=pk), user=request.user))

    @extend_schema(operation_id="force_majeure_delete", responses={204: None}, tags=["sla"])
    def delete(self, request, pk):
        """Remove a window (409 ``period_invoiced`` once an issued invoice covers it)."""
        window = sla_windows.force_majeure_get(user=request.user, pk=pk)
        if not has_access(request.user, Module.FINANCE, Access.FULL):
            raise DomainError("forbidden", gettext("You may not change force-majeure windows."), status=403)
        sla_windows.force_majeure_delete(actor=request.user, window=window)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------------------------------------
# SLA certificates

CERT_SORTS = {"month": "month", "client": "customer__company", "uptime": "uptime_pct", "credits": "credits",
              "issued": "issued_at", "id": "id"}  # fmt: skip


class CertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField()
    customer_name = serializers.CharField()
    contract = serializers.IntegerField()
    contract_number = serializers.CharField()
    site = serializers.IntegerField()
    month = serializers.CharField(help_text="YYYY-MM")
    uptime_pct = serializers.DecimalField(max_digits=6, decimal_places=3)
    target_pct = serializers.DecimalField(max_digits=5, decimal_places=2)
    met = serializers.BooleanField()
    credits = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.CharField()
    invoice = serializers.IntegerField(allow_null=True)
    invoice_number = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField()
    key_id = serializers.CharField()
    issued_at = serializers.DateTimeField()
    links = serializers.DictField(child=serializers.CharField())


class CertificatePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CertificateSerializer(many=True)


class CertificateDetailSerializer(CertificateSerializer):
    document = serializers.JSONField()


class CertificateFilterSerializer(serializers.Serializer):
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    contract = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    month = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", required=False, help_text="YYYY-MM")
    met = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(
        choices=[*CERT_SORTS, *(f"-{k}" for k in CERT_SORTS)], required=False, default="-month"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


CERT_CSV = [
    CsvColumn(_("Certificate"), "id"),
    CsvColumn(_("Hosting client"), "customer__company"),
    CsvColumn(_("Contract"), "contract__number"),
    CsvColumn(_("Month"), "month", display=lambda d: d.strftime("%Y-%m")),
    CsvColumn(_("SLA uptime (%)"), "uptime_pct"),
    CsvColumn(_("Target (%)"), "target_pct"),
    CsvColumn(_("Target met"), "met"),
    CsvColumn(_("SLA credits"), "credits"),
    CsvColumn(_("Currency"), "currency"),
    CsvColumn(_("Invoice"), "invoice__number"),
    CsvColumn(_("SHA-256"), "sha256"),
    CsvColumn(_("Issued (UTC)"), "issued_at"),
]


def cert_filtered(qs, p: dict):
    for key, field in (("customer", "customer_id"), ("contract", "contract_id"), ("site", "contract__site_id")):
        if p.get(key):
            qs = qs.filter(**{field: p[key]})
    if p.get("month"):
        year, month = map(int, p["month"].split("-"))
        qs = qs.filter(month__year=year, month__month=month)
    if p.get("met") is not None:
        qs = qs.filter(met=p["met"])
    return ordered(qs, CERT_SORTS, p.get("sort") or "-month")


def cert_links(cert) -> dict:
    return {
        "self": reverse("sla-certificate-detail", args=[cert.pk]),
        "document": reverse("sla-certificate-document", args=[cert.pk]),
        "erc721": reverse("sla-certificate-erc721", args=[cert.pk]),
    }


def cert_body(cert, *, full: bool = False) -> dict:
    body = {
        "id": cert.pk, "customer": cert.customer_id, "customer_name": cert.customer.company or cert.customer.slug,
        "contract": cert.contract_id, "contract_number": cert.contract.number, "site": cert.contract.site_id,
        "month": cert.month.strftime("%Y-%m"), "uptime_pct": cert.uptime_pct, "target_pct": cert.target_pct,
        "met": cert.met, "credits": cert.credits, "currency": cert.currency, "invoice": cert.invoice_id,
        "invoice_number": cert.invoice.number if cert.invoice_id else None, "sha256": cert.sha256,
        "key_id": cert.document.get("key_id", ""), "issued_at": cert.issued_at, "links": cert_links(cert),
    }  # fmt: skip
    if full:
        body["document"] = cert.document
    return body


def document_filename(cert, suffix: str = "") -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in cert.contract.number)
    return f"sla-certificate-{safe}-{cert.month:%Y-%m}{suffix}.json"


class CertificateListView(FinanceView):
    @extend_schema(
        operation_id="sla_certificates_list", parameters=[CertificateFilterSerializer],
        responses={200: CertificatePageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["sla"],
    )  # fmt: skip
    def get(self, request):
        """SLA certificates you may see (a client: its own), newest month first (``sort``: month, client, uptime,
        credits, issued, id), filtered by ``customer``, ``contract``, ``site``, ``month`` (YYYY-MM) and ``met``;
        ``?format=csv`` exports them all."""
        p = valid(CertificateFilterSerializer, request.query_params)
        qs = cert_filtered(sla_selectors.certificate_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(CERT_CSV, qs), "sla-certificates")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([cert_body(c) for c in page])


class CertificateDetailView(FinanceView):
    @extend_schema(operation_id="sla_certificates_retrieve", responses={200: CertificateDetailSerializer}, tags=["sla"])
    def get(self, request, pk):
        """One certificate with its signed document."""
        return Response(cert_body(sla_selectors.certificate_get(user=request.user, pk=pk), full=True))


class CertificateDocumentView(FinanceView):
    @extend_schema(operation_id="sla_certificates_document", responses={(200, "application/json"): OpenApiTypes.BINARY},
                   tags=["sla"])  # fmt: skip
    def get(self, request, pk):
        """The signed certificate as a file: the canonical JSON whose SHA-256 is the certificate's proof leaf."""
        cert = sla_selectors.certificate_get(user=request.user, pk=pk)
        response = HttpResponse(certificates.document_bytes(cert.document), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{document_filename(cert)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class CertificateErc721View(FinanceView):
    @extend_schema(operation_id="sla_certificates_erc721", responses={200: OpenApiTypes.OBJECT}, tags=["sla"])
    def get(self, request, pk):
        """The certificate as ERC-721 metadata (the "SLA NFT"): name, description, an SVG badge, attributes and a
        link to the certificate's page. ``?download=1`` sends it as a file."""
        cert = sla_selectors.certificate_get(user=request.user, pk=pk)
        url = request.build_absolute_uri(reverse("portal:sla-history") + f"?customer={cert.customer_id}")
        meta = certificates.erc721_metadata(cert, external_url=url)
        if request.query_params.get("download"):
            response = HttpResponse(json.dumps(meta, ensure_ascii=False, indent=2), content_type="application/json")
            response["Content-Disposition"] = f'attachment; filename="{document_filename(cert, "-erc721")}"'
            return response
        return Response(meta)


class PreviewFilterSerializer(serializers.Serializer):
    contract = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    month = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM")


class PreviewView(FinanceView):
    @extend_schema(operation_id="sla_preview", parameters=[PreviewFilterSerializer],
                   responses={200: OpenApiTypes.OBJECT}, tags=["sla"])  # fmt: skip
    def get(self, request):
        """A contract's SLA for a month as it stands now (month to date for the current month), classified from
        telemetry and the control plane exactly as the invoice will be: miner-hours, operator/client/excluded and
        curtailed hours, SLA uptime against the target, the credit the schedule gives, and how many miner-days each
        reason touched. Nothing is stored."""
        from datetime import date, timedelta

        from django.utils import timezone

        from hashinsight.billing import sla

        p = valid(PreviewFilterSerializer, request.query_params)
        contract = sla_selectors.contract_get(user=request.user, pk=p["contract"])
        year, month = map(int, p["month"].split("-"))
        start = date(year, month, 1)
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        end = min(end, timezone.now().date() - timedelta(days=1))  # days not yet rolled up are not judged
        first = max(start, contract.start_date)
        last = min(end, contract.end_date) if contract.end_date else end
        if last < first:
            raise DomainError("no_period", gettext("The contract covers no finished day of that month."),
                              details={"field": "month"})  # fmt: skip
        downtime = sla.classify_period(contract, first, last)
        summary = sla.period_summary(contract, first, last, downtime)
        reasons: dict[str, int] = {}
        for value in downtime.values():
            for code in set(value.reasons):
                reasons[code] = reasons.get(code, 0) + 1
        target = contract.sla_uptime_target_pct
        return Response({
            "contract": contract.pk, "contract_number": contract.number, "month": p["month"],
            "period_start": first, "period_end": last, **{k: str(v) for k, v in summary.items()},
            "target_pct": str(target), "met": summary["sla_uptime_pct"] >= target,
            "miner_days_by_reason": dict(sorted(reasons.items())),
        })  # fmt: skip


class PublicKeyView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="sla_certificates_public_key", auth=[], responses={200: OpenApiTypes.OBJECT},
                   tags=["sla"])  # fmt: skip
    def get(self, request):
        """The Ed25519 public keys that sign SLA certificates (the current one first; older ones still verify the
        certificates they signed): key id, raw key in base64 and PEM. Public: anyone may verify."""
        keys = sla_signing.public_keys()
        return Response(
            {
                "algorithm": sla_signing.ALGORITHM,
                "current": next(k.key_id for k in keys if k.current),
                "keys": [
                    {
                        "key_id": k.key_id,
                        "public_key": k.public_key_b64,
                        "pem": k.pem,
                        "created_at": k.created_at,
                        "current": k.current,
                    }
                    for k in keys
                ],
            }
        )


class CertificateVerifyResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    reason = serializers.CharField(help_text="ok | malformed | unknown_key | bad_signature | not_on_record | "
                                   "hash_mismatch")  # fmt: skip
    message = serializers.CharField()
    certificate_id = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    key_id = serializers.CharField(allow_null=True)
    recorded = serializers.BooleanField()
    proof_day = serializers.CharField(allow_null=True)


class VerifyView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="sla_certificates_verify", request=OpenApiTypes.OBJECT,
        responses={200: CertificateVerifyResultSerializer}, tags=["sla"],
    )  # fmt: skip
    def post(self, request):
        """Check a certificate: send the downloaded document as the JSON body, or as a ``file`` upload. The answer
        says whether it is valid, else the first failed check (``reason``), and whether its SHA-256 is a proof leaf.
        Needs FINANCE or WEB3 READ; a body that is not a JSON object is a 400."""
        if not (has_access(request.user, Module.FINANCE) or has_access(request.user, Module.WEB3)):
            raise DomainError("forbidden", gettext("You may not verify certificates."), status=403)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            if upload.size > MAX_UPLOAD:
                raise DomainError(
                    "too_large", gettext("A certificate file is at most 256 KB."), details={"field": "file"}
                )
            try:
                document = parsers.loads(upload.read())
            except ParseError:
                raise DomainError("invalid_json", gettext("The file is not JSON."), details={"field": "file"}) from None
        else:
            document = request.data
        if not isinstance(document, dict) or not document:
            raise DomainError(
                "invalid_body", gettext("Send the certificate document (a JSON object)."), details={"field": "body"}
            )
        return Response(certificates.verify_certificate(dict(document)).as_dict())
