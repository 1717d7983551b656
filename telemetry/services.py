"""Raising, acknowledging and resolving alerts. Each change publishes alert.* in its transaction;
the outbox handler pushes it to the right WebSocket groups after commit."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
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


def _open_alert(key: str) -> Alert | None:
    return Alert.objects.select_for_update().filter(dedupe_key=key).exclude(status=Alert.Status.RESOLVED).first()


def _open_alerts(keys) -> dict[str, Alert]:
    # Locked in primary-key order, like ``_locked``: two raises over overlapping keys cannot deadlock.
    qs = Alert.objects.select_for_update().filter(dedupe_key__in=list(keys)).exclude(status=Alert.Status.RESOLVED)
    return {alert.dedupe_key: alert for alert in qs.order_by("pk")}


@dataclass(frozen=True)
class AlertToRaise:
    """One alert for ``alerts_raise``: ids rather than objects, so a batch needs no model instances.
    The caller vouches that the miner stands at the site (``alert_raise`` checks it)."""

    site_id: int
    alert_type: str
    severity: str
    message: str
    miner_id: int | None = None
    customer_id: int | None = None
    evidence: dict | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.site_id}:{self.miner_id if self.miner_id is not None else '-'}:{self.alert_type}"


RAISE_UPDATE_FIELDS = ["count", "last_seen", "message", "evidence", "severity"]


def _count_onto(alert: Alert, item: AlertToRaise, now) -> None:
    alert.count += 1
    alert.last_seen = now
    alert.message = item.message[:500]
    alert.evidence = item.evidence or alert.evidence
    # Severity only escalates while an alert is open; resolving and re-raising starts afresh.
    order = Alert.Severity.values
    if order.index(item.severity) > order.index(alert.severity):
        alert.severity = item.severity


def _new_alert(item: AlertToRaise, now) -> Alert:
    return Alert(
        site_id=item.site_id, miner_id=item.miner_id, customer_id=item.customer_id, alert_type=item.alert_type,
        severity=item.severity, message=item.message[:500], evidence=item.evidence or {},
        dedupe_key=item.dedupe_key, first_seen=now, last_seen=now,
    )  # fmt: skip


@transaction.atomic
def alerts_raise(items: list[AlertToRaise]) -> list[Alert]:
    """Raise many alerts in one transaction: a new one per key without an unresolved alert, a repeat
    (count + 1, last seen, message, evidence, severity escalated) onto the one that is open or
    acknowledged. Costs a constant number of queries — one lock, one insert, one update, two event
    inserts — whatever the number of alerts. Returns the alerts in the order of ``items``."""
    for item in items:
        if item.severity not in Alert.Severity.values:
            raise DomainError("invalid_severity", f"Severity must be one of {', '.join(Alert.Severity.values)}.")
    if not items:
        return []
    now = timezone.now()
    existing = _open_alerts({item.dedupe_key for item in items})
    created: dict[str, Alert] = {}
    repeated: dict[str, Alert] = {}
    for item in items:
        key = item.dedupe_key
        alert = existing.get(key) or created.get(key)
        if alert is None:
            created[key] = _new_alert(item, now)
        else:
            _count_onto(alert, item, now)
            if key in existing:
                repeated[key] = alert
    if created:
        try:
            # Two first raises of one key can both miss the lookup; the partial unique index lets one
            # insert win. Raising is idempotent, so the loser counts onto the winner's alert below.
            with transaction.atomic():
                Alert.objects.bulk_create(list(created.values()))
        except IntegrityError:
            _create_one_by_one(created, repeated, items, now)
    if repeated:
        _update_repeats(list(repeated.values()))
    if created:
        outbox.publish_many("alert.raised", [(f"alert:{a.pk}", _payload(a)) for a in created.values()])
    if repeated:
        outbox.publish_many("alert.updated", [(f"alert:{a.pk}", _payload(a)) for a in repeated.values()])
    by_key = {**created, **repeated}
    return [by_key[item.dedupe_key] for item in items]


def _update_repeats(alerts: list[Alert]) -> None:
    """One UPDATE statement run for every row (``executemany``: pipelined by psycopg, one entry in the
    query log). ``bulk_update`` builds a CASE per field and row in Python, about a second per 1,000."""
    fields = [Alert._meta.get_field(name) for name in RAISE_UPDATE_FIELDS]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    table = connection.ops.quote_name(Alert._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s"  # noqa: S608 - names from the model; values are parameters
    rows = [[f.get_db_prep_save(getattr(a, f.attname), connection) for f in fields] + [a.pk] for a in alerts]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _create_one_by_one(created: dict, repeated: dict, items, now) -> None:
    """The batch insert lost a race on some key: insert each new alert on its own; one whose key
    another transaction took meanwhile counts onto that alert (once per raise of that key here)."""
    for key, alert in list(created.items()):
        try:
            with transaction.atomic():
                alert.pk = None
                alert.save(force_insert=True)
        except IntegrityError:
            winner = _open_alert(key)
            if winner is None:
                raise
            del created[key]
            for item in items:
                if item.dedupe_key == key:
                    _count_onto(winner, item, now)
            repeated[key] = winner


def alert_raise(
    *, site, alert_type: str, severity: str, message: str, miner=None, evidence: dict | None = None
) -> Alert:
    """One alert (``alerts_raise`` of one)."""
    if severity not in Alert.Severity.values:
        raise DomainError("invalid_severity", f"Severity must be one of {', '.join(Alert.Severity.values)}.")
    if miner is not None and miner.site_id != site.pk:
        raise DomainError("miner_not_in_site", "The miner is not at this site.")
    item = AlertToRaise(
        site_id=site.pk, alert_type=alert_type, severity=severity, message=message,
        miner_id=miner.pk if miner else None, customer_id=miner.customer_id if miner else None, evidence=evidence,
    )  # fmt: skip
    return alerts_raise([item])[0]


NOTE_MAX_CHARS = 500


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
    if changed:
        # The same values for every row: one UPDATE (bulk_update would build a CASE per row and field).
        Alert.objects.filter(pk__in=[a.pk for a in changed]).update(
            status=Alert.Status.ACKNOWLEDGED, acknowledged_by=actor, acknowledged_at=now, ack_note=note
        )
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
    if changed:
        Alert.objects.filter(pk__in=[a.pk for a in changed]).update(
            status=Alert.Status.RESOLVED, resolved_by=actor, resolved_at=now, resolution_note=note
        )
        outbox.publish_many("alert.resolved", [(f"alert:{a.pk}", _payload(a)) for a in changed])
    return changed


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> Alert:
    """One alert; acknowledging twice (or a resolved alert) changes nothing."""
    alerts_acknowledge(alert_ids=[alert.pk], actor=actor, note=note)
    return Alert.objects.get(pk=alert.pk)


def alert_resolve(*, alert: Alert, actor=None, note: str = "") -> Alert:
    alerts_resolve(alert_ids=[alert.pk], actor=actor, note=note)
    return Alert.objects.get(pk=alert.pk)
