"""The tamper-evident audit chain: ``audit_append`` in the transaction of the change it records,
``verify_chain`` to prove nothing was changed, removed, inserted or reordered since.

Each event is hashed with its predecessor's hash:

    event_hash = hex(SHA-256(prev_hash as ASCII + canonical_json(canonical_event(row))))

where the canonical event is the object ``{"id", "seq", "created_at", "site_id", "actor_type",
"actor_id", "event_type", "reference", "payload"}`` written by ``hashinsight.security.canonical``
(sorted keys, no whitespace, UTF-8, datetimes in UTC with microseconds, decimals as strings). The first
event's ``prev_hash`` is 64 zeros. ``seq`` counts 1, 2, 3… with no gaps.

One chain, whatever the concurrency: on PostgreSQL an append takes a transaction-level advisory lock,
so appends queue from the moment one takes it until its transaction ends (call ``audit_append`` late in
the transaction: the lock is held until commit); on SQLite writers are serialised by the database
already. Either way the unique ``seq`` and unique ``prev_hash`` make a fork impossible: a writer that
read a stale head fails instead of branching.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connections, router, transaction
from django.utils import timezone

from hashinsight.events.models import GENESIS_HASH, AuditEvent
from hashinsight.security.canonical import canonical_json, to_plain

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the chain head: the first 8 bytes of SHA-256("hashinsight.audit_chain").
CHAIN_LOCK_KEY = int.from_bytes(hashlib.sha256(b"hashinsight.audit_chain").digest()[:8], "big", signed=True)
ActorType = AuditEvent.ActorType
VERIFY_CACHE_KEY = "audit_verify"
VERIFY_CACHE_S = 60


def canonical_event(
    *, public_id, seq, created_at, site_id, actor_type, actor_id, event_type, reference, payload
) -> dict:
    return {
        "id": public_id,
        "seq": seq,
        "created_at": created_at,
        "site_id": site_id,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "event_type": event_type,
        "reference": reference,
        "payload": payload,
    }


def event_hash(prev_hash: str, event: dict) -> str:
    """SHA-256 over the predecessor's hash (64 hex characters, as ASCII) and the canonical event."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(event)).hexdigest()


def actor_of(user) -> tuple[str, str]:
    """(actor_type, actor_id) of a person, or the system when there is none (a rule, a signal)."""
    if user is None or not getattr(user, "pk", None):
        return ActorType.SYSTEM, ""
    return ActorType.USER, str(user.pk)


def _lock_chain(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
    # SQLite: one writer at a time for the whole database (our transactions begin IMMEDIATE, so the
    # write lock is held from the start; a deferred transaction that read a stale head would fail on
    # write with SQLITE_BUSY rather than fork, and the unique constraints catch anything else).


def audit_append(
    *, event_type: str, actor_type: str, actor_id, reference: str = "", payload: dict | None = None, site=None
) -> AuditEvent:
    """Append one event to the chain in the caller's transaction (refused outside one).

    ``site`` is a Site or its id; ``payload`` is stored in its canonical plain form (decimals as
    strings, datetimes as ISO-8601 UTC), exactly what was hashed."""
    using = router.db_for_write(AuditEvent)
    if not transaction.get_connection(using).in_atomic_block:
        raise RuntimeError("audit_append must run inside the transaction that changes state")
    if actor_type not in ActorType.values:
        raise ValueError(f"unknown actor type {actor_type!r}")
    if not event_type or len(event_type) > 64:
        raise ValueError("event_type must be 1 to 64 characters")
    actor_id = "" if actor_id is None else str(actor_id)
    reference = reference or ""
    plain_payload = to_plain(payload or {})
    if not isinstance(plain_payload, dict):
        raise TypeError("the audit payload must be an object")
    site_id = getattr(site, "pk", site)
    site_id = None if site_id is None else int(site_id)

    _lock_chain(using)
    head = AuditEvent.objects.using(using).order_by("-seq").values_list("seq", "event_hash").first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    event = AuditEvent(
        seq=seq,
        created_at=timezone.now(),
        site_id=site_id,
        actor_type=str(actor_type),
        actor_id=actor_id[:64],
        event_type=event_type,
        reference=reference[:200],
        payload=plain_payload,
        prev_hash=prev_hash,
    )
    event.event_hash = event_hash(prev_hash, _canonical_of(event))
    event.save(using=using, force_insert=True)
    return event


def _canonical_of(row: AuditEvent) -> dict:
    return canonical_event(
        public_id=row.public_id,
        seq=row.seq,
        created_at=row.created_at,
        site_id=row.site_id,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        event_type=row.event_type,
        reference=row.reference,
        payload=row.payload,
    )


# ---------------------------------------------------------------------------------------------
# Verification

_FIELDS = (
    "public_id",
    "seq",
    "created_at",
    "site_id",
    "actor_type",
    "actor_id",
    "event_type",
    "reference",
    "payload",
    "prev_hash",
    "event_hash",
)

REASONS = {
    "genesis_mismatch": "the first event does not start from the genesis hash (events before it were removed)",
    "seq_gap": "its sequence number does not follow the previous event's (events were removed or renumbered)",
    "prev_hash_mismatch": "its previous hash is not the previous event's hash (an event was removed, inserted "
    "or reordered before it)",
    "hash_mismatch": "its hash does not match its content (the event was modified)",
}


@dataclass
class VerifyResult:
    ok: bool
    count: int  # events checked (up to and including the first broken one)
    first_broken: dict | None = None  # {"seq", "id", "reason", "message"}
    head_seq: int | None = None  # the last event verified, to anchor elsewhere (truncation of the tail
    head_hash: str | None = None  # is only visible against a copy of the head kept outside the database)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "count": self.count,
            "first_broken": self.first_broken,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
        }


