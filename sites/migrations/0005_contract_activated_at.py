"""When a hosting contract was activated: a contract terminated without ever being active never ran, and neither
billing nor the overlap rule counts it. Contracts that are or were in force get the moment of their activation from
the audit chain (``hosting_contract.activated``), else their start."""

import datetime

from django.db import migrations, models


def backfill(apps, schema_editor):
    HostingContract = apps.get_model("sites", "HostingContract")
    AuditEvent = apps.get_model("events", "AuditEvent")
    for contract in HostingContract.objects.exclude(status="draft").iterator():
        event = (
            AuditEvent.objects.filter(
                event_type="hosting_contract.activated", reference=f"hosting_contract:{contract.pk}"
            )
            .order_by("seq")
            .first()
        )
        if event is not None:
            contract.activated_at = event.created_at
        elif contract.status in ("active", "ended"):
            contract.activated_at = datetime.datetime.combine(contract.start_date, datetime.time(), datetime.UTC)
        else:
            continue
        contract.save(update_fields=["activated_at"])


class Migration(migrations.Migration):
    dependencies = [("sites", "0004_crm_deals_contracts"), ("events", "0006_audit_chain")]

    operations = [
        migrations.AddField(
            model_name="hostingcontract",
            name="activated_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="activated"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
