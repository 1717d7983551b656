"""The reports API: ``/api/v1/reports`` (the jobs you see, filtered, sorted, in pages or as CSV; POST asks for a
report), ``/api/v1/reports/{id}`` (status, progress, files), ``/api/v1/reports/{id}/files/{format}`` (the file), and
``/api/v1/report-schedules`` (+ ``/{id}``: list, create, read, change, delete).

REPORT module. Reading jobs and files needs READ and the job in your scope (``hashinsight.reports.selectors``: a
hosting client sees only its own statements; anything else is a 404). Asking for a report needs READ: the service
decides (site reports need FULL; a client may re-render its own statements). Schedules need FULL for every method.
Bad input is a 400 naming the field; nothing is written then."""

from __future__ import annotations

from django.http import FileResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from hashinsight.reports import selectors, services
from hashinsight.reports.models import ReportFormat, ReportJob, ReportKind, ReportLanguage

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")
SORTS = {
    "created": "created_at",
    "month": "month",
    "status": "status",
    "kind": "kind",
    "id": "id",
    "finished": "finished_at",
}
REQUEST_KEYS = {"kind", "site", "invoice", "month", "language", "formats"}
SCHEDULE_KEYS = {"kind", "site", "customer", "language", "formats", "recipients", "day_of_month", "enabled"}


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class ReportView(CsvCapableAPIView):
    module = Module.REPORT
    permission_classes = [ModuleAccess]
    detail = True  # READ lets a request through; the service decides what may be asked for


class FullAccess(BasePermission):
    def has_permission(self, request, view):
        return bool(
            request.user and request.user.is_authenticated and has_access(request.user, Module.REPORT, Access.FULL)
        )


def valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _body(data, allowed: set[str]) -> dict:
    if hasattr(data, "getlist"):  # a form-encoded body: one value per key, lists for the list fields
        data = {k: data.getlist(k) if k in ("formats", "recipients") else data.get(k) for k in data}
    if not isinstance(data, dict):
        raise DomainError("invalid_body", "The body is a JSON object.", details={"field": "body"})
    unknown = set(data) - allowed
    if unknown:
        raise DomainError(
            "invalid_body", f"Unknown keys: {', '.join(sorted(map(str, unknown)))}.", details={"field": "body"}
        )
    return dict(data)


# ---------------------------------------------------------------------------------------------------------
# Serializers (the documentation of the bodies; the services check the input)


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="site_monthly | client_statement")
    site = serializers.IntegerField(required=False, help_text="site id (site_monthly)")
    invoice = serializers.IntegerField(required=False, help_text="invoice id (client_statement)")
    month = serializers.CharField(required=False, help_text="YYYY-MM (site_monthly; a statement has its invoice's)")
    language = serializers.CharField(required=False, help_text="en | zh-hans (default en)")
    formats = serializers.ListField(child=serializers.CharField(), required=False, help_text="pdf, xlsx, pptx")


class ReportFileSerializer(serializers.Serializer):
    format = serializers.CharField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField()


class ReportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    site = serializers.IntegerField(allow_null=True)
    site_name = serializers.CharField(allow_null=True)
    customer = serializers.IntegerField(allow_null=True)
    customer_name = serializers.CharField(allow_null=True)
    invoice = serializers.IntegerField(allow_null=True)
    month = serializers.CharField()
    language = serializers.CharField()
    formats = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="queued | running | done | failed")
    progress_pct = serializers.IntegerField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    files = ReportFileSerializer(many=True)


