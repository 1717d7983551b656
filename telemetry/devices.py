"""Edge device identity: one-time enrollment codes, registration, credential rotation and revocation,
and the collector's self-reported health.

Secrets are created here and returned once to the caller; the database keeps only a SHA-256 hash of the
enrollment code and of the device token, and the device's HMAC secret sealed with the project's
envelope encryption (``device_hmac_secret`` opens it, to sign commands sent to the device). Nothing here
logs a secret. Each change of a device publishes ``edge_device.changed`` in its transaction."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from hashinsight.accounts.models import hash_secret
from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from hashinsight.events.audit import actor_of, audit_append
from hashinsight.security.crypto import open_json, seal_json
from sites.selectors import require_site_manageable, scope_of
from telemetry.edge_auth import DEVICE_TOKEN_PREFIX
from telemetry.models import EdgeDevice, EnrollmentCode

ENROLLMENT_CODE_TTL = timedelta(hours=24)
# Codes are typed into a collector's config by hand: 20 characters from an alphabet without look-alikes
# (no 0/O, 1/I/L, U), about 98 bits, shown in groups of five. Dashes, spaces and case are ignored.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_LENGTH = 20
NAME_MAX_CHARS = 100
VERSION_MAX_CHARS = 40
HEALTH_MAX_BYTES = 4096
HEALTH_COUNT_MAX = 10_000_000
HEALTH_TEXT_MAX_CHARS = 200


# --- Reads ------------------------------------------------------------------------------------------


def device_list(*, user) -> QuerySet[EdgeDevice]:
    """Edge devices of the sites the user operates: owners and admins all, a site owner those of the
    sites granted to them (read-only grants included). A device is site infrastructure, not a client's
    miner, so hosting clients (whose scope is their own miners) see none."""
    return _site_infrastructure(EdgeDevice.objects.select_related("site", "zone"), user)


def enrollment_code_list(*, user) -> QuerySet[EnrollmentCode]:
    """Enrollment codes (their hashes, never the codes) of the sites whose devices the user sees."""
    return _site_infrastructure(EnrollmentCode.objects.select_related("site", "zone", "created_by", "device"), user)


def _site_infrastructure(qs: QuerySet, user) -> QuerySet:
    q = scope_of(user).site_infrastructure().q()
    return qs if q is None else qs.filter(q)


def device_status(device: EdgeDevice) -> str:
    """``revoked``, ``never_seen`` (registered but its token never used) or ``active``."""
    if device.revoked_at is not None:
        return "revoked"
    if device.last_seen_at is None:
        return "never_seen"
    return "active"


# --- Secrets ----------------------------------------------------------------------------------------


def normalize_code(code: Any) -> str | None:
    """The code as hashed (upper case, no dashes or spaces), or None if it cannot be one of ours."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    normalized = code.replace("-", "").replace(" ", "").strip().upper()
    if len(normalized) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in normalized):
        return None
    return normalized


