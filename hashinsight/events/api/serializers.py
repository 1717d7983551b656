"""Job runs and schedules as the API shows them."""

from django_celery_beat.models import PeriodicTask
from rest_framework import serializers

from hashinsight.events.models import JobRun


class JobRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobRun
        fields = [
            "id", "job_type", "task_id", "priority", "status", "trigger", "started_at", "finished_at", "duration_ms",
            "processed", "succeeded", "failed", "retries", "error", "result", "created_at",
        ]  # fmt: skip


class ScheduleSerializer(serializers.ModelSerializer):
    # A schedule has either an interval or a crontab; the other one is null.
    every_s = serializers.IntegerField(source="interval.every", read_only=True, default=None, allow_null=True)
    crontab = serializers.CharField(source="crontab.__str__", read_only=True, default=None, allow_null=True)

    class Meta:
        model = PeriodicTask
        fields = [
            "id",
            "name",
            "task",
            "enabled",
            "every_s",
            "crontab",
            "queue",
            "last_run_at",
            "total_run_count",
            "description",
        ]
        read_only_fields = fields
