"""The curtailment events API: ``/api/v1/curtailment/events`` (list with filters, sort, pages and CSV; start),
``/api/v1/curtailment/events/preview``, ``/api/v1/curtailment/events/{id}`` (read), ``…/{id}/end``, and the
demand-response webhook ``/api/v1/curtailment/dr/<slug>``.

CURTAILMENT module: READ to read, FULL to preview, start and end (hosting clients, app customers and guests have
none: they see no event); a hidden site or event is a 404, a site seen through a read-only grant a 403. Every read
and write goes through ``intelligence.curtailment_events`` (the webhook through ``intelligence.dr_webhook``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import curtailment_events as events
from intelligence import dr_webhook
from intelligence.api.curtailment_common import CSV_RESPONSE, CurtailmentView, valid
from intelligence.models import CurtailmentEvent, CurtailmentMode, CurtailmentPriority

SORTS = {
    "starts": "starts_at", "created": "created_at", "id": "id", "site": "site__name", "status": "status",
    "energy": "energy_avoided_kwh", "revenue": "revenue_forgone_usd", "shed": "shed_kw",
}  # fmt: skip


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class ScopeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="site | zone | rack | customer | miners")
    ids = serializers.ListField(child=serializers.JSONField(), help_text="zone/customer ids, rack names, serials")


class PreviewRequestSerializer(serializers.Serializer):
    """The request body (checked by ``intelligence.curtailment_events``; this is its documentation)."""

    site = serializers.IntegerField(help_text="site id")
    # Text, not enums, in the request serializers: other components' "mode"/"priority" enums would collide.
    mode = serializers.CharField(required=False, help_text="kw_reduction | full_stop; default: the profile's")
    scope = ScopeSerializer(required=False, help_text="default: the profile's, else the whole site")
    target_kw = serializers.DecimalField(max_digits=12, decimal_places=3, required=False)
    priority = serializers.CharField(required=False, help_text="normal | emergency")
    profile = serializers.IntegerField(required=False, help_text="a response profile of the site")
    soft = serializers.BooleanField(required=False, default=False, help_text="throttle instead of stopping")
    client_priority = serializers.JSONField(required=False, help_text='{"own"|client id: n or "firm"}')
    restore_batch_size = serializers.IntegerField(required=False, min_value=1)
    restore_interval_seconds = serializers.IntegerField(required=False, min_value=0)


class StartRequestSerializer(PreviewRequestSerializer):
    starts_at = serializers.DateTimeField(required=False, help_text="default now; at most 7 days ahead")
    min_duration_minutes = serializers.IntegerField(required=False, min_value=0)
    max_duration_minutes = serializers.IntegerField(required=False, min_value=1)
    drift_action = serializers.CharField(required=False, help_text="recurtail | flag")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class EndRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    force = serializers.BooleanField(required=False, default=False, help_text="owners: before the minimum duration")


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.IntegerField()
    site_name = serializers.CharField()
    # Text, not an enum: another component's "status" enum would otherwise collide in the schema's names.
    status = serializers.CharField(help_text="scheduled | active | restoring | ended | cancelled | failed")
    source = serializers.CharField(help_text="manual | webhook | responder")
    program = serializers.IntegerField(allow_null=True)
    external_id = serializers.CharField()
    reason = serializers.CharField()
    profile = serializers.IntegerField(allow_null=True)
    scope = serializers.JSONField()
    mode = serializers.CharField()
    target_kw = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    priority = serializers.CharField()
    starts_at = serializers.DateTimeField()
    min_end_at = serializers.DateTimeField()
    max_end_at = serializers.DateTimeField()
    end_requested_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    restore_batch_size = serializers.IntegerField()
    restore_interval_seconds = serializers.IntegerField()
    drift_action = serializers.CharField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    shed_kw = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    energy_avoided_kwh = serializers.DecimalField(max_digits=14, decimal_places=3)
    revenue_forgone_usd = serializers.DecimalField(max_digits=14, decimal_places=2)
    created_by = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class EventDetailSerializer(EventSerializer):
    miners_summary = serializers.JSONField()
    commands = serializers.ListField(child=serializers.JSONField())
    preview = serializers.JSONField()
    can_end = serializers.BooleanField()


class EventPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = EventSerializer(many=True)


class EventFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=CurtailmentEvent.Status.values, required=False)
    source = serializers.ChoiceField(choices=CurtailmentEvent.Source.values, required=False)
    priority = serializers.ChoiceField(choices=CurtailmentPriority.values, required=False)
    sort = serializers.ChoiceField(
        choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-starts", help_text="- for descending"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


EVENT_CSV = [
    CsvColumn(_("Event"), "id"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Status"), "status", display=dict(CurtailmentEvent.Status.choices)),
    CsvColumn(_("Source"), "source", display=dict(CurtailmentEvent.Source.choices)),
    CsvColumn(_("Mode"), "mode", display=dict(CurtailmentMode.choices)),
    CsvColumn(_("Priority"), "priority", display=dict(CurtailmentPriority.choices)),
    CsvColumn(_("Reduction asked (kW)"), "target_kw"),
    CsvColumn(_("Shed (kW)"), "shed_kw"),
    CsvColumn(_("Start (UTC)"), "starts_at"),
    CsvColumn(_("Latest end (UTC)"), "max_end_at"),
    CsvColumn(_("Ended (UTC)"), "ended_at"),
    CsvColumn(_("Energy avoided (kWh)"), "energy_avoided_kwh"),
    CsvColumn(_("Revenue forgone (USD)"), "revenue_forgone_usd"),
    CsvColumn(_("External event id"), "external_id"),
    CsvColumn(_("Reason"), "reason"),
]


def filtered(qs, p: dict):
    for key in ("status", "source", "priority"):
        if p.get(key):
            qs = qs.filter(**{key: p[key]})
    if p.get("site") is not None:
        qs = qs.filter(site_id=p["site"])
    sort = p.get("sort") or "-starts"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


def _kwargs(data, *, start: bool) -> dict:
    """The body as the service's keyword arguments. The service checks them; values are passed as sent (the
    serializers above are the documentation), so a wrong type is the service's 400 naming the field."""
    if not isinstance(data, dict):
        raise events._bad("invalid_body", "body", "is a JSON object")
    names = {
        "mode", "scope", "target_kw", "priority", "soft", "client_priority", "restore_batch_size",
        "restore_interval_seconds",
    }  # fmt: skip
    if start:
        names |= {"starts_at", "min_duration_minutes", "max_duration_minutes", "drift_action", "reason"}
    unknown = set(data) - names - {"site", "profile"}
    if unknown:
        raise events._bad("invalid_body", "body", f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    kw = {k: data[k] for k in names if k in data and data[k] is not None}
    if "soft" in kw and not isinstance(kw["soft"], bool):
        raise events._bad("invalid", "soft", "is true or false")
    return {"site_id": data.get("site"), "profile_id": data.get("profile"), **kw}


class EventListView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_events_list", parameters=[EventFilterSerializer],
        responses={200: EventPageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request):
        """Curtailment events of the sites you see, newest start first (``sort``: starts, created, id, site,
        status, energy, revenue, shed; ``-`` for descending), filtered by ``site``, ``status``, ``source`` and
        ``priority``, in ``limit``/``offset`` pages; ``?format=csv`` exports every matching row."""
        p = valid(EventFilterSerializer, request.query_params)
        qs = filtered(events.event_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(EVENT_CSV, qs), "curtailment-events")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([events.event_body(e, full=False) for e in page])

    @extend_schema(
        operation_id="curtailment_events_start", request=StartRequestSerializer,
        responses={201: EventDetailSerializer}, tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """Start (or schedule, with ``starts_at``) an event: the preview's miners are curtailed through one CURTAIL
        command per restore batch, proposed to the control plane (its approvals apply). Refusals: 400 naming the
        field (``cannot_shed`` with ``details.available_kw``), 403, 404."""
        event = events.event_start(actor=request.user, **_kwargs(request.data, start=True))
        return Response(events.event_body(event), status=status.HTTP_201_CREATED)


class EventPreviewView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_events_preview", request=PreviewRequestSerializer,
        responses={200: OpenApiTypes.OBJECT}, tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """What an event would do, changing nothing: the miners (restore order, batch, kW, TH/s, J/TH), kW shed,
        energy and revenue forgone per hour at the current hashprice, the restore batches and their total time."""
        return Response(events.event_preview(actor=request.user, **_kwargs(request.data, start=False)))


class EventDetailView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_events_retrieve", responses={200: EventDetailSerializer}, tags=["curtailment"]
    )
    def get(self, request, pk):
        """One event with its miners' summary (per state, batches, drifts), its commands and its preview."""
        return Response(events.event_body(events.event_get(user=request.user, event_id=int(pk))))


class EventEndView(CurtailmentView):
    detail = True  # the service decides: hidden → 404, read-only → 403

    @extend_schema(
        operation_id="curtailment_events_end", request=EndRequestSerializer, responses={200: EventDetailSerializer},
        tags=["curtailment"],
    )  # fmt: skip
    def post(self, request, pk):
        """End now: the batches are restored one interval apart (before the start: cancelled). 409 ``min_duration``
        before the earliest end, unless the event is an emergency or an owner forces it. Ending an event already
        ended changes nothing."""
        event = events.event_get(user=request.user, event_id=int(pk))
        data = valid(EndRequestSerializer, request.data)
        event = events.event_end(actor=request.user, event=event, reason=data["reason"], force=data["force"])
        return Response(events.event_body(event))


class DRWebhookThrottle(SimpleRateThrottle):
    """Per programme and sender address. The rate is ``dr_webhook`` in DEFAULT_THROTTLE_RATES, else 60 a minute."""

    scope = "dr_webhook"
    DEFAULT_RATE = "60/min"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope) or self.DEFAULT_RATE

    def get_cache_key(self, request, view):
        ident = f"{view.kwargs.get('slug', '')}:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class DRWebhookView(APIView):
    """The demand-response webhook. Machine to machine: no session and no token (the HMAC signature is the
    authentication), so no CSRF check either: CSRF protects a browser's ambient cookies, and this endpoint
    accepts none (``authentication_classes`` is empty, so DRF never enforces CSRF here, and Django's middleware
    is bypassed by ``APIView.as_view``, which is csrf_exempt)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [DRWebhookThrottle]

    @extend_schema(
        operation_id="curtailment_dr_webhook", auth=[], request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(dr_webhook.TIMESTAMP_HEADER, str, OpenApiParameter.HEADER, required=True,
                             description="Unix seconds when sent (±5 min)"),
            OpenApiParameter(dr_webhook.SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True,
                             description='sha256=<hex HMAC-SHA256 of timestamp + "." + raw body>'),
        ],
        responses={201: EventSerializer, 200: EventSerializer}, tags=["curtailment"],
    )  # fmt: skip
    def post(self, request, slug):
        """Start or end an event for a demand-response programme (see docs/API.md for the signature)."""
        body = request.body  # the raw bytes, as signed; read before anything parses them
        event, created = dr_webhook.dr_message(
            slug=slug,
            timestamp=request.headers.get(dr_webhook.TIMESTAMP_HEADER, request.headers.get(dr_webhook.TIMESTAMP_ALIAS)),
            signature=request.headers.get(dr_webhook.SIGNATURE_HEADER, request.headers.get(dr_webhook.SIGNATURE_ALIAS)),
            body=body,
        )  # fmt: skip
        return Response(
            {**events.event_body(event, full=False), "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
