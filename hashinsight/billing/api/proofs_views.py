"""The proofs API (module WEB3): ``/api/v1/proof-roots`` (daily Merkle roots: list, filters, CSV; a day's root; its
OP_RETURN script; recording its broadcast transaction), ``/api/v1/invoices/{id}/proof`` and
``/api/v1/sla-certificates/{id}/proof`` (inclusion proofs to download), ``/api/v1/proofs/verify`` (check a file
against a proof).

WEB3 READ (owners, admins, site owners, hosting clients) reads roots, proofs and verifies; FULL (owners, admins)
records a broadcast. Roots are not secret (a root says nothing about its leaves); a proof is: an invoice or
certificate outside the user's scope answers 404, as if it did not exist; a day not closed yet answers 409
``proof_day_not_closed``. Everything goes through ``hashinsight.billing.proofs``."""

from __future__ import annotations

from datetime import date

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing import merkle, proofs
from hashinsight.billing.api.common import valid
from hashinsight.billing.models import ProofRoot
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")
SORTS = {"day": "day", "leaf_count": "leaf_count", "created": "created_at"}
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a 10,000-miner month's statement is about 35 MB

ROOT_CSV = [
    CsvColumn(gettext_lazy("Day (UTC)"), "day"),
    CsvColumn(gettext_lazy("Merkle root (SHA-256)"), "root_sha256"),
    CsvColumn(gettext_lazy("Leaves"), "leaf_count"),
    CsvColumn(gettext_lazy("Audit chain head (seq)"), "audit_head_seq"),
    CsvColumn(gettext_lazy("Audit chain head (hash)"), "audit_head_hash"),
    CsvColumn(gettext_lazy("OP_RETURN script (hex)"), "op_return_hex"),
    CsvColumn(gettext_lazy("Broadcast transaction"), "broadcast_txid"),
    CsvColumn(gettext_lazy("Built (UTC)"), "created_at"),
]


class Web3Read(BasePermission):
    """WEB3 READ for every method: verifying a file changes nothing, so a POST needs no more than reading."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and has_access(request.user, Module.WEB3))


class Pagination(LimitOffsetPagination):
    default_limit = 31
    max_limit = 366


class RootSerializer(serializers.ModelSerializer):
    broadcast_txid = serializers.CharField(allow_blank=True)

    class Meta:
        model = ProofRoot
        fields = ["day", "root_sha256", "leaf_count", "audit_head_seq", "audit_head_hash", "op_return_hex",
                  "broadcast_txid", "created_at"]  # fmt: skip


class RootPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RootSerializer(many=True)


class RootFilterSerializer(serializers.Serializer):
    day = serializers.DateField(required=False)
    start = serializers.DateField(required=False, help_text="first day (UTC), inclusive")
    end = serializers.DateField(required=False, help_text="last day (UTC), inclusive")
    broadcast = serializers.BooleanField(required=False, allow_null=True, default=None,
                                         help_text="true: with a broadcast transaction; false: without")  # fmt: skip
    sort = serializers.ChoiceField(choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-day")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=366)
    offset = serializers.IntegerField(required=False, min_value=0)


class BroadcastSerializer(serializers.Serializer):
    txid = serializers.CharField(max_length=100, help_text="the Bitcoin transaction carrying the OP_RETURN script")


class VerifyRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="the statement CSV or SLA certificate JSON, as downloaded")
    proof = serializers.FileField(help_text="the inclusion proof JSON (a file, or the JSON as a text field)")


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="proof | document | path | audit_head | op_return | published_root")
    ok = serializers.BooleanField(allow_null=True, help_text="null: not checked")
    detail = serializers.CharField()


REASONS_HELP = (
    "'' when ok; else malformed_proof, document_mismatch, path_mismatch, audit_head_mismatch, op_return_mismatch, "
    "root_unknown, root_mismatch"
)


class VerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    reason = serializers.CharField(help_text=REASONS_HELP)
    message = serializers.CharField()
    day = serializers.DateField(allow_null=True)
    root = serializers.CharField(allow_null=True)
    root_source = serializers.CharField(help_text="database | proof")
    leaf = serializers.JSONField(allow_null=True)
    checks = CheckSerializer(many=True)


def filtered_roots(qs, p: dict):
    if p.get("day"):
        qs = qs.filter(day=p["day"])
    if p.get("start"):
        qs = qs.filter(day__gte=p["start"])
    if p.get("end"):
        qs = qs.filter(day__lte=p["end"])
    if p.get("broadcast") is True:
        qs = qs.exclude(broadcast_txid="")
    elif p.get("broadcast") is False:
        qs = qs.filter(broadcast_txid="")
    sort = p.get("sort") or "-day"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-day")


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise DomainError("not_found", _("No root for that day."), status=404) from exc


def _root(raw_day: str) -> ProofRoot:
    root = proofs.root_list().filter(day=_day(raw_day)).first()
    if root is None:
        raise DomainError("not_found", _("No root for that day."), status=404)
    return root


class RootListView(CsvCapableAPIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]

    @extend_schema(
        operation_id="proof_roots_list", parameters=[RootFilterSerializer],
        responses={200: RootPageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["proofs"],
    )  # fmt: skip
    def get(self, request):
        """Daily Merkle roots, newest first (``sort``: day, leaf_count, created; ``-`` for descending), filtered by
        ``day`` or ``start``/``end`` (UTC days, inclusive) and ``broadcast``, in ``limit``/``offset`` pages;
        ``?format=csv`` exports every matching root."""
        p = valid(RootFilterSerializer, request.query_params)
        qs = filtered_roots(proofs.root_list(), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(ROOT_CSV, qs), "proof-roots")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response(RootSerializer(page, many=True).data)


class RootDetailView(APIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]

    @extend_schema(operation_id="proof_roots_read", responses={200: RootSerializer}, tags=["proofs"])
    def get(self, request, day: str):
        """One day's root."""
        return Response(RootSerializer(_root(day)).data)


