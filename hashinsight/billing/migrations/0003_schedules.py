"""Existing databases get the hosting business loop's periodic jobs (hashinsight/events/schedules.py: monthly invoices,
chain confirmations, overdue reminders, proof days, report schedules): ``sync_schedules`` creates the missing ones
only, so an admin's edits to the others are kept."""

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
    dependencies = [("billing", "0002_issued_invoice_immutable_trigger"), ("events", "0006_audit_chain")]

    operations = [migrations.RunPython(add_new_schedules, migrations.RunPython.noop)]
