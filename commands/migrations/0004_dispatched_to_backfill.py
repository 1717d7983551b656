"""Commands dispatched before ``Command.dispatched_to`` existed: the device that took each is read once from its
``command.dispatched`` audit event (where dispatch kept it until then), so an unacknowledged one can still be
redelivered to, and acknowledged by, that device. Read-only on the audit chain; nothing to undo."""

from django.db import migrations


def backfill(apps, schema_editor):
    Command = apps.get_model("commands", "Command")
    AuditEvent = apps.get_model("events", "AuditEvent")
    EdgeDevice = apps.get_model("telemetry", "EdgeDevice")
    pending = Command.objects.filter(dispatched_at__isnull=False, dispatched_to__isnull=True)
    for command in pending.only("pk").iterator():
        actor_id = (
            AuditEvent.objects.filter(
                reference=f"command:{command.pk}", event_type="command.dispatched", actor_type="device"
            )
            .order_by("seq")
            .values_list("actor_id", flat=True)
            .first()
        )
        if actor_id and actor_id.isdigit() and EdgeDevice.objects.filter(pk=int(actor_id)).exists():
            Command.objects.filter(pk=command.pk).update(dispatched_to_id=int(actor_id))


class Migration(migrations.Migration):
    dependencies = [
        ("commands", "0003_control_plane_effects"),
        ("events", "0006_audit_chain"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
