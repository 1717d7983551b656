"""``GET /api/v1/audit`` (the audit chain, newest first, keyset pages, ``?format=csv``) and
``GET /api/v1/audit/verify`` (the chain verified, cached a short while). Owners and admins only:
audit payloads come from every site and are not scoped, like the other event payloads (SYSTEM FULL);
everyone else is answered 403."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.core.dates import parse_day_or_moment
from hashinsight.events.audit import verify_cached
from hashinsight.events.models import AuditEvent
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv

MAX_PAGE = 500


class SystemFull(BasePermission):
    """SYSTEM FULL (owners and admins), for reads too."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and has_access(user, Module.SYSTEM, Access.FULL))


def _when(raw: str, *, end: bool) -> datetime:
    """An ISO-8601 date-time (UTC if it has no offset) or a date (its start, or for ``to`` its end)."""
    value, day = parse_day_or_moment(raw)
    if value is None:
        raise serializers.ValidationError(_("Enter an ISO-8601 date or date-time."))
    return datetime.combine(day, time.max, tzinfo=UTC) if day is not None and end else value


class AuditQuerySerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False, min_value=1)
    actor_type = serializers.ChoiceField(choices=AuditEvent.ActorType.choices, required=False)
    actor_id = serializers.CharField(required=False, max_length=64)
    event_type = serializers.CharField(required=False, max_length=64)
    reference = serializers.CharField(required=False, max_length=200, help_text="exact, e.g. command:12")
    to = serializers.CharField(required=False, max_length=40, help_text="ISO-8601 date or date-time (UTC if no offset)")
    cursor = serializers.IntegerField(required=False, min_value=1, help_text="next_cursor of the previous page")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, default=50)

    def validate_to(self, value):
        return _when(value, end=True)

    def validate(self, attrs):
        raw = self.initial_data.get("from")
        if raw:
            try:
                attrs["from"] = _when(raw, end=False)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"from": exc.detail}) from exc
        return attrs


AuditQuerySerializer._declared_fields["from"] = serializers.CharField(
    required=False, max_length=40, help_text="ISO-8601 date or date-time (UTC if no offset)"
)


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    site = serializers.IntegerField(source="site_id", allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "created_at",
            "site",
            "actor_type",
            "actor_id",
            "event_type",
            "reference",
            "payload",
            "prev_hash",
            "event_hash",
        ]


class AuditPageSerializer(serializers.Serializer):
    next_cursor = serializers.IntegerField(allow_null=True)
    next = serializers.CharField(allow_null=True)
    results = AuditEventSerializer(many=True)


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    count = serializers.IntegerField()
    first_broken = serializers.DictField(allow_null=True)
    head_seq = serializers.IntegerField(allow_null=True)
    head_hash = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField()


AUDIT_CSV = [
    CsvColumn(_("Sequence"), "seq"),
    CsvColumn(_("Id"), "public_id"),
    CsvColumn(_("Created (UTC)"), "created_at"),
    CsvColumn(_("Site"), "site_id"),
    CsvColumn(_("Actor type"), "actor_type", display=dict(AuditEvent.ActorType.choices)),
    CsvColumn(_("Actor id"), "actor_id"),
    CsvColumn(_("Event type"), "event_type"),
    CsvColumn(_("Reference"), "reference"),
    CsvColumn(_("Payload (JSON)"), "payload", display=lambda v: None if v is None else _json(v)),
    CsvColumn(_("Previous hash"), "prev_hash"),
    CsvColumn(_("Hash"), "event_hash"),
]


def _json(value) -> str:
    from hashinsight.security.canonical import canonical_json

    return canonical_json(value).decode()


def filter_events(qs, p: dict):
    """The list's filters (validated query parameters)."""
    if p.get("site"):
        qs = qs.filter(site_id=p["site"])
    for name in ("actor_type", "actor_id", "event_type", "reference"):
        if p.get(name):
            qs = qs.filter(**{name: p[name]})
    if p.get("from"):
        qs = qs.filter(created_at__gte=p["from"])
    if p.get("to"):
        qs = qs.filter(created_at__lte=p["to"])
    return qs


class AuditView(CsvCapableAPIView):
    """CSV negotiation and the standard error shape (CsvCapableAPIView), for SYSTEM FULL only."""

    module = Module.SYSTEM
    permission_classes = [SystemFull]


class AuditListView(AuditView):
    """The audit chain, newest first, filtered; keyset pages on ``seq`` (follow ``next``, or pass
    ``cursor=next_cursor`` with the same filters). ``?format=csv`` streams every matching event."""

    @extend_schema(parameters=[AuditQuerySerializer], responses={200: AuditPageSerializer}, tags=["audit"])
    def get(self, request):
        params = AuditQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        qs = filter_events(AuditEvent.objects.all(), p).order_by("-seq")
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(AUDIT_CSV, qs), "audit")
        if p.get("cursor"):
            qs = qs.filter(seq__lt=p["cursor"])
        rows = list(qs[: p["limit"] + 1])
        more = len(rows) > p["limit"]
        rows = rows[: p["limit"]]
        next_cursor = rows[-1].seq if more else None
        next_url = None
        if next_cursor:
            query = request.query_params.copy()
            query["cursor"] = str(next_cursor)
            next_url = f"{request.path}?{query.urlencode()}"
        return Response(
            {"next_cursor": next_cursor, "next": next_url, "results": AuditEventSerializer(rows, many=True).data}
        )


class AuditVerifyView(AuditView):
    """Verifies the whole chain: ok with the count, or the first broken event and why. Cached 60 s."""

    @extend_schema(responses={200: VerifySerializer}, tags=["audit"])
    def get(self, request):
        return Response(VerifySerializer(verify_cached()).data)