class ReportFilterSerializer(serializers.Serializer):
    # Text, not enums: other components' "kind"/"status" enums would otherwise collide in the schema's names.
    kind = serializers.CharField(required=False, help_text="site_monthly | client_statement")
    status = serializers.CharField(required=False, help_text="queued | running | done | failed")
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    month = serializers.RegexField(r"^\d{4}-\d{2}$", required=False, help_text="YYYY-MM")
    sort = serializers.ChoiceField(choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-created")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)

    def validate_kind(self, value):
        if value not in ReportKind.values:
            raise serializers.ValidationError("site_monthly or client_statement")
        return value

    def validate_status(self, value):
        if value not in ReportJob.Status.values:
            raise serializers.ValidationError("queued, running, done or failed")
        return value


class ReportScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(help_text="site_monthly | client_statement")
    site = serializers.IntegerField(required=False, allow_null=True)
    customer = serializers.IntegerField(required=False, allow_null=True)
    language = serializers.CharField(required=False)
    formats = serializers.ListField(child=serializers.CharField(), required=False)
    recipients = serializers.ListField(child=serializers.EmailField())
    day_of_month = serializers.IntegerField(required=False, help_text="1-28; default 2")
    enabled = serializers.BooleanField(required=False)
    last_month_sent = serializers.CharField(read_only=True, allow_null=True)


JOB_CSV = [
    CsvColumn(_("Report"), "id"),
    CsvColumn(_("Kind"), "kind", display=dict(ReportKind.choices)),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Hosting client"), "customer__company"),
    CsvColumn(_("Invoice"), "invoice__number"),
    CsvColumn(_("Month"), "month"),
    CsvColumn(_("Language"), "language", display=dict(ReportLanguage.choices)),
    CsvColumn(_("Formats"), "formats", display=lambda v: " ".join(v or [])),
    CsvColumn(_("Status"), "status", display=dict(ReportJob.Status.choices)),
    CsvColumn(_("Progress (%)"), "progress_pct"),
    CsvColumn(_("Message"), "message"),
    CsvColumn(_("Requested (UTC)"), "created_at"),
    CsvColumn(_("Finished (UTC)"), "finished_at"),
]


def job_body(job: ReportJob) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "site": job.site_id,
        "site_name": job.site.name if job.site else None,
        "customer": job.customer_id,
        "customer_name": job.customer.company if job.customer else None,
        "invoice": job.invoice_id,
        "month": f"{job.month:%Y-%m}",
        "language": job.language,
        "formats": job.formats,
        "status": job.status,
        "progress_pct": job.progress_pct,
        "message": job.message,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "files": [
            {
                "format": f.format,
                "size_bytes": f.size_bytes,
                "sha256": f.sha256,
                "url": f"/api/v1/reports/{job.pk}/files/{f.format}",
            }
            for f in sorted(job.files.all(), key=lambda f: ReportFormat.values.index(f.format))
        ],
    }


def schedule_body(s) -> dict:
    return {
        "id": s.pk,
        "kind": s.kind,
        "site": s.site_id,
        "customer": s.customer_id,
        "language": s.language,
        "formats": s.formats,
        "recipients": s.recipients,
        "day_of_month": s.day_of_month,
        "enabled": s.enabled,
        "last_month_sent": f"{s.last_month_sent:%Y-%m}" if s.last_month_sent else None,
    }


def filtered(qs, p: dict):
    for key in ("kind", "status"):
        if p.get(key):
            qs = qs.filter(**{key: p[key]})
    if p.get("site") is not None:
        qs = qs.filter(site_id=p["site"])
    if p.get("customer") is not None:
        qs = qs.filter(customer_id=p["customer"])
    if p.get("month"):
        qs = qs.filter(month=services.parse_month(p["month"]))
    sort = p.get("sort") or "-created"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


# ---------------------------------------------------------------------------------------------------------
# Views


class ReportListView(ReportView):
    # Not a generic view, but drf-spectacular reads ``pagination_class`` to document the list as the envelope this
    # paginator answers ({count, next, previous, results}) rather than a bare array.
    pagination_class = Pagination

    @extend_schema(
        operation_id="reports_list",
        parameters=[ReportFilterSerializer],
        responses={200: ReportJobSerializer(many=True), (200, "text/csv"): CSV_RESPONSE},
        tags=["reports"],
    )
    def get(self, request):
        """Report jobs you see, newest first (``sort``: created, month, status, kind, id, finished; ``-`` for
        descending), filtered by ``kind``, ``status``, ``site``, ``customer`` and ``month``; ``?format=csv`` exports
        every matching row."""
        p = valid(ReportFilterSerializer, request.query_params)
        qs = filtered(selectors.report_job_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(JOB_CSV, qs), "reports")
        pager = self.pagination_class()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([job_body(j) for j in page])

    @extend_schema(
        operation_id="reports_request",
        request=ReportRequestSerializer,
        responses={202: ReportJobSerializer},
        tags=["reports"],
    )
    def post(self, request):
        """Ask for a report: ``site_monthly`` (``site``, ``month``) or ``client_statement`` (``invoice``), in
        ``language`` and ``formats``. Answers 202 with the job; poll it for progress. The same request while an
        identical job is queued or running answers that job."""
        body = _body(request.data, REQUEST_KEYS)
        job = services.report_request(user=request.user, **body)
        job = selectors.report_job_get(user=request.user, job_id=job.pk)
        return Response(job_body(job), status=status.HTTP_202_ACCEPTED)


