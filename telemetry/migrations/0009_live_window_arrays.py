"""The live row's 5-minute window as two float lists (``double precision[]`` on PostgreSQL) instead of a
JSON list of pairs: ingest's upsert then slices and averages it in SQL, on the row it has locked,
without reading the live rows first. Existing windows are carried over."""

from django.db import migrations

import telemetry.models


def split_windows(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "UPDATE telemetry_live SET "
            "hashrate_window_ts = ARRAY(SELECT (p->>0)::float8 FROM jsonb_array_elements(hashrate_window) p), "
            "hashrate_window_ths = ARRAY(SELECT (p->>1)::float8 FROM jsonb_array_elements(hashrate_window) p) "
            "WHERE jsonb_array_length(hashrate_window) > 0"
        )
        return
    LiveStatus = apps.get_model("telemetry", "LiveStatus")
    for live in LiveStatus.objects.exclude(hashrate_window=[]).only("pk", "hashrate_window").iterator():
        LiveStatus.objects.filter(pk=live.pk).update(
            hashrate_window_ts=[pair[0] for pair in live.hashrate_window],
            hashrate_window_ths=[pair[1] for pair in live.hashrate_window],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0008_control_plane_effects"),
    ]

    operations = [
        migrations.AddField(
            model_name="livestatus",
            name="hashrate_window_ts",
            field=telemetry.models.FloatListField(default=list, editable=False),
        ),
        migrations.AddField(
            model_name="livestatus",
            name="hashrate_window_ths",
            field=telemetry.models.FloatListField(default=list, editable=False),
        ),
        migrations.RunPython(split_windows, migrations.RunPython.noop),
        migrations.RemoveField(model_name="livestatus", name="hashrate_window"),
    ]