def _broken(count: int, seq: int, public_id: str, reason: str, head_seq, head_hash) -> VerifyResult:
    return VerifyResult(
        ok=False,
        count=count,
        first_broken={"seq": seq, "id": public_id, "reason": reason, "message": REASONS[reason]},
        head_seq=head_seq,
        head_hash=head_hash,
    )


def verify_chain(*, batch_size: int = 2000, using: str | None = None) -> VerifyResult:
    """Walk the chain in ``seq`` order, ``batch_size`` rows per query (keyset on ``seq``, so memory
    stays flat for millions of events), and stop at the first broken link."""
    using = using or router.db_for_read(AuditEvent)
    prev_seq, prev_hash, count = 0, GENESIS_HASH, 0
    while True:
        rows = list(
            AuditEvent.objects.using(using).filter(seq__gt=prev_seq).order_by("seq").values_list(*_FIELDS)[:batch_size]
        )
        if not rows:
            break
        for public_id, seq, created_at, site_id, actor_type, actor_id, etype, ref, payload, p_hash, e_hash in rows:
            count += 1
            head = (prev_seq or None, prev_hash if prev_seq else None)
            if prev_seq == 0 and p_hash != GENESIS_HASH:
                return _broken(count, seq, public_id, "genesis_mismatch", *head)
            if seq != prev_seq + 1:
                return _broken(count, seq, public_id, "seq_gap", *head)
            if p_hash != prev_hash:
                return _broken(count, seq, public_id, "prev_hash_mismatch", *head)
            event = canonical_event(
                public_id=public_id,
                seq=seq,
                created_at=created_at,
                site_id=site_id,
                actor_type=actor_type,
                actor_id=actor_id,
                event_type=etype,
                reference=ref,
                payload=payload,
            )
            try:
                recomputed = event_hash(p_hash, event)
            except (TypeError, ValueError):
                recomputed = None  # content no canonical form can come from: modified
            if recomputed != e_hash:
                return _broken(count, seq, public_id, "hash_mismatch", *head)
            prev_seq, prev_hash = seq, e_hash
    return VerifyResult(ok=True, count=count, head_seq=prev_seq or None, head_hash=prev_hash if prev_seq else None)


def verify_cached() -> dict:
    """``verify_chain`` as a dict with ``verified_at``, kept ``VERIFY_CACHE_S`` seconds (a scan of millions
    of events takes a while; the portal's button and the API share the result). A down cache computes."""
    try:
        cached = cache.get(VERIFY_CACHE_KEY)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    result = verify_chain().as_dict()
    result["verified_at"] = timezone.now()
    with contextlib.suppress(Exception):  # a down cache only costs the next request a scan
        cache.set(VERIFY_CACHE_KEY, result, VERIFY_CACHE_S)
    return result


# ---------------------------------------------------------------------------------------------
# Hooks that have no service of their own


def record_login_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """``user_login_failed`` receiver: a failed sign-in is a system event (nobody is signed in). Attempts
    against an account django-axes has already locked out are counted by axes, not appended again,
    so a password-guessing flood cannot grow the chain without bound per account and address."""
    if request is not None and getattr(request, "axes_locked_out", False):
        return
    username = str((credentials or {}).get("username") or "")[:150]
    ip = ""
    if request is not None:
        try:
            from axes.helpers import get_client_ip_address

            ip = get_client_ip_address(request) or ""
        except Exception:  # pragma: no cover - axes API change: fall back to the socket address
            ip = request.META.get("REMOTE_ADDR", "")
    try:
        with transaction.atomic():
            audit_append(
                event_type="auth.login_failed",
                actor_type=ActorType.SYSTEM,
                actor_id="auth",
                reference=f"login:{username}"[:200],
                payload={"username": username, "ip": ip, "path": getattr(request, "path", "")},
            )
    except Exception:  # the sign-in answer must not turn into a 500 because auditing failed
        logger.exception("audit of a failed sign-in failed")
