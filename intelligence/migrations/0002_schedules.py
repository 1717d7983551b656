"""Existing databases get the intelligence layer's periodic jobs (hashinsight/events/schedules.py: market refresh,
tomorrow's plan, forecast refresh and training, anomaly scan): ``sync_schedules`` creates the missing ones only, so an
admin's edits to the others are kept."""

from django.db import migrations
from django.utils import timezone


def add_new_schedules(apps, schema_editor):
    from hashinsight.events.schedules import sync_schedules

    created = sync_schedules(
        apps.get_model("django_celery_beat", "IntervalSchedule"), apps.get_model("django_celery_beat", "PeriodicTask")
    )
    if created:
        # A running beat reloads its schedule when this marker changes.
        PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [("intelligence", "0001_market_prices_forecasts_plans"), ("events", "0006_audit_chain")]

    operations = [migrations.RunPython(add_new_schedules, migrations.RunPython.noop)]
