"""Raising, acknowledging and resolving alerts. Each change publishes alert.* in its transaction;
the outbox handler pushes it to the right WebSocket groups after commit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from telemetry.models import Alert


def _publish(event_type: str, alert: Alert) -> None:
    outbox.publish(
        event_type,
        aggregate=f"alert:{alert.pk}",
        payload={
            "alert_id": alert.pk, "site_id": alert.site_id, "customer_id": alert.customer_id,
            "miner_id": alert.miner_id, "alert_type": alert.alert_type, "severity": alert.severity,
            "status": alert.status, "count": alert.count, "message": alert.message,
        },
    )  # fmt: skip


@transaction.atomic
def alert_raise(
    *, site, alert_type: str, severity: str, message: str, miner=None, evidence: dict | None = None
) -> Alert:
    if severity not in Alert.Severity.values:
        raise DomainError("invalid_severity", f"Severity must be one of {', '.join(Alert.Severity.values)}.")
    if miner is not None and miner.site_id != site.pk:
        raise DomainError("miner_not_in_site", "The miner is not at this site.")
    now = timezone.now()
    key = f"{site.pk}:{miner.pk if miner else '-'}:{alert_type}"
    alert = Alert.objects.select_for_update().filter(dedupe_key=key).exclude(status=Alert.Status.RESOLVED).first()
    if alert is None:
        alert = Alert.objects.create(
            site=site, miner=miner, customer_id=miner.customer_id if miner else None, alert_type=alert_type,
            severity=severity, message=message[:500], evidence=evidence or {}, dedupe_key=key,
            first_seen=now, last_seen=now,
        )  # fmt: skip
        _publish("alert.raised", alert)
        return alert
    alert.count += 1
    alert.last_seen = now
    alert.message = message[:500]
    alert.evidence = evidence or alert.evidence
    # Severity only escalates while an alert is open; resolving and re-raising starts afresh.
    order = Alert.Severity.values
    if order.index(severity) > order.index(alert.severity):
        alert.severity = severity
    alert.save(update_fields=["count", "last_seen", "message", "evidence", "severity"])
    _publish("alert.updated", alert)
    return alert


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != Alert.Status.OPEN:
        return alert  # acknowledging twice (or a resolved alert) changes nothing
    alert.status = Alert.Status.ACKNOWLEDGED
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    _publish("alert.updated", alert)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor=None) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status == Alert.Status.RESOLVED:
        return alert
    alert.status = Alert.Status.RESOLVED
    alert.resolved_at = timezone.now()
    alert.save(update_fields=["status", "resolved_at"])
    _publish("alert.resolved", alert)
    return alert
