"""Demand-response programmes: a utility or aggregator starts and ends curtailment events on a site with a signed
webhook, ``POST /api/v1/curtailment/dr/<slug>``.

Signature: ``X-HashInsight-Timestamp: <unix seconds>`` and ``X-HashInsight-Signature: sha256=<hex>``, the hex
being HMAC-SHA256, keyed with the programme's secret, of ``timestamp + "." + raw body`` (bytes as sent). A timestamp
more than 5 minutes from the server's clock is refused (a captured message cannot be replayed later), the
comparison is constant-time, and a message is checked before its body is even parsed.

Body: ``{"event_id": "...", "action": "start"|"end", "start"?: ISO 8601, "end"?: ISO 8601, "target_kw"?: kW,
"reason"?: text}``. ``start`` runs ``event_start`` with the programme's response profile (its mode, scope, priority,
durations; ``end`` sets the maximum duration, ``target_kw`` overrides the profile's) as source WEBHOOK with
``external_id = event_id``; the same id again answers the same event (never a second one). ``end`` runs
``event_end`` on that event (idempotent; the programme's end is the grid releasing the load, so the minimum
duration does not hold it back).

Who acts: the user who set the programme up (``created_by``): the commands are proposed in their name (proposer
kind SYSTEM) and need their rights (CURTAILMENT FULL and a manage grant on the site) at the time of the message.

The secret is made, sealed (the project's envelope encryption, ``hashinsight.security.crypto.seal_json``, as
``telemetry.devices`` seals an edge device's HMAC key, bound to the slug as associated data) and rotated by
``intelligence.response_profiles`` (the programmes' pages and admin); this module only opens it to check a message.
The headers ``X-DR-Timestamp`` and ``X-DR-Signature`` are accepted as aliases of the two above.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.events.audit import audit_append
from intelligence import curtailment_events as events
from intelligence.models import CurtailmentEvent, DemandResponseProgram

TIMESTAMP_HEADER = "X-HashInsight-Timestamp"
SIGNATURE_HEADER = "X-HashInsight-Signature"
TIMESTAMP_ALIAS, SIGNATURE_ALIAS = "X-DR-Timestamp", "X-DR-Signature"
MAX_SKEW_S = 300
MAX_BODY = 16 * 1024
ACTIONS = ("start", "end")


def program_secret(program: DemandResponseProgram) -> bytes:
    """The programme's HMAC-SHA256 key, opened by the programmes' own module (which seals it)."""
    from intelligence.response_profiles import program_secret as opened

    return opened(program)


def sign(secret: bytes | str, timestamp: int | str, body: bytes) -> str:
    """The ``X-HashInsight-Signature`` value for ``body`` sent at ``timestamp`` (what a sender computes)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _audit(program, event_type: str, *, actor=None, payload=None) -> None:
    audit_append(
        event_type=event_type, actor_type="user" if actor is not None else "system",
        actor_id=getattr(actor, "pk", None), reference=f"dr_program:{program.pk}",
        payload={"program_id": program.pk, "slug": program.slug, **(payload or {})}, site=program.site_id,
    )  # fmt: skip


def _unauthorised(code: str, message: str) -> DomainError:
    return DomainError(code, message, status=401)


