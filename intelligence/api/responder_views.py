"""The real-time responder API: ``/api/v1/sites/{id}/responder`` (GET the settings, PUT to change them) and
``/api/v1/sites/{id}/responder/decisions`` (list with sort, filter, pages and CSV).

CURTAILMENT module: READ to read, FULL and a manage grant on the site to change; a hidden site is a 404. Every read
and write goes through ``intelligence.responder``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import responder as service

SORTS = {"interval": "interval_start", "price": "price_usd_per_mwh", "used": "decided_price_usd_per_mwh", "id": "id"}


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ResponderSerializer(serializers.Serializer):
    site = serializers.IntegerField(read_only=True)
    enabled = serializers.BooleanField()
    hysteresis_usd_per_mwh = serializers.DecimalField(max_digits=8, decimal_places=2)
    min_on_minutes = serializers.IntegerField(min_value=0, max_value=1440)
    min_off_minutes = serializers.IntegerField(min_value=0, max_value=1440)
    ramp_kw_per_hour = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    command_mode = serializers.ChoiceField(choices=service.MODES)
    last_interval_start = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_by = serializers.IntegerField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    interval_start = serializers.DateTimeField()
    price_usd_per_mwh = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="last published price")
    decided_price_usd_per_mwh = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="the nowcast of the interval, compared with the breakevens"
    )
    decision = serializers.JSONField(help_text="groups (breakeven, on before/after), actions, held, power_kw, cap_kw")
    commands = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


class DecisionFilterSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="intervals starting at or after (UTC)")
    until = serializers.DateTimeField(required=False, help_text="intervals starting before (UTC)")
    acted = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="only decisions that moved a group (or none)"
    )
    sort = serializers.ChoiceField(
        choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-interval", help_text="- descending"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200)
    offset = serializers.IntegerField(required=False, min_value=0)


def settings_body(r) -> dict:
    return {
        "site": r.site_id, "enabled": r.enabled, "hysteresis_usd_per_mwh": str(r.hysteresis_usd_per_mwh),
        "min_on_minutes": r.min_on_minutes, "min_off_minutes": r.min_off_minutes,
        "ramp_kw_per_hour": None if r.ramp_kw_per_hour is None else str(r.ramp_kw_per_hour),
        "command_mode": r.command_mode, "last_interval_start": r.last_interval_start,
        "updated_by": r.updated_by_id, "updated_at": r.updated_at,
    }  # fmt: skip


def decision_body(d) -> dict:
    return {
        "id": d.pk, "interval_start": d.interval_start, "price_usd_per_mwh": str(d.price_usd_per_mwh),
        "decided_price_usd_per_mwh": str(d.decided_price_usd_per_mwh), "decision": d.decision,
        "commands": sorted(c.pk for c in d.commands.all()), "created_at": d.created_at,
    }  # fmt: skip


def actions_text(decision) -> str:
    return "; ".join(f"{a['group']} {a['from_on']}→{a['to_on']}" for a in (decision or {}).get("actions", []))


DECISION_CSV = [
    CsvColumn(_("Decision"), "id"),
    CsvColumn(_("Interval start (UTC)"), "interval_start"),
    CsvColumn(_("Last price (USD/MWh)"), "price_usd_per_mwh"),
    CsvColumn(_("Price used (USD/MWh)"), "decided_price_usd_per_mwh"),
    CsvColumn(_("Moves (group from→to miners on)"), "decision", display=actions_text),
    CsvColumn(_("Decided (UTC)"), "created_at"),
]
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")


def filtered(qs, p: dict):
    if p.get("since"):
        qs = qs.filter(interval_start__gte=p["since"])
    if p.get("until"):
        qs = qs.filter(interval_start__lt=p["until"])
    if p.get("acted") is not None:
        qs = qs.exclude(decision__actions=[]) if p["acted"] else qs.filter(decision__actions=[])
    sort = p.get("sort") or "-interval"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


class _ResponderView(CsvCapableAPIView):
    module = Module.CURTAILMENT
    permission_classes = [ModuleAccess]
    detail = True  # the service decides: hidden → 404, read-only or no FULL → 403


class ResponderView(_ResponderView):
    @extend_schema(operation_id="site_responder_retrieve", responses={200: ResponderSerializer}, tags=["curtailment"])
    def get(self, request, pk):
        """The site's real-time responder settings (defaults, disabled, if never saved)."""
        return Response(settings_body(service.responder_get(user=request.user, site_id=int(pk))))

    @extend_schema(
        operation_id="site_responder_update", request=ResponderSerializer, responses={200: ResponderSerializer},
        tags=["curtailment"],
    )  # fmt: skip
    def put(self, request, pk):
        """Change the settings (only the keys given): ``enabled``, ``hysteresis_usd_per_mwh`` (0–1000),
        ``min_on_minutes`` / ``min_off_minutes`` (0–1440), ``ramp_kw_per_hour`` (≥ 0 or null: no limit),
        ``command_mode`` (hard | soft). The responder's commands are proposed as the user who saved last. Bad values
        → 400 with ``details.field``; nothing changes."""
        r = service.responder_update(actor=request.user, site_id=int(pk), data=request.data)
        return Response(settings_body(r))


class DecisionListView(_ResponderView):
    # Not a generic view, but drf-spectacular reads ``pagination_class`` to document the list as the envelope this
    # paginator answers ({count, next, previous, results}) rather than a bare array.
    pagination_class = Pagination

    @extend_schema(
        operation_id="site_responder_decisions", parameters=[DecisionFilterSerializer],
        responses={200: DecisionSerializer(many=True), (200, "text/csv"): CSV_RESPONSE}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request, pk):
        """The responder's decisions for the site, newest interval first (``sort``: interval, price, used, id;
        ``-`` descending), filtered by ``since``/``until`` and ``acted``, in ``limit``/``offset`` pages;
        ``?format=csv`` exports every matching row."""
        serializer = DecisionFilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        qs = filtered(service.decision_list(user=request.user, site_id=int(pk)), serializer.validated_data)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(DECISION_CSV, qs), "responder-decisions")
        pager = self.pagination_class()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([decision_body(d) for d in page])
