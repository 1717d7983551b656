"""Existing databases get the periodic jobs added with the rest of issue 9 (hashinsight/events/schedules.py: the
real-time responder, the curtailment event tick, revenue per site and client, smart alerts): ``sync_schedules`` creates the missing ones only, so an admin's edits to the others are kept. And the forecast
target of models trained on an uploaded series."""

from django.db import migrations, models
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
    dependencies = [("intelligence", "0003_curtailment_events_responder_health"), ("intelligence", "0002_schedules")]

    operations = [
        migrations.AlterField(
            model_name="forecast",
            name="target",
            field=models.CharField(choices=[("btc_price", "BTC price (USD)"), ("difficulty", "Difficulty"), ("hashprice", "Hashprice (USD per TH/s per day)"), ("revenue", "Net revenue (USD per day)"), ("upload", "Uploaded series")], max_length=16, verbose_name="target"),
        ),
        migrations.AlterField(
            model_name="forecastmodel",
            name="target",
            field=models.CharField(choices=[("btc_price", "BTC price (USD)"), ("difficulty", "Difficulty"), ("hashprice", "Hashprice (USD per TH/s per day)"), ("revenue", "Net revenue (USD per day)"), ("upload", "Uploaded series")], max_length=16, verbose_name="target"),
        ),
        migrations.RunPython(add_new_schedules, migrations.RunPython.noop),
    ]
