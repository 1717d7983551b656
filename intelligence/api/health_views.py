"""The miner-health API: ``GET /api/v1/miner-health`` (the latest prediction per miner the caller sees; filter by
tier, site, hosting client; sort; ``?format=csv``), ``GET /api/v1/miner-health/{miner_id}`` and
``POST /api/v1/health-predict`` (queue a run: for oneself, or owners and admins for another user). A hidden miner
is a 404; a client sees only its own miners. Reads need AI READ."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import GLOBAL_ROLES, Module, role_of
from hashinsight.core.api.csv import CsvCapableAPIView, CSVRenderer
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence.miner_health import health_list, health_summary
from intelligence.models import MinerHealth


class MinerHealthSerializer(serializers.ModelSerializer):
    miner_id = serializers.IntegerField(read_only=True)
    serial = serializers.CharField(source="miner.serial", read_only=True)
    site_id = serializers.IntegerField(source="miner.site_id", read_only=True)
    site = serializers.CharField(source="miner.site.name", read_only=True)
    customer_id = serializers.IntegerField(source="miner.customer_id", read_only=True, allow_null=True)
    model = serializers.CharField(source="miner.model.name", read_only=True)

    class Meta:
        model = MinerHealth
        fields = ["miner_id", "serial", "site_id", "site", "customer_id", "model", "score", "tier", "reasons",
                  "features", "computed_at"]  # fmt: skip
        read_only_fields = fields


HEALTH_CSV = [
    CsvColumn(_("Miner id"), "miner_id"),
    CsvColumn(_("Serial number"), "miner__serial"),
    CsvColumn(_("Site"), "miner__site__name"),
    CsvColumn(_("Model"), "miner__model__name"),
    CsvColumn(_("Failure risk (0–1)"), "score"),
    CsvColumn(_("Tier"), "tier", display=dict(MinerHealth.Tier.choices)),
    CsvColumn(_("Reasons"), "reasons", display=lambda rs: "; ".join(r.get("text", "") for r in rs or [])),
    CsvColumn(_("Computed (UTC)"), "computed_at"),
]


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or int(raw) >= 2**63:  # a bigger id cannot exist and would overflow the driver (a 500)
        raise DomainError("invalid_filter", f"{name} must be a whole number.", details={"field": name})
    return int(raw)


class MinerHealthViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CsvCapableAPIView,
                         viewsets.GenericViewSet):  # fmt: skip
    # ?tier=ok|watch|at_risk, ?site=<id>, ?customer=<id>, ?ordering=-score (default) | score | computed_at |
    # miner__serial; ?format=csv on the list. The queryset is the caller's scope before anything else.
    module = Module.AI
    permission_classes = [ModuleAccess]
    serializer_class = MinerHealthSerializer
    filterset_fields = ["tier"]
    ordering_fields = ["score", "computed_at", "miner__serial", "miner_id"]
    ordering = ["-score", "miner_id"]
    lookup_field = "miner_id"

    def get_queryset(self):
        qs = health_list(user=self.request.user)
        tier = self.request.query_params.get("tier")
        if tier and tier not in MinerHealth.Tier.values:
            raise DomainError("invalid_filter", f"tier is one of {', '.join(MinerHealth.Tier.values)}.",
                              details={"field": "tier"})  # fmt: skip
        site = _int_param(self.request, "site")
        if site is not None:
            qs = qs.filter(miner__site_id=site)
        customer = _int_param(self.request, "customer")
        if customer is not None:
            qs = qs.filter(miner__customer_id=customer)
        return qs

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) == CSVRenderer.format:
            qs = self.filter_queryset(self.get_queryset())
            return streamed_csv(request, csv_chunks(HEALTH_CSV, qs), "miner-health")
        return super().list(request, *args, **kwargs)


class HealthSummaryView(CsvCapableAPIView):
    """Counts per tier and the worst miners among those the caller sees (``miner_health:{id}``, cached)."""

    module = Module.AI
    permission_classes = [ModuleAccess]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["miner-health"])
    def get(self, request):
        return Response(health_summary(user=request.user))


class HealthPredictRequest(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1)


class HealthPredictView(CsvCapableAPIView):
    """Queue ``health_predict`` for the caller (or, for owners and admins, another user): 202 at once with the
    task id; the JobRun (``intelligence.health_predict``) is found by it at ``/api/v1/jobs?task_id=…``."""

    module = Module.AI
    permission_classes = [ModuleAccess]
    detail = True  # a recomputation of derived scores, nothing of the user's own: READ on AI is enough for oneself

    @extend_schema(request=HealthPredictRequest, responses={202: OpenApiTypes.OBJECT}, tags=["miner-health"])
    def post(self, request):
        body = HealthPredictRequest(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        user_id = body.validated_data.get("user_id", request.user.pk)
        # someone else's run: owners and admins only, and an unknown user is as hidden as a forbidden one
        if user_id != request.user.pk and (
            role_of(request.user) not in GLOBAL_ROLES or not get_user_model().objects.filter(pk=user_id).exists()
        ):
            raise Http404
        from hashinsight.events.models import JobRun
        from intelligence.health_tasks import health_request

        task_id = health_request(user_id=user_id)
        run = JobRun.objects.filter(task_id=task_id).values_list("pk", flat=True).first()  # set when run eagerly
        return Response(
            {"user_id": user_id, "task_id": task_id, "job_run_id": run, "job_type": "intelligence.health_predict",
             "jobs_url": f"/api/v1/jobs?task_id={task_id}"},
            status=status.HTTP_202_ACCEPTED,
        )  # fmt: skip
