"""The forecast API: the seed's ``GET /api/forecast/<user_id>`` (from the cache), the latest forecasts, the model
registry (list, activate, roll back) and training jobs. Reads need AI READ; registry writes need AI FULL and a
global role (owner or admin): a network model serves every user. Writes go through ``intelligence.forecasting``."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Access, Module, has_access, sees_staff_identities
from hashinsight.core import cache as cache_helper
from hashinsight.core.api.csv import CsvCapableAPIView, CSVRenderer
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import forecasting
from intelligence.api.curtailment_common import CSV_RESPONSE
from intelligence.models import Forecast, ForecastModel, ForecastTarget


class ForecastModelSerializer(serializers.ModelSerializer):
    activated_by = serializers.CharField(
        source="activated_by.username", default=None, read_only=True,
        help_text="the operator who activated it; null for anyone outside the staff roles (a hosting client)",
    )  # fmt: skip

    class Meta:
        model = ForecastModel
        fields = [
            "id", "target", "subject", "algorithm", "version", "status", "horizon_days", "params", "data_until",
            "trained_at", "backtest", "error", "activated_at", "activated_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # A hosting client reads the registry (AI READ) but must not learn staff identities. Without a request in
        # the context the caller is a staff-only write (activate, roll back) or passes the user itself.
        user = self.context.get("user") or getattr(self.context.get("request"), "user", None)
        if user is not None and not sees_staff_identities(user):
            data["activated_by"] = None
        return data


class ForecastSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model.version", default=None, read_only=True)

    class Meta:
        model = Forecast
        fields = [
            "id", "target", "subject", "model", "model_version", "algorithm", "fallback_reason", "origin",
            "horizon_days", "points", "generated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class TrainingRequestSerializer(serializers.Serializer):
    # All targets (one enum in the schema); the service refuses revenue, which is derived, not trained.
    target = serializers.ChoiceField(choices=ForecastTarget.choices)
    algorithm = serializers.ChoiceField(choices=ForecastModel.Algorithm.choices, required=False, default="")


def _registry_writer(user) -> None:
    if not (has_access(user, Module.AI, Access.FULL) and forecasting.sees_all_subjects(user)):
        raise PermissionDenied(_("Only owners and admins manage the forecast models."))


# --- GET /api/forecast/<user_id> (the seed's path) -----------------------------------------------------------------


class UserForecastView(CsvCapableAPIView):
    """A user's forecast: BTC price, difficulty, hashprice and the user's net revenue (fleet TH/s × hashprice −
    power cost), 80 % and 95 % intervals, and the serving models' backtest metrics next to naive. Served from
    ``forecast:{user_id}`` (stale-while-revalidate). A user reads only their own; owners and admins read all;
    anyone else's answers 404. ``?format=csv``: the forecast points, one row per target and day."""

    module = Module.AI
    permission_classes = [ModuleAccess]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["forecast"])
    def get(self, request, user_id: int):
        if user_id != request.user.pk and not (
            forecasting.sees_all_subjects(request.user) and get_user_model().objects.filter(pk=user_id).exists()
        ):
            raise Http404
        started = time.perf_counter()
        cached = cache_helper.get("forecast", id=user_id)
        if self.wants_csv():
            return streamed_csv(request, forecast_csv(cached.value), f"forecast-user-{user_id}")
        response = Response(cached.value)
        response["X-Cache"] = cached.state
        response["Server-Timing"] = f"forecast;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response


CSV_HEADERS = (
    _("Target"), _("Unit"), _("Date"), _("Forecast"),
    # xgettext:no-python-format
    _("80 % low"),
    # xgettext:no-python-format
    _("80 % high"),
    # xgettext:no-python-format
    _("95 % low"),
    # xgettext:no-python-format
    _("95 % high"),
    pgettext_lazy("forecast", "Model"), _("Fallback reason"),
)  # fmt: skip


def forecast_csv(value: dict, targets=("price", "difficulty", "hashprice", "revenue")):
    import csv
    import io

    from hashinsight.portal.tables import safe_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([str(h) for h in CSV_HEADERS])
    for key in targets:
        part = value.get(key)
        if not part:
            continue
        for p in part["points"]:
            writer.writerow([safe_cell(v) for v in (
                part["target"], part["unit"], p["date"], p["yhat"], p["lo80"], p["hi80"], p["lo95"], p["hi95"],
                part["algorithm"], part["fallback_reason"],
            )])  # fmt: skip
    yield buffer.getvalue().encode()


# --- /api/v1/forecasts ---------------------------------------------------------------------------------------------

