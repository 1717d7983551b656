from django.db import migrations


def forwards(apps, schema_editor):
    from miners.catalog import load_catalog

    load_catalog(apps.get_model("miners", "MinerModel"))


class Migration(migrations.Migration):
    dependencies = [("miners", "0002_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
