from django.db import migrations


def forwards(apps, schema_editor):
    from hashinsight.events.schedules import sync_schedules

    sync_schedules(apps.get_model("django_celery_beat", "IntervalSchedule"), apps.get_model("django_celery_beat", "PeriodicTask"))


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