FORECAST_CSV = [
    CsvColumn(_("Id"), "id"),
    CsvColumn(_("Target"), "target", display=dict(ForecastTarget.choices)),
    CsvColumn(_("Subject"), "subject"),
    CsvColumn(_("Algorithm"), "algorithm", display=dict(ForecastModel.Algorithm.choices)),
    CsvColumn(_("Model version"), "model__version"),
    CsvColumn(_("Fallback reason"), "fallback_reason"),
    CsvColumn(_("Last observed day"), "origin"),
    CsvColumn(_("Horizon (days)"), "horizon_days"),
    CsvColumn(_("Generated (UTC)"), "generated_at"),
]


class ForecastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CsvCapableAPIView, viewsets.GenericViewSet):
    # Latest forecast per (target, subject) by default (?latest=false: all); ?target=, ?subject= (network,
    # user:12); a user sees the network's and their own. ?format=csv on the list.
    module = Module.AI
    permission_classes = [ModuleAccess]
    serializer_class = ForecastSerializer
    filterset_fields = ["algorithm"]
    ordering_fields = ["generated_at", "target", "subject", "origin"]
    ordering = ["-generated_at"]

    def get_queryset(self):
        p = self.request.query_params
        target = p.get("target", "")
        if target and target not in ForecastTarget.values:
            from hashinsight.core.errors import DomainError

            raise DomainError("unknown_target", f"target is one of {', '.join(ForecastTarget.values)}.")
        latest = p.get("latest", "true").lower() not in ("0", "false", "no")
        return forecasting.forecast_list(user=self.request.user, target=target, subject=p.get("subject"),
                                         latest=latest or self.detail)  # fmt: skip

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) == CSVRenderer.format:
            qs = self.filter_queryset(self.get_queryset())
            return streamed_csv(request, csv_chunks(FORECAST_CSV, qs), "forecasts")
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        # Any stored forecast the user may read, not only the latest.
        obj = forecasting.forecast_list(user=request.user, latest=False).filter(pk=kwargs["pk"]).first()
        if obj is None:
            raise Http404
        return Response(ForecastSerializer(obj).data)


# --- /api/v1/forecast-models ---------------------------------------------------------------------------------------

MODEL_CSV = [
    CsvColumn(_("Id"), "id"),
    CsvColumn(_("Target"), "target", display=dict(ForecastTarget.choices)),
    CsvColumn(_("Subject"), "subject"),
    CsvColumn(_("Algorithm"), "algorithm", display=dict(ForecastModel.Algorithm.choices)),
    CsvColumn(_("Version"), "version"),
    CsvColumn(_("Status"), "status", display=dict(ForecastModel.Status.choices)),
    CsvColumn(_("Trained on data up to"), "data_until"),
    CsvColumn(_("Trained (UTC)"), "trained_at"),
    CsvColumn(_("7-day MAPE (%)"), "backtest", display=lambda b: _mape(b, "7")),
    CsvColumn(_("7-day MAPE, naive (%)"), "backtest", display=lambda b: _mape(b, "7", naive=True)),
    CsvColumn(_("30-day MAPE (%)"), "backtest", display=lambda b: _mape(b, "30")),
    CsvColumn(_("Activated (UTC)"), "activated_at"),
    CsvColumn(_("Error"), "error"),
]


def _mape(backtest, horizon: str, naive: bool = False):
    row = ((backtest or {}).get("horizons") or {}).get(horizon) or {}
    if naive:
        row = row.get("naive") or {}
    value = row.get("mape")
    return None if value is None else round(value, 3)


class ForecastModelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, CsvCapableAPIView, viewsets.GenericViewSet
):
    # The registry: versions with their backtest metrics next to naive. Filters: target, subject, algorithm,
    # status; ordering; ?format=csv. POST {id}/activate and {id}/rollback: owners and admins (AI FULL).
    module = Module.AI
    permission_classes = [ModuleAccess]
    serializer_class = ForecastModelSerializer
    filterset_fields = ["target", "subject", "algorithm", "status"]
    ordering_fields = ["created_at", "version", "trained_at", "target", "status"]
    ordering = ["target", "subject", "-version"]

    def get_queryset(self):
        return forecasting.model_list(user=self.request.user)

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) == CSVRenderer.format:
            qs = self.filter_queryset(self.get_queryset())
            return streamed_csv(request, csv_chunks(MODEL_CSV, qs), "forecast-models")
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ReasonSerializer, responses={200: ForecastModelSerializer}, tags=["forecast"])
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        model = self.get_object()  # 404 outside the user's registry
        _registry_writer(request.user)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = forecasting.model_activate(model_id=model.pk, actor=request.user, reason=body.validated_data["reason"])
        return Response(ForecastModelSerializer(model).data)

    @extend_schema(request=ReasonSerializer, responses={200: OpenApiTypes.OBJECT}, tags=["forecast"])
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Retire this (active) model; the previously active one serves again, or naive when there is none."""
        model = self.get_object()
        _registry_writer(request.user)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        restored = forecasting.model_rollback(model_id=model.pk, actor=request.user,
                                              reason=body.validated_data["reason"])  # fmt: skip
        return Response({
            "rolled_back": ForecastModelSerializer(ForecastModel.objects.get(pk=model.pk)).data,
            "active": None if restored is None else ForecastModelSerializer(restored).data,
        })  # fmt: skip


# --- POST /api/v1/training-jobs ------------------------------------------------------------------------------------


class UploadTrainingSerializer(serializers.Serializer):
    file = serializers.FileField()
    name = serializers.CharField(max_length=120)
    unit = serializers.CharField(max_length=24, required=False, allow_blank=True, default="")
    algorithm = serializers.ChoiceField(
        choices=[(a, a) for a in ("xgboost", "prophet", "naive")], required=False, default="xgboost"
    )
    horizon = serializers.IntegerField(min_value=1, max_value=365, required=False, default=24)
    interval_minutes = serializers.IntegerField(min_value=1, max_value=10080, required=False, allow_null=True,
                                                default=None)  # fmt: skip


MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 200,000 rows of "2026-01-01T00:00:00Z,123.456" are about 6 MB


def _training_job_json(model: ForecastModel, runs: dict, uploads: dict, *, user) -> dict:
    """A training job as the list shows it: the registry row, its upload (if any) and its run's progress."""
    run = runs.get(model.pk)
    upload = uploads.get(model.subject)
    if model.status != ForecastModel.Status.TRAINING:
        progress = 1.0
    elif run is None:
        progress = 0.0  # queued, not started
    else:
        progress = (run.result or {}).get("progress", 0.0)
    return {
        "model": ForecastModelSerializer(model, context={"user": user}).data,
        "upload": None if upload is None else {
            "id": upload.pk, "name": upload.name, "unit": upload.unit, "rows": upload.rows,
            "interval_minutes": upload.interval_minutes, "created_at": upload.created_at.isoformat(),
        },
        "job": None if run is None else {
            "id": run.pk, "task_id": run.task_id, "status": run.status, "processed": run.processed,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "status": model.status,
        "progress": progress,
    }  # fmt: skip


TRAINING_JOB_CSV = [
    (_("Model id"), "model_id"),
    (_("Target"), "target"),
    (_("Subject"), "subject"),
    (_("Algorithm"), "algorithm"),
    (_("Version"), "version"),
    (_("Status"), "status"),
    (_("Progress (%)"), "progress_pct"),
    (_("Uploaded series"), "upload_name"),
    (_("Rows"), "upload_rows"),
    (_("Job status"), "job_status"),
    (_("Job started (UTC)"), "job_started_at"),
    (_("Job finished (UTC)"), "job_finished_at"),
    (_("Trained (UTC)"), "trained_at"),
    (_("Error"), "error"),
    (_("Registered (UTC)"), "created_at"),
]


def training_jobs_csv(jobs: list[dict]):
    """The training-jobs list as CSV bytes: the same jobs as the JSON list (the caller's own), one row each."""
    from telemetry.api.telemetry_views import _dict_chunks

    targets, algorithms = dict(ForecastTarget.choices), dict(ForecastModel.Algorithm.choices)
    statuses = dict(ForecastModel.Status.choices)

    def row(job: dict) -> dict:
        model, upload, run = job["model"], job["upload"] or {}, job["job"] or {}
        return {
            "model_id": model["id"], "target": str(targets.get(model["target"], model["target"])),
            "subject": model["subject"], "algorithm": str(algorithms.get(model["algorithm"], model["algorithm"])),
            "version": model["version"], "status": str(statuses.get(job["status"], job["status"])),
            "progress_pct": round(100 * job["progress"], 1), "upload_name": upload.get("name"),
            "upload_rows": upload.get("rows"), "job_status": run.get("status"),
            "job_started_at": run.get("started_at"), "job_finished_at": run.get("finished_at"),
            "trained_at": model["trained_at"], "error": model["error"], "created_at": model["created_at"],
        }  # fmt: skip

    return _dict_chunks(TRAINING_JOB_CSV, (row(job) for job in jobs))


class TrainingJobView(CsvCapableAPIView):
    """``POST`` with JSON ``{target, algorithm}``: queue the training of a network target's model (owners and
    admins). ``POST`` multipart with a CSV ``file`` (``ts,value``; ISO-8601 UTC; one regular step, detected or
    ``interval_minutes``; at most 200,000 rows) and ``name``, ``unit``, ``algorithm`` (xgboost, prophet, naive),
    ``horizon`` (steps): store the series and queue its model's training (any AI writer; a bad row is a 400 naming
    the row and why, and nothing is stored). Both answer 202 at once with the registry row (status ``training``
    until the job ends: ``candidate`` or ``failed``, with its backtest next to naive) and the job's task id.

    ``GET``: the training jobs the caller may follow (owners and admins: all; anyone else: those of their own
    uploads), newest first, each with its status and progress (``?status=training`` for the running ones);
    ``?format=csv``: the same jobs as a file."""

    module = Module.AI
    permission_classes = [ModuleAccess]

    def get_parsers(self):
        from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

        return [JSONParser(), MultiPartParser(), FormParser()]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): CSV_RESPONSE}, tags=["forecast"])
    def get(self, request):
        from hashinsight.events.models import JobRun
        from intelligence.models import UploadedSeries
        from intelligence.uploaded_series import TASK_PREFIX, training_models

        qs = training_models(user=request.user).order_by("-created_at", "-pk")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in ForecastModel.Status.values:
                from hashinsight.core.errors import DomainError

                raise DomainError("invalid_filter", f"status is one of {', '.join(ForecastModel.Status.values)}.",
                                  details={"field": "status"})  # fmt: skip
            qs = qs.filter(status=wanted)
        models = list(qs[:200])
        ids = [m.pk for m in models]
        runs = {}
        for run in JobRun.objects.filter(job_type="intelligence.train_upload", task_id__startswith=TASK_PREFIX):
            model_id = int(run.task_id[len(TASK_PREFIX) :].split("-", 1)[0])
            if model_id in ids and (model_id not in runs or run.created_at > runs[model_id].created_at):
                runs[model_id] = run
        subjects = [m.subject for m in models if m.subject.startswith("upload:")]
        uploads = {
            f"upload:{u.pk}": u
            for u in UploadedSeries.objects.filter(pk__in=[int(s.split(":", 1)[1]) for s in subjects])
        }
        jobs = [_training_job_json(m, runs, uploads, user=request.user) for m in models]
        if self.wants_csv():
            return streamed_csv(request, training_jobs_csv(jobs), "training-jobs")
        return Response({"count": len(models), "results": jobs})

    @extend_schema(request=TrainingRequestSerializer, responses={202: OpenApiTypes.OBJECT}, tags=["forecast"])
    def post(self, request):
        if "file" in request.FILES:  # a form without a file is the network request sent as a form
            return self._upload(request)
        _registry_writer(request.user)
        body = TrainingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        from intelligence.forecast_tasks import training_request

        model, task_id = training_request(
            target=body.validated_data["target"], algorithm=body.validated_data["algorithm"], actor=request.user
        )
        return Response(
            {
                "model": ForecastModelSerializer(model).data,
                "task_id": task_id,
                "job_type": "intelligence.train_models",
                "status_url": f"/api/v1/forecast-models/{model.pk}",
                "jobs_url": "/api/v1/jobs?job_type=intelligence.train_models",
            },
            status=status.HTTP_202_ACCEPTED,
        )

    def _upload(self, request):
        from hashinsight.core.errors import DomainError
        from intelligence.uploaded_series import series_upload

        body = UploadTrainingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["file"].size > MAX_UPLOAD_BYTES:
            raise DomainError("file_too_large", f"The file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
                              details={"field": "file"})  # fmt: skip
        series, model, task_id = series_upload(
            owner=request.user, data=data["file"].read(), name=data["name"], unit=data["unit"],
            algorithm=data["algorithm"], horizon=data["horizon"], interval_minutes=data["interval_minutes"],
        )  # fmt: skip
        return Response(
            {
                "model": ForecastModelSerializer(model).data,
                "upload": {"id": series.pk, "name": series.name, "unit": series.unit, "rows": series.rows,
                           "interval_minutes": series.interval_minutes, "sha256": series.sha256},
                "task_id": task_id,
                "job_type": "intelligence.train_upload",
                "status_url": "/api/v1/training-jobs",
                "jobs_url": f"/api/v1/jobs?task_id={task_id}",
            },
            status=status.HTTP_202_ACCEPTED,
        )  # fmt: skip