class ReportDetailView(ReportView):
    @extend_schema(operation_id="reports_retrieve", responses={200: ReportJobSerializer}, tags=["reports"])
    def get(self, request, pk):
        """One job: its status, progress (0-100), message (why it failed) and files."""
        return Response(job_body(selectors.report_job_get(user=request.user, job_id=pk)))


class ReportFileView(ReportView):
    @extend_schema(
        operation_id="reports_file",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        tags=["reports"],
    )
    def get(self, request, pk, fmt):
        """The rendered file (pdf, xlsx or pptx) as an attachment; its SHA-256 in ``X-Content-SHA256``."""
        file = selectors.report_file_get(user=request.user, job_id=pk, fmt=fmt)
        return file_response(file)


def file_response(file) -> FileResponse:
    response = FileResponse(
        file.file.open("rb"),
        as_attachment=True,
        filename=file.file.name.rsplit("/", 1)[-1],
        content_type=services.CONTENT_TYPES.get(file.format, "application/octet-stream"),
    )
    response["X-Content-SHA256"] = file.sha256
    response["Cache-Control"] = "private, no-store"
    return response


class ScheduleListView(APIView):
    # JSON only (the portal page has the CSV); the list is paginated, documented from ``pagination_class``.
    permission_classes = [FullAccess]
    pagination_class = Pagination

    @extend_schema(
        operation_id="report_schedules_list", responses={200: ReportScheduleSerializer(many=True)}, tags=["reports"]
    )
    def get(self, request):
        """The report schedules you see (REPORT FULL)."""
        qs = selectors.report_schedule_list(user=request.user).order_by("kind", "id")
        pager = self.pagination_class()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([schedule_body(s) for s in page])

    @extend_schema(
        operation_id="report_schedules_create",
        request=ReportScheduleSerializer,
        responses={201: ReportScheduleSerializer},
        tags=["reports"],
    )
    def post(self, request):
        """Create a schedule: on ``day_of_month`` (1-28) last month's report is rendered and its recipients get
        expiring links (a client statement: each issued invoice of that month)."""
        row = services.schedule_create(user=request.user, **_body(request.data, SCHEDULE_KEYS))
        return Response(schedule_body(row), status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    permission_classes = [FullAccess]

    @extend_schema(
        operation_id="report_schedules_retrieve", responses={200: ReportScheduleSerializer}, tags=["reports"]
    )
    def get(self, request, pk):
        return Response(schedule_body(selectors.report_schedule_get(user=request.user, schedule_id=pk)))

    @extend_schema(
        operation_id="report_schedules_update",
        request=ReportScheduleSerializer,
        responses={200: ReportScheduleSerializer},
        tags=["reports"],
    )
    def patch(self, request, pk):
        """Change language, formats, recipients, day_of_month or enabled."""
        row = selectors.report_schedule_get(user=request.user, schedule_id=pk)
        row = services.schedule_update(user=request.user, schedule=row, **_body(request.data, set(services.UPDATABLE)))
        return Response(schedule_body(row))

    @extend_schema(operation_id="report_schedules_delete", responses={204: None}, tags=["reports"])
    def delete(self, request, pk):
        row = selectors.report_schedule_get(user=request.user, schedule_id=pk)
        services.schedule_delete(user=request.user, schedule=row)
        return Response(status=status.HTTP_204_NO_CONTENT)