def _new_code() -> tuple[str, str]:
    """(code as shown, code as hashed)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 5] for i in range(0, CODE_LENGTH, 5)), raw


def _aad(prefix: str) -> bytes:
    return f"edge_device:{prefix}".encode()


def _new_credentials(device: EdgeDevice) -> tuple[str, str]:
    """Give ``device`` a fresh token and HMAC secret (not saved); returns (token, hmac_secret)."""
    prefix = secrets.token_hex(6)
    while EdgeDevice.objects.filter(token_prefix=prefix).exists():  # 48 bits: a clash is all but impossible
        prefix = secrets.token_hex(6)
    token_secret = secrets.token_urlsafe(32)
    hmac_secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    device.token_prefix = prefix
    device.token_hash = hash_secret(token_secret)
    # The sealed value is bound to the token prefix: copied onto another device row it does not open.
    device.secret_sealed = seal_json({"hmac_secret": hmac_secret}, aad=_aad(prefix))
    return f"{DEVICE_TOKEN_PREFIX}_{prefix}_{token_secret}", hmac_secret


def device_hmac_secret(device: EdgeDevice) -> bytes:
    """The device's HMAC-SHA256 key (32 bytes), to sign what is sent to it."""
    text = open_json(device.secret_sealed, aad=_aad(device.token_prefix))["hmac_secret"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _audit(device: EdgeDevice, action: str, actor_type: str, actor_id) -> None:
    """Device credentials issued, rotated or revoked: on the audit chain, in this transaction."""
    audit_append(
        event_type=f"edge_device.{action}", actor_type=actor_type, actor_id=actor_id,
        reference=f"edge_device:{device.pk}", site=device.site_id,
        payload={"device_id": device.pk, "name": device.name, "token_prefix": device.token_prefix},
    )  # fmt: skip


def _publish(device: EdgeDevice, action: str) -> None:
    outbox.publish(
        "edge_device.changed",
        aggregate=f"edge_device:{device.pk}",
        payload={"device_id": device.pk, "site_id": device.site_id, "action": action},
    )


# --- Writes -----------------------------------------------------------------------------------------


@transaction.atomic
def enrollment_code_create(*, site, zone=None, actor=None) -> tuple[EnrollmentCode, str]:
    """A one-time code for a new collector at ``site`` (and ``zone``), valid 24 h; returns the row and
    the code, which is never retrievable again. ``actor`` None is the system (``manage.py edge_enroll``)."""
    if actor is not None:
        require_site_manageable(user=actor, site_id=site.pk)
    if zone is not None and zone.site_id != site.pk:
        raise DomainError("zone_not_in_site", "The zone does not belong to this site.")
    shown, raw = _new_code()
    enrollment = EnrollmentCode.objects.create(
        site=site, zone=zone, code_hash=hash_secret(raw), created_by=actor,
        expires_at=timezone.now() + ENROLLMENT_CODE_TTL,
    )  # fmt: skip
    # No event: edge_device.changed names a device, and there is none until the code is used.
    return enrollment, shown


def _clean_text(value: Any, *, field: str, max_chars: int, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DomainError(f"invalid_{field}", f"The {field} must be text.", details={field: "not text"})
    value = value.strip()
    if required and not value:
        raise DomainError(f"invalid_{field}", f"The {field} is required.", details={field: "required"})
    if len(value) > max_chars or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise DomainError(
            f"invalid_{field}",
            f"The {field} must be at most {max_chars} printable characters.",
            details={field: "too long or not printable"},
        )
    return value


@transaction.atomic
def device_register(*, code, name, version) -> tuple[EdgeDevice, str, str]:
    """Exchange an enrollment code for a device: returns (device, token, hmac_secret), the last two
    shown this once. The code row is locked, so of two registrations racing on one code only one wins."""
    name = _clean_text(name, field="name", max_chars=NAME_MAX_CHARS, required=True)
    version = _clean_text(version, field="version", max_chars=VERSION_MAX_CHARS, required=False)
    normalized = normalize_code(code)
    enrollment = None
    if normalized is not None:
        enrollment = (
            EnrollmentCode.objects.select_for_update(of=("self",))
            .select_related("site", "zone")
            .filter(code_hash=hash_secret(normalized))
            .first()
        )
    if enrollment is None:
        raise DomainError("enrollment_code_invalid", "Unknown enrollment code.", status=400)
    if enrollment.used_at is not None:
        raise DomainError("enrollment_code_used", "This enrollment code has already been used.", status=410)
    if enrollment.expires_at <= timezone.now():
        raise DomainError("enrollment_code_expired", "This enrollment code has expired; ask for a new one.", status=410)
    device = EdgeDevice(
        site=enrollment.site, zone=enrollment.zone, name=name, version=version, created_by=enrollment.created_by
    )
    token, hmac_secret = _new_credentials(device)
    device.save()
    enrollment.used_at = timezone.now()
    enrollment.device = device
    enrollment.save(update_fields=["used_at", "device"])
    _publish(device, "registered")
    _audit(device, "registered", actor_type="device", actor_id=device.pk)
    return device, token, hmac_secret


def _locked(device: EdgeDevice, actor) -> EdgeDevice:
    if actor is not None:
        require_site_manageable(user=actor, site_id=device.site_id)
    return EdgeDevice.objects.select_for_update(of=("self",)).select_related("site", "zone").get(pk=device.pk)


@transaction.atomic
def device_rotate(*, device: EdgeDevice, actor=None) -> tuple[EdgeDevice, str, str]:
    """New token and HMAC secret for ``device``; the old ones stop working at once (the token lookup
    reads the row on every request). Returns (device, token, hmac_secret). A revoked device stays revoked."""
    device = _locked(device, actor)
    if device.revoked_at is not None:
        raise DomainError("device_revoked", "This device is revoked; enroll a new one instead.", status=409)
    token, hmac_secret = _new_credentials(device)
    device.rotated_at = timezone.now()
    device.save(update_fields=["token_prefix", "token_hash", "secret_sealed", "rotated_at"])
    _publish(device, "rotated")
    _audit(device, "rotated", *actor_of(actor))
    return device, token, hmac_secret


@transaction.atomic
def device_revoke(*, device: EdgeDevice, actor=None) -> EdgeDevice:
    """Revoke ``device``: its next request answers 401. Revoking twice changes nothing."""
    device = _locked(device, actor)
    if device.revoked_at is None:
        device.revoked_at = timezone.now()
        device.save(update_fields=["revoked_at"])
        _publish(device, "revoked")
        _audit(device, "revoked", *actor_of(actor))
    return device


# What a collector reports about itself; other keys are ignored (a newer collector may send more).
HEALTH_COUNTS = ("spool_depth", "poll_errors", "push_errors", "miners_polled", "miners_total", "uptime_s")
HEALTH_TIMES = ("last_push_at", "last_poll_at")
HEALTH_TEXTS = ("last_error",)


def clean_health(health: Any) -> dict:
    """The health report as stored, or DomainError ``invalid_health`` naming the bad fields."""
    if not isinstance(health, dict):
        raise DomainError("invalid_health", "The health report must be an object.")
    if len(json.dumps(health, default=str)) > HEALTH_MAX_BYTES:
        raise DomainError("invalid_health", f"The health report may be at most {HEALTH_MAX_BYTES} bytes.", status=413)
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in HEALTH_COUNTS:
        value = health.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= HEALTH_COUNT_MAX:
            errors[key] = f"a whole number from 0 to {HEALTH_COUNT_MAX}"
        else:
            clean[key] = value
    for key in HEALTH_TIMES:
        value = health.get(key)
        if value is None:
            continue
        parsed: datetime | None = parse_datetime(value) if isinstance(value, str) and len(value) <= 40 else None
        if parsed is None or parsed.tzinfo is None:
            errors[key] = "an ISO-8601 time with a time zone"
        else:
            clean[key] = parsed.astimezone(UTC).isoformat()
    for key in HEALTH_TEXTS:
        value = health.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > HEALTH_TEXT_MAX_CHARS:
            errors[key] = f"text of at most {HEALTH_TEXT_MAX_CHARS} characters"
        else:
            clean[key] = "".join(ch for ch in value if ch.isprintable())
    if errors:
        raise DomainError("invalid_health", "The health report has invalid fields.", details=errors)
    return clean


@transaction.atomic
def device_report_health(*, device: EdgeDevice, health: Any, version: Any = None) -> EdgeDevice:
    """Store what the collector says about itself (replacing the previous report) and its version.
    Not an ``edge_device.changed`` event: it is routine telemetry about the collector, sent every minute."""
    clean = clean_health(health)
    clean["reported_at"] = timezone.now().isoformat()
    fields = {"health": clean}
    if version is not None:
        fields["version"] = _clean_text(version, field="version", max_chars=VERSION_MAX_CHARS, required=False)
    EdgeDevice.objects.filter(pk=device.pk).update(**fields)
    for key, value in fields.items():
        setattr(device, key, value)
    return device
