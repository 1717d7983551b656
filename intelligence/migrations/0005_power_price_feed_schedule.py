"""Existing databases get the power price feeds' refresh (hashinsight/events/schedules.py, "power prices: feed
refresh", every 5 minutes): ``sync_schedules`` creates the missing ones only, so an admin's edits to the others are
kept."""

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
    dependencies = [("intelligence", "0004_upload_target_more_schedules")]

    operations = [migrations.RunPython(add_new_schedules, migrations.RunPython.noop)]
