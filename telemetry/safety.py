"""Safety events from edge devices: protective shutdowns and hardware failures.

Validated one by one like samples; stored once per (device, event id), so a collector replaying its
spool changes nothing; each new event raises an alert through the alert service (``alerts_raise``, the
bulk form of ``alert_raise``: one open alert per miner and kind, counted on repeats) and is linked to
it; one ``safety_events.received`` event per batch."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from django.db import IntegrityError, transaction

from hashinsight.events import outbox
from telemetry.ingest import SERIAL_MAX_CHARS, parse_utc
from telemetry.models import AlertSeverity, EdgeDevice, SafetyEvent, SafetyKind
from telemetry.services import AlertToRaise, alerts_raise

MAX_EVENTS = 500
EVENT_ID_MAX_CHARS = 64
DETAILS_MAX_BYTES = 4096
# A collector may replay its spool after days offline; a safety event is worth keeping that long.
MAX_AGE = timedelta(days=7)
SEVERITY = {
    SafetyKind.OVERHEAT_SHUTDOWN: AlertSeverity.CRITICAL,
    SafetyKind.POWER_LOSS: AlertSeverity.CRITICAL,
    SafetyKind.HASHBOARD_FAILURE: AlertSeverity.CRITICAL,
    SafetyKind.FAN_FAILURE: AlertSeverity.WARNING,
}
_MESSAGES = {
    SafetyKind.OVERHEAT_SHUTDOWN: "Miner {serial} shut down to protect itself from overheating",
    SafetyKind.FAN_FAILURE: "Fan failure on miner {serial}",
    SafetyKind.POWER_LOSS: "Power loss on miner {serial}",
    SafetyKind.HASHBOARD_FAILURE: "Hashboard or chain failure on miner {serial}",
}
_SITE_MESSAGES = {
    SafetyKind.OVERHEAT_SHUTDOWN: "Overheat shutdown reported at the site",
    SafetyKind.FAN_FAILURE: "Fan failure reported at the site",
    SafetyKind.POWER_LOSS: "Power loss at the site",
    SafetyKind.HASHBOARD_FAILURE: "Hashboard or chain failure reported at the site",
}


def _reject(rejected: list, index: int, event, reason: str) -> None:
    event_id = miner = None
    if isinstance(event, dict):
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        miner = event.get("miner") if isinstance(event.get("miner"), str) else None
    rejected.append(
        {
            "index": index,
            "event_id": event_id and event_id[:EVENT_ID_MAX_CHARS],
            "miner": miner and miner[:SERIAL_MAX_CHARS],
            "reason": reason,
        }
    )


def validate_safety_events(
    events: list, miners: dict[str, tuple[int, int | None]], now: datetime
) -> tuple[list[dict], list[dict]]:
    """(valid events as {event_id, miner_id, serial, kind, ts, details}, rejections)."""
    valid: list[dict] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        if type(event) is not dict:
            _reject(rejected, index, event, "not_an_object")
            continue
        event_id = event.get("event_id")
        if event_id is None:
            _reject(rejected, index, event, "missing_field:event_id")
            continue
        if type(event_id) is not str:
            _reject(rejected, index, event, "wrong_type:event_id")
            continue
        if not 0 < len(event_id) <= EVENT_ID_MAX_CHARS:
            _reject(rejected, index, event, "out_of_range:event_id")
            continue
        serial = event.get("miner")
        miner_id = None
        if serial is not None:
            if type(serial) is not str:
                _reject(rejected, index, event, "wrong_type:miner")
                continue
            known = miners.get(serial)
            if known is None:
                _reject(rejected, index, event, "unknown_miner")
                continue
            miner_id = known[0]
        kind = event.get("kind")
        if kind is None:
            _reject(rejected, index, event, "missing_field:kind")
            continue
        if type(kind) is not str:
            _reject(rejected, index, event, "wrong_type:kind")
            continue
        if kind not in SEVERITY:
            _reject(rejected, index, event, "unknown_kind")
            continue
        if event.get("ts") is None:
            _reject(rejected, index, event, "missing_field:ts")
            continue
        ts, reason = parse_utc(event["ts"], now, MAX_AGE)
        if reason is not None:
            _reject(rejected, index, event, reason)
            continue
        details = event.get("details")
        if details is None:
            details = {}
        elif type(details) is not dict:
            _reject(rejected, index, event, "wrong_type:details")
            continue
        elif len(orjson.dumps(details)) > DETAILS_MAX_BYTES:
            _reject(rejected, index, event, "out_of_range:details")
            continue
        if event_id in seen:
            _reject(rejected, index, event, "duplicate_in_batch")
            continue
        seen.add(event_id)
        valid.append({"event_id": event_id, "miner_id": miner_id, "serial": serial, "kind": kind, "ts": ts,
                      "details": details})  # fmt: skip
    return valid, rejected


def _message(kind: str, serial: str | None, device: EdgeDevice) -> str:
    text = _MESSAGES[kind].format(serial=serial) if serial else _SITE_MESSAGES[kind]
    return f"{text} (reported by edge device “{device.name}”)."


def _msg(kind: str, serial: str | None, device: EdgeDevice) -> dict:
    """The message as an id and its parameters (telemetry.alert_messages shows it in the reader's language)."""
    if serial:
        return {"id": f"safety_{kind}", "params": {"serial": serial, "device": device.name}}
    return {"id": f"safety_{kind}_site", "params": {"device": device.name}}


def store_safety_events(*, device: EdgeDevice, events: list[dict]) -> tuple[list[SafetyEvent], int]:
    """Store the events not yet stored for ``device``, raise an alert for each; returns (new events,
    number already stored). Two deliveries of one batch racing each other: the unique constraint lets one
    win, and the other retries once, finding them stored."""
    if not events:
        return [], 0
    try:
        return _store(device, events)
    except IntegrityError:
        return _store(device, events)


@transaction.atomic
def _store(device: EdgeDevice, events: list[dict]) -> tuple[list[SafetyEvent], int]:
    from miners.models import Miner

    known = set(
        SafetyEvent.objects.filter(device=device, event_id__in=[e["event_id"] for e in events]).values_list(
            "event_id", flat=True
        )
    )
    fresh = [e for e in events if e["event_id"] not in known]
    if not fresh:
        return [], len(events)
    # The miner must still be at this site when stored (the map may be seconds old).
    miners = Miner.objects.in_bulk({e["miner_id"] for e in fresh if e["miner_id"] is not None})
    created = SafetyEvent.objects.bulk_create(
        [
            SafetyEvent(
                device=device, site_id=device.site_id, event_id=e["event_id"], kind=e["kind"], ts=e["ts"],
                details=e["details"],
                miner=m if (m := miners.get(e["miner_id"])) is not None and m.site_id == device.site_id else None,
            )
            for e in fresh
        ]
    )  # fmt: skip
    if connection_needs_refetch(created):
        by_event_id = dict(
            SafetyEvent.objects.filter(device=device, event_id__in=[e.event_id for e in created]).values_list(
                "event_id", "pk"
            )
        )
        for event in created:
            event.pk = by_event_id[event.event_id]
    # One bulk raise for the batch (a constant number of queries): a miner's repeats of one kind count
    # onto its open alert, as single raises would.
    alerts = alerts_raise([
        AlertToRaise(
            site_id=device.site_id, alert_type=f"safety_{event.kind}", severity=SEVERITY[event.kind],
            message=_message(event.kind, source["serial"] if event.miner is not None else None, device),
            miner_id=event.miner_id, customer_id=event.miner.customer_id if event.miner is not None else None,
            evidence={"safety_event_id": event.pk, "event_id": event.event_id, "kind": event.kind,
                      "ts": event.ts.isoformat(), "details": event.details,
                      "msg": _msg(event.kind, source["serial"] if event.miner is not None else None, device)},
        )
        for event, source in zip(created, fresh, strict=True)
    ])  # fmt: skip
    for event, alert in zip(created, alerts, strict=True):
        event.alert = alert
    SafetyEvent.objects.bulk_update(created, ["alert"])
    outbox.publish(
        "safety_events.received",
        aggregate=f"edge_device:{device.pk}",
        payload={"site_id": device.site_id, "device_id": device.pk, "safety_event_ids": [e.pk for e in created]},
    )
    return created, len(events) - len(fresh)


def connection_needs_refetch(created: list[SafetyEvent]) -> bool:
    """bulk_create sets primary keys on PostgreSQL and SQLite ≥ 3.35; read them back elsewhere."""
    return any(event.pk is None for event in created)


def safety_event_list(*, user):
    """Safety events the user may see: a site's for its managers and viewers, a hosting client's own
    miners' for the client (an event without a miner is the site's)."""
    from sites.selectors import scope_of

    scope = scope_of(user)
    qs = SafetyEvent.objects.select_related("site", "miner", "device", "alert")
    q = scope.q(customer_prefix="miner__")
    return qs if q is None else qs.filter(q)
