"""The curtailment plans API: ``/api/v1/curtailment/plans`` (list with filters, sort, pages and CSV; create),
``/api/v1/curtailment/plans/{id}`` (read), ``/api/v1/curtailment/plans/{id}/send`` (propose its CURTAIL commands),
the seed's ``POST /api/optimize/curtailment`` (create, same handler) and its ``GET`` (a site's day plan, as the daily
job makes it, from the cache ``optimize:{site}:{date}`` with ``X-Cache``).

CURTAILMENT module: READ to read, FULL to create and send; a hidden site or plan is a 404, a site seen through a
read-only grant a 403. Every read and write goes through ``intelligence.curtailment_plans``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import curtailment_plans as plans
from intelligence.api.curtailment_common import CSV_RESPONSE, CurtailmentView, valid
from intelligence.models import CurtailmentPlan

SORTS = {"created": "created_at", "starts": "starts_at", "profit": "profit_usd", "id": "id", "site": "site__name"}


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class PlanRequestSerializer(serializers.Serializer):
    """The request body (checked by ``intelligence.curtailment_plans.parse_request``; this is its documentation)."""

    site = serializers.IntegerField(help_text="site id")
    start = serializers.DateTimeField(help_text="the first hour (on the hour; UTC unless an offset is given)")
    hours = serializers.IntegerField(min_value=24, max_value=168, default=24)
    constraints = serializers.JSONField(
        required=False,
        help_text="cap_kw and curtail_pct (a number or one per hour), min_on_hours, min_off_hours, ramp_kw_per_hour, "
        'zone_capacity_kw {zone id: kW or null}, client_priority {"own" or client id: priority, higher curtailed '
        "later; default own 0, clients 1}",
    )
    prices_usd_per_mwh = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="one per hour; default: the site's day-ahead prices"
    )
    hashprice_usd_per_th_day = serializers.JSONField(
        required=False, help_text="a number or one per hour; default: the latest hashprice forecast, else market"
    )
    groups = serializers.JSONField(
        required=False,
        help_text="explicit groups [{id, model, count, kw_each, ths_each, zone, client, priority, firm_count}] "
        "instead of the site's miners (such a plan cannot be sent)",
    )
    time_limit_s = serializers.FloatField(required=False, default=10.0)
    gap_rel = serializers.FloatField(required=False, default=0.001)


class PlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.IntegerField()
    # Text, not an enum: another component's "status" enum would otherwise collide in the schema's names.
    status = serializers.CharField(help_text="draft | sent | superseded | failed")
    starts_at = serializers.DateTimeField()
    hours = serializers.IntegerField()
    profit_usd = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    run_all_profit_usd = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    threshold_profit_usd = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    solver = serializers.JSONField()
    created_by = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class PlanDetailSerializer(PlanSerializer):
    inputs = serializers.JSONField()
    result = serializers.JSONField()
    commands = serializers.ListField(child=serializers.IntegerField())


class PlanPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PlanSerializer(many=True)


class PlanFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=CurtailmentPlan.Status.choices, required=False)
    date = serializers.DateField(required=False, help_text="plans whose first hour falls on this UTC day")
    sort = serializers.ChoiceField(
        choices=[*SORTS, *(f"-{k}" for k in SORTS)], required=False, default="-created", help_text="- for descending"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


class DayPlanQuerySerializer(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="site id")
    date = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="the site's local day, YYYY-MM-DD")

    def validate_date(self, value):
        first, last = plans.day_plan_bounds()
        if not first <= value <= last:
            raise serializers.ValidationError(
                _("Give a day from %(first)s to %(last)s.") % {"first": first.isoformat(), "last": last.isoformat()},
                code="out_of_range",
            )
        return value


class DayPlanSerializer(serializers.Serializer):
    site = serializers.IntegerField()
    date = serializers.DateField()
    plan = PlanDetailSerializer(allow_null=True)
    error_code = serializers.CharField(required=False, help_text="when plan is null: why (e.g. missing_prices)")
    message = serializers.CharField(required=False)
    details = serializers.JSONField(required=False)


class SendSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=plans.SEND_MODES, default="hard")


class SendResultSerializer(PlanDetailSerializer):
    blocks = serializers.ListField(child=serializers.JSONField())


PLAN_CSV = [
    CsvColumn(_("Plan"), "id"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Status"), "status", display=dict(CurtailmentPlan.Status.choices)),
    CsvColumn(_("First hour (UTC)"), "starts_at"),
    CsvColumn(_("Hours"), "hours"),
    CsvColumn(_("Planned profit (USD)"), "profit_usd"),
    CsvColumn(_("Profit running everything (USD)"), "run_all_profit_usd"),
    CsvColumn(_("Profit with the price-threshold rule (USD)"), "threshold_profit_usd"),
    CsvColumn(_("Created (UTC)"), "created_at"),
    CsvColumn(_("Sent for approval (UTC)"), "sent_at"),
]


def filtered(qs, p: dict):
    if p.get("site") is not None:
        qs = qs.filter(site_id=p["site"])
    if p.get("status"):
        qs = qs.filter(status=p["status"])
    if p.get("date"):
        qs = qs.filter(starts_at__date=p["date"])
    sort = p.get("sort") or "-created"
    field = SORTS[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-id")


class PlanListView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_plans_list", parameters=[PlanFilterSerializer],
        responses={200: PlanPageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request):
        """Stored plans of the sites you see, newest first (``sort``: created, starts, profit, id, site; ``-`` for
        descending), filtered by ``site``, ``status`` and ``date`` (the first hour's UTC day), in ``limit``/``offset``
        pages; ``?format=csv`` exports every matching row."""
        p = valid(PlanFilterSerializer, request.query_params)
        qs = filtered(plans.plan_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(PLAN_CSV, qs), "curtailment-plans")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([plans.plan_body(plan, full=False) for plan in page])

    @extend_schema(
        operation_id="curtailment_plans_create", request=PlanRequestSerializer,
        responses={201: PlanDetailSerializer}, tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """Make a day-ahead plan for ``hours`` (24–168) from ``start``: the site's miners grouped by model, zone and
        hosting client, its day-ahead prices and the hashprice forecast (or explicit ones in the body), within the
        constraints; stored with its inputs. Malformed or infeasible input → 400 naming the constraint
        (``details.constraint``)."""
        plan = plans.plan_create(actor=request.user, data=request.data)
        return Response(plans.plan_body(plan), status=status.HTTP_201_CREATED)


class PlanDetailView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_plans_retrieve", responses={200: PlanDetailSerializer}, tags=["curtailment"]
    )
    def get(self, request, pk):
        """One plan with its inputs, result (schedule per group and hour, power, revenue, cost, profit, the two
        comparisons) and the commands it was sent as."""
        return Response(plans.plan_body(plans.plan_get(user=request.user, plan_id=int(pk))))


class PlanSendView(CurtailmentView):
    detail = True  # the service decides: hidden → 404, read-only → 403

    @extend_schema(
        operation_id="curtailment_plans_send", request=SendSerializer, responses={200: SendResultSerializer},
        tags=["curtailment"],
    )  # fmt: skip
    def post(self, request, pk):
        """Send for approval: propose one CURTAIL command per block of hours in which a group has the same number
        of miners off (targets: that group's least efficient miners; window: the block), linked to the plan, which
        becomes SENT. Idempotent: sending again proposes nothing new. Approval follows the control plane's risk
        engine."""
        plan = plans.plan_get(user=request.user, plan_id=int(pk))
        data = valid(SendSerializer, request.data)
        plan, _commands, lines = plans.plan_send(plan=plan, actor=request.user, mode=data["mode"])
        return Response({**plans.plan_body(plan), "blocks": lines})


class SeedOptimizeView(CurtailmentView):
    @extend_schema(
        operation_id="optimize_curtailment_day", parameters=[DayPlanQuerySerializer],
        responses={200: DayPlanSerializer}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request):
        """The site's plan for a day (its local day: 24 hours from midnight, day-ahead prices, default constraints),
        as the daily job makes it, from the cache ``optimize:{site}:{date}``. ``X-Cache``: ``hit``; ``stale``, served
        while one rebuild is queued (the site's prices or fleet changed, or the entry is old); ``miss``, made now.
        ``plan`` is null, with ``error_code`` and ``message``, when no plan can be made (``missing_prices``, …)."""
        p = valid(DayPlanQuerySerializer, request.query_params)
        cached = plans.day_plan(user=request.user, site_id=p["site"], day=p["date"])
        return Response(cached.value, headers={"X-Cache": cached.state})

    @extend_schema(
        operation_id="optimize_curtailment", request=PlanRequestSerializer, responses={201: PlanDetailSerializer},
        tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """The seed's path: the same as ``POST /api/v1/curtailment/plans``."""
        plan = plans.plan_create(actor=request.user, data=request.data)
        return Response(plans.plan_body(plan), status=status.HTTP_201_CREATED)