class BinaryRenderer(renderers.BaseRenderer):
    """Lets ``?format=bin`` through content negotiation; the view answers the script's bytes itself."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # pragma: no cover - never used
        return b""


class OpReturnView(APIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, BinaryRenderer]

    @extend_schema(
        operation_id="proof_roots_op_return",
        responses={200: OpenApiTypes.OBJECT, (200, "application/octet-stream"): OpenApiTypes.BINARY},
        tags=["proofs"],
    )
    def get(self, request, day: str):
        """The day's root as a Bitcoin OP_RETURN output script, ready to put in a transaction: ``script_hex``
        (``6a 24 48534931 <root>``: OP_RETURN, a 36-byte push of the tag "HSI1" and the 32-byte root), its
        ``asm``, the pushed ``data_hex``; ``?format=bin`` answers the script's raw bytes."""
        root = _root(day)
        script = root.op_return_hex
        if getattr(request.accepted_renderer, "format", None) == "bin":
            response = HttpResponse(bytes.fromhex(script), content_type="application/octet-stream")
            response["Content-Disposition"] = f'attachment; filename="op-return-{root.day.isoformat()}.bin"'
            return response
        return Response({
            "day": root.day, "root_sha256": root.root_sha256, "script_hex": script,
            "asm": merkle.op_return_asm(script), "data_hex": script[4:],
            "tag": merkle.OP_RETURN_TAG.decode(), "size_bytes": len(script) // 2,
            "broadcast_txid": root.broadcast_txid or None,
            "broadcast_enabled": proofs.broadcast_enabled(),
        })  # fmt: skip

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors of a ?format=bin request are answered in the standard JSON error shape.
        if (
            isinstance(response, Response)
            and getattr(getattr(request, "accepted_renderer", None), "format", "") == "bin"
        ):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class BroadcastView(APIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]

    def check_permissions(self, request):
        super().check_permissions(request)
        if not has_access(request.user, Module.WEB3, Access.FULL):
            self.permission_denied(request, message=_("Recording a broadcast needs full WEB3 access."))

    @extend_schema(operation_id="proof_roots_broadcast", request=BroadcastSerializer,
                   responses={200: RootSerializer}, tags=["proofs"])  # fmt: skip
    def post(self, request, day: str):
        """Record the Bitcoin transaction that carries the day's OP_RETURN script (an operator broadcast it). The
        same id again changes nothing; another id once one is recorded is a 409 ``already_broadcast``."""
        root = _root(day)
        p = valid(BroadcastSerializer, request.data)
        root = proofs.root_record_broadcast(day=root.day, txid=p["txid"], actor=request.user)
        return Response(RootSerializer(root).data)


