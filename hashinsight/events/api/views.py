"""/api/v1/jobs (job runs and metrics per job type) and /api/v1/schedules (pause, resume, run now)."""

from __future__ import annotations

from django.db.models import Avg, Count, Max, Q
from django_celery_beat.models import PeriodicTask
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.errors import DomainError
from hashinsight.events.api.serializers import JobRunSerializer, ScheduleSerializer
from hashinsight.events.models import JobRun


class JobRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs of scheduled and manual batch jobs (SYSTEM module)."""

    module = Module.SYSTEM
    permission_classes = [ModuleAccess]
    serializer_class = JobRunSerializer
    queryset = JobRun.objects.all()
    filterset_fields = ["job_type", "status", "trigger", "task_id"]
    ordering_fields = ["created_at", "duration_ms"]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False)
    def metrics(self, request):
        """Per job type: runs, successes, failures, mean and max duration, last run."""
        rows = (
            JobRun.objects.values("job_type")
            .annotate(
                runs=Count("id"),
                succeeded=Count("id", filter=Q(status=JobRun.Status.SUCCESS)),
                failed=Count("id", filter=Q(status=JobRun.Status.FAILED)),
                mean_duration_ms=Avg("duration_ms"),
                max_duration_ms=Max("duration_ms"),
                last_run=Max("created_at"),
            )
            .order_by("job_type")
        )
        return Response({"results": list(rows)})


class ScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Periodic jobs (django-celery-beat). Pausing and resuming need SYSTEM FULL."""

    module = Module.SYSTEM
    permission_classes = [ModuleAccess]
    serializer_class = ScheduleSerializer
    queryset = PeriodicTask.objects.select_related("interval", "crontab").order_by("name")

    def _set_enabled(self, enabled: bool):
        task = self.get_object()
        task.enabled = enabled
        task.save(update_fields=["enabled"])  # PeriodicTask.save bumps beat's change marker
        return Response(ScheduleSerializer(task).data)

    @extend_schema(request=None, responses={200: ScheduleSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._set_enabled(False)

    @extend_schema(request=None, responses={200: ScheduleSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._set_enabled(True)

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="run")
    def run_now(self, request, pk=None):
        """Queue the job once now; its JobRun records trigger=manual."""
        from celery import current_app

        schedule = self.get_object()
        current_app.loader.import_default_modules()
        task = current_app.tasks.get(schedule.task)
        if task is None:
            raise DomainError("unknown_task", f"No task named {schedule.task!r} is installed.", status=409)
        result = task.apply_async(kwargs={"trigger": "manual"}, queue=schedule.queue or None)
        return Response({"task_id": result.id}, status=status.HTTP_202_ACCEPTED)
