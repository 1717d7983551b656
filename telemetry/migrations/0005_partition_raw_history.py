"""On PostgreSQL, ``telemetry_raw`` (by ``ts``) and ``telemetry_history_5m`` (by ``bucket``) become natively
RANGE-partitioned tables, one partition per UTC day plus a DEFAULT one (telemetry/partitions.py). Columns,
primary keys, indexes and checks stay as migration 0004 made them, so Django's model state is unchanged
and there are no state operations. A no-op on SQLite (plain tables).

Going back leaves the tables partitioned: they hold the same columns and keys, so 0004's state still
describes them (reversing 0004 drops them either way)."""

from django.db import migrations


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    from telemetry.partitions import LAYERS, convert_to_partitioned

    for layer in LAYERS:
        convert_to_partitioned(layer, connection=connection)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_edge_layers_rules")]

    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