def _proof_response(request, document: dict) -> Response:
    response = Response(document)
    if request.query_params.get("download") in ("1", "true"):
        response["Content-Disposition"] = f'attachment; filename="{proofs.proof_filename(document)}"'
    return response


class InvoiceProofView(APIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]

    @extend_schema(operation_id="invoices_proof", responses={200: OpenApiTypes.OBJECT}, tags=["proofs"])
    def get(self, request, pk: int):
        """The inclusion proof of an issued invoice's statement file (``?download=1`` as a file): check it with
        ``manage.py verify_statement statement.csv proof.json`` or /api/v1/proofs/verify. 404 for an invoice
        outside your scope; 409 ``proof_day_not_closed`` until its day is closed (hourly, after midnight UTC)."""
        return _proof_response(request, proofs.invoice_proof(user=request.user, invoice_id=int(pk)))


class CertificateProofView(APIView):
    module = Module.WEB3
    permission_classes = [ModuleAccess]

    @extend_schema(operation_id="sla_certificates_proof", responses={200: OpenApiTypes.OBJECT}, tags=["proofs"])
    def get(self, request, pk: int):
        """The inclusion proof of a monthly SLA certificate (its JSON file verifies by its bytes or its canonical
        JSON). 404 outside your scope; 409 ``proof_day_not_closed`` until its day is closed."""
        return _proof_response(request, proofs.certificate_proof(user=request.user, certificate_id=int(pk)))


def read_upload(upload, what: str, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise DomainError("file_too_large", _("The %(what)s is larger than %(mb)s MB.")
                          % {"what": what, "mb": limit // (1024 * 1024)}, status=413)  # fmt: skip
    return upload.read()


class VerifyView(APIView):
    module = Module.WEB3
    permission_classes = [Web3Read]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="proofs_verify", request={"multipart/form-data": VerifyRequestSerializer},
                   responses={200: VerifyResultSerializer}, tags=["proofs"])  # fmt: skip
    def post(self, request):
        """Check a document against its proof (multipart: ``file``, and ``proof`` as a file or a text field): the
        file's SHA-256 is the proof's leaf, the path leads to the root, the audit head and the OP_RETURN script
        agree, and the root is the one stored for its day. Always 200 with ``ok`` and, when not, the first failed
        check's ``reason``; every check is listed. Changes nothing."""
        upload = request.FILES.get("file")
        if upload is None:
            raise DomainError("missing_file", _("Send the document as a multipart field named 'file'."),
                              details={"file": _("required")})  # fmt: skip
        proof_upload = request.FILES.get("proof")
        if proof_upload is not None:
            raw_proof = read_upload(proof_upload, _("proof"), proofs.MAX_PROOF_BYTES)
        elif isinstance(request.data.get("proof"), str) and request.data["proof"].strip():
            raw_proof = request.data["proof"].encode("utf-8")
        else:
            raise DomainError("missing_proof", _("Send the proof as a multipart field named 'proof'."),
                              details={"proof": _("required")})  # fmt: skip
        data = read_upload(upload, _("document"), MAX_DOCUMENT_BYTES)
        result = proofs.verify_document(data, raw_proof, stored_root=proofs.stored_root_lookup)
        return Response(result.as_dict())
