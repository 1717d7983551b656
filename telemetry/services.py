"""Raising, acknowledging and resolving alerts. Each change publishes alert.* in its transaction;
the outbox handler pushes it to the right WebSocket groups after commit."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from telemetry.models import Alert


def _payload(alert: Alert) -> dict:
    return {
        "alert_id": alert.pk, "site_id": alert.site_id, "customer_id": alert.customer_id,
        "miner_id": alert.miner_id, "alert_type": alert.alert_type, "severity": alert.severity,
        "status": alert.status, "count": alert.count, "message": alert.message,
    }  # fmt: skip


def _publish(event_type: str, alert: Alert) -> None:
    outbox.publish(event_type, aggregate=f"alert:{alert.pk}", payload=_payload(alert))


def _open_alert(key: str) -> Alert | None:
    return Alert.objects.select_for_update().filter(dedupe_key=key).exclude(status=Alert.Status.RESOLVED).first()


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
    alert = _open_alert(key)
    if alert is None:
        try:
            # Two first raises of one key can both miss the lookup; the partial unique index lets one
            # insert win. Raising is idempotent, so the other counts onto the winner's alert below.
            with transaction.atomic():
                alert = Alert.objects.create(
                    site=site, miner=miner, customer_id=miner.customer_id if miner else None,
                    alert_type=alert_type, severity=severity, message=message[:500], evidence=evidence or {},
                    dedupe_key=key, first_seen=now, last_seen=now,
                )  # fmt: skip
        except IntegrityError:
            alert = _open_alert(key)
            if alert is None:
                raise
        else:
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


NOTE_MAX_CHARS = 500
ACKNOWLEDGE_FIELDS = ["status", "acknowledged_by", "acknowledged_at", "ack_note"]
RESOLVE_FIELDS = ["status", "resolved_by", "resolved_at", "resolution_note"]


def clean_note(note) -> str:
    """The note as stored (stripped), or DomainError ``invalid_note``; the portal checks with it too."""
    if not isinstance(note, str):
        raise DomainError("invalid_note", "The note must be text.")
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS:
        raise DomainError("invalid_note", f"The note may be at most {NOTE_MAX_CHARS} characters.")
    return note


def _locked(alert_ids) -> list[Alert]:
    # Rows locked in primary-key order, so two bulk actions over overlapping alerts cannot deadlock.
    return list(Alert.objects.select_for_update().filter(pk__in=list(alert_ids)).order_by("pk"))


@transaction.atomic
def alerts_acknowledge(*, alert_ids, actor, note: str = "") -> list[Alert]:
    """Acknowledge the open ones among ``alert_ids``; returns those that changed. Alerts already
    acknowledged or resolved are left as they are (a repeat changes nothing)."""
    note = clean_note(note)
    now = timezone.now()
    changed = [a for a in _locked(alert_ids) if a.status == Alert.Status.OPEN]
    for alert in changed:
        alert.status = Alert.Status.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at, alert.ack_note = actor, now, note
    Alert.objects.bulk_update(changed, ACKNOWLEDGE_FIELDS)
    if changed:
        outbox.publish_many("alert.updated", [(f"alert:{a.pk}", _payload(a)) for a in changed])
    return changed


@transaction.atomic
def alerts_resolve(*, alert_ids, actor=None, note: str = "") -> list[Alert]:
    """Resolve the unresolved ones among ``alert_ids``; returns those that changed."""
    note = clean_note(note)
    now = timezone.now()
    changed = [a for a in _locked(alert_ids) if a.status != Alert.Status.RESOLVED]
    for alert in changed:
        alert.status = Alert.Status.RESOLVED
        alert.resolved_by, alert.resolved_at, alert.resolution_note = actor, now, note
    Alert.objects.bulk_update(changed, RESOLVE_FIELDS)
    if changed:
        outbox.publish_many("alert.resolved", [(f"alert:{a.pk}", _payload(a)) for a in changed])
    return changed


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> Alert:
    """One alert; acknowledging twice (or a resolved alert) changes nothing."""
    alerts_acknowledge(alert_ids=[alert.pk], actor=actor, note=note)
    return Alert.objects.get(pk=alert.pk)


def alert_resolve(*, alert: Alert, actor=None, note: str = "") -> Alert:
    alerts_resolve(alert_ids=[alert.pk], actor=actor, note=note)
    return Alert.objects.get(pk=alert.pk)
