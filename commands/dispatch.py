"""Dispatch to the edge: which commands a device receives, their signed envelopes, and the long poll.

- A device receives the APPROVED commands of its own site that have not expired, plus the DISPATCHED ones it took
  itself and has not acknowledged (redelivery after a lost answer), once ``REDELIVER_AFTER`` has passed since their
  dispatch; only that device acknowledges them. Which device took a command is ``Command.dispatched_to``,
  set in the dispatch's transaction: another device of the site, with its own nonce store, would run it again.
  A zone-bound device receives only commands whose targets all stand in its zone; a command spanning zones (or
  naming a miner since deleted) goes to the site-wide devices only.
- Taking a command (APPROVED → DISPATCHED, ``commands.services.command_mark_dispatched``) happens in one
  transaction with the rows locked ``FOR UPDATE SKIP LOCKED``: two concurrent polls never both dispatch one command.
- The nonce is not stored: it is ``HMAC(SECRET_KEY, command id + dispatched_at)`` (``dispatch_nonce``), so it is
  fixed at dispatch, unguessable, and a redelivery carries the same nonce and the same ``signed_at`` (the dispatch
  time): the edge's nonce store refuses it as a replay and acknowledges again with the results it recorded.
  Nothing runs twice.
- The long poll sleeps between cheap ``EXISTS`` checks (``CHECK_EVERY`` seconds) outside any transaction, and
  gives its database connection back before each sleep (to psycopg's pool in production: ten devices waiting
  must not hold the process's ten connections)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from commands import services
from commands.models import Command, CommandStatus, CommandTarget, CommandType
from hashinsight.security.signing import signed_envelope
from telemetry.devices import device_hmac_secret

S = CommandStatus
MAX_WAIT_S = 25
CHECK_EVERY = 0.5
POLL_LIMIT = 50
REDELIVER_AFTER = timedelta(seconds=5)

_sleep = time.sleep  # tests replace it
_monotonic = time.monotonic


def dispatch_nonce(command: Command) -> str:
    """The nonce of ``command``'s dispatch (derived, see the module's docstring); 22 url-safe characters."""
    if command.dispatched_at is None:
        raise ValueError("a command not dispatched has no nonce")
    key = hashlib.sha256(b"hashinsight.commands.dispatch_nonce:" + settings.SECRET_KEY.encode()).digest()
    message = f"{command.pk}:{command.dispatched_at.isoformat()}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()[:16]).rstrip(b"=").decode()


def device_commands(device) -> QuerySet[Command]:
    """Every command this device may know about (its site; for a zone-bound device, only its zone's)."""
    qs = Command.objects.filter(site_id=device.site_id)
    if device.zone_id is not None:
        outside = CommandTarget.objects.filter(command=OuterRef("pk")).exclude(miner__zone_id=device.zone_id)
        qs = qs.exclude(Exists(outside))
    return qs


def taken_by(device) -> Q:
    """The command was dispatched to ``device`` (``Command.dispatched_to``, set in the dispatch's transaction)."""
    return Q(dispatched_to=device)


def acknowledgeable(device) -> QuerySet[Command]:
    """The commands ``device`` may acknowledge: dispatched to it (anything else answers 404)."""
    return device_commands(device).filter(taken_by(device), dispatched_at__isnull=False)


def deliverable(device, now=None) -> QuerySet[Command]:
    """APPROVED commands whose time has come (``not_before``: a CURTAIL waits for its window), plus this
    device's own unacknowledged dispatches due for redelivery; none expired."""
    now = now or timezone.now()
    due = Q(status=S.APPROVED) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    redeliver = Q(status=S.DISPATCHED, dispatched_at__lte=now - REDELIVER_AFTER) & Q(taken_by(device))
    return device_commands(device).filter(due | redeliver, expires_at__gt=now)


def envelope_targets(command: Command) -> list:
    """The signed ``targets``: serials; for a CURTAIL, objects ``{"serial", "action", "power_w"}`` (its plan,
    frozen at proposal: ``power_target`` with the watts to hold, ``stop``, or ``none``)."""
    rows = command.targets.order_by("id")
    if command.command_type != CommandType.CURTAIL:
        return list(rows.values_list("serial", flat=True))
    out = []
    for serial, action in rows.values_list("serial", "action"):
        action = action or {}
        out.append({"serial": serial, "action": action.get("action", "none"), "power_w": action.get("power_w")})
    return out


def envelope(command: Command, key: bytes) -> dict:
    payload = {
        "command_id": command.pk,
        "site_id": command.site_id,
        "targets": envelope_targets(command),
        "type": command.command_type,
        "params": command.params or {},
        "priority": command.priority,
        "expires_at": command.expires_at,
        "dedupe_key": command.dedupe_key,
        "signed_at": command.dispatched_at,
        "nonce": dispatch_nonce(command),
    }
    return signed_envelope(payload, key)


def take(device, *, limit: int = POLL_LIMIT) -> list[dict]:
    """Dispatch what is due for ``device`` now and return the signed envelopes (one short transaction)."""
    key = device_hmac_secret(device)
    with transaction.atomic():
        rows = list(
            deliverable(device).select_for_update(skip_locked=True, of=("self",)).order_by("-priority", "id")[:limit]
        )
        out = []
        for command in rows:
            if command.status == S.APPROVED:
                command = services.command_mark_dispatched(command=command, device=device)
            out.append(envelope(command, key))
    return out


def _release_connection() -> None:
    """Close (with the pool: return) this thread's connection while waiting; never inside a transaction (a
    test's, or a caller's atomic block)."""
    if not connection.in_atomic_block:
        connection.close()


def long_poll(device, *, wait: float) -> list[dict]:
    """``take`` now; if nothing is due, look again every CHECK_EVERY seconds (a cheap EXISTS in autocommit,
    no transaction held while sleeping) until something is or ``wait`` seconds (at most MAX_WAIT_S) have passed."""
    wait = max(0.0, min(float(wait), MAX_WAIT_S))
    deadline = _monotonic() + wait
    while True:
        found = take(device)
        if found:
            return found
        while True:
            left = deadline - _monotonic()
            if left <= 0:
                return []
            _release_connection()
            _sleep(min(CHECK_EVERY, left))
            if deliverable(device).exists():
                break