def verify(program: DemandResponseProgram, *, timestamp, signature, body: bytes, now: datetime) -> None:
    """Refuse (401) a message whose timestamp is missing or more than 5 minutes off, or whose signature is not the
    programme's over ``timestamp.body``."""
    try:
        ts = int(str(timestamp).strip())
    except (TypeError, ValueError):
        raise _unauthorised("bad_signature", f"{TIMESTAMP_HEADER} is the time of sending in Unix seconds.") from None
    if abs(now.timestamp() - ts) > MAX_SKEW_S:
        raise _unauthorised("stale_timestamp", f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_S // 60} minutes off.")
    if not isinstance(signature, str) or not signature.startswith("sha256="):
        raise _unauthorised("bad_signature", f"{SIGNATURE_HEADER} is sha256=<hex HMAC-SHA256>.")
    expected = sign(program_secret(program), ts, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise _unauthorised("bad_signature", "The signature does not match this programme's secret.")


def _parse(body: bytes) -> dict:
    if len(body) > MAX_BODY:
        raise events._bad("invalid_body", "body", f"is at most {MAX_BODY // 1024} KiB")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise events._bad("invalid_body", "body", "is a JSON object") from None
    if not isinstance(data, dict):
        raise events._bad("invalid_body", "body", "is a JSON object")
    unknown = set(data) - {"event_id", "action", "start", "end", "target_kw", "reason"}
    if unknown:
        raise events._bad("invalid_body", "body", f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 120:
        raise events._bad("invalid", "event_id", "is text of 1 to 120 characters")
    if data.get("action") not in ACTIONS:
        raise events._bad("invalid_choice", "action", "is start or end")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 300:
        raise events._bad("invalid", "reason", "is text of at most 300 characters")
    clean = {"event_id": event_id.strip(), "action": data["action"], "reason": reason.strip()}
    for key in ("start", "end"):
        if data.get(key) is not None:
            clean[key] = events._moment(data[key], key)
    if data.get("target_kw") is not None:
        clean["target_kw"] = events._kw_value(data["target_kw"])
    if "start" in clean and "end" in clean and clean["end"] <= clean["start"]:
        raise events._bad("out_of_range", "end", "is after start")
    return clean


def _actor(program: DemandResponseProgram):
    from hashinsight.accounts.roles import Access, has_access
    from sites.selectors import site_is_manageable

    actor = program.created_by
    if (
        actor is None or not actor.is_active or not has_access(actor, events.MODULE, Access.FULL)
        or not site_is_manageable(user=actor, site_id=program.site_id)
    ):  # fmt: skip
        raise DomainError(
            "program_not_authorised",
            "The user who set this programme up may no longer curtail this site; nothing was done.",
            status=403,
        )
    return actor


def dr_message(*, slug: str, timestamp, signature, body: bytes, now: datetime | None = None):
    """Handle one webhook message. Returns ``(event, created)``: ``created`` True only for a new event (201).
    Refusals change nothing: 404 ``not_found`` (unknown or inactive slug), 401 ``bad_signature`` /
    ``stale_timestamp``, 400 (malformed body), 404 ``unknown_event`` (end of an event never started), 403
    ``program_not_authorised``, and ``event_start``'s own refusals."""
    now = now or timezone.now()
    program = (
        DemandResponseProgram.objects.select_related("profile", "created_by").filter(slug=slug, is_active=True).first()
    )
    if program is None:
        raise DomainError("not_found", "Not found.", status=404)
    verify(program, timestamp=timestamp, signature=signature, body=body, now=now)
    data = _parse(body)
    actor = _actor(program)
    event = events.event_exists_for(program, data["event_id"])
    created = False
    if data["action"] == "start":
        if event is None:
            event, created = _start(program, actor, data)
        result = "created" if created else "existing"
    else:
        if event is None:
            raise DomainError("unknown_event", "No event was started with this event_id.", status=404)
        before = event.status, event.end_requested_at
        event = events.event_end(actor=actor, event=event, reason=data["reason"], _authority=True)
        result = "ended" if (event.status, event.end_requested_at) != before else "unchanged"
    with transaction.atomic():
        DemandResponseProgram.objects.filter(pk=program.pk).update(last_received_at=now)
        payload = {"action": data["action"], "external_id": data["event_id"], "result": result, "event": event.pk}
        _audit(program, "dr_program.message", payload=payload)
    return event, created


def _start(program, actor, data) -> tuple[CurtailmentEvent, bool]:
    profile = program.profile
    kw = {}
    if "end" in data:
        start = data.get("start") or timezone.now()
        kw["max_duration_minutes"] = max(1, math.ceil((data["end"] - max(start, timezone.now())).total_seconds() / 60))
        kw["min_duration_minutes"] = min(profile.min_duration_minutes, kw["max_duration_minutes"])
    try:
        event = events.event_start(
            actor=actor, site_id=program.site_id, profile_id=profile.pk, target_kw=data.get("target_kw"),
            starts_at=data.get("start"), reason=data["reason"] or f"{program.name}: {data['event_id']}"[:300],
            source=CurtailmentEvent.Source.WEBHOOK, program=program, external_id=data["event_id"], **kw,
        )  # fmt: skip
    except IntegrityError:
        # The same event_id arrived twice at once: the other message's event is the answer.
        existing = events.event_exists_for(program, data["event_id"])
        if existing is None:
            raise
        return existing, False
    return event, True
