"""Verifiable statements (owner: proofs): what was issued each UTC day, and the audit chain's head at the day's end,
in a Merkle tree whose root is kept (``ProofRoot``) and exported as a Bitcoin OP_RETURN script.

The life of a leaf:
1. **Recorded** (``record_leaf``) in the transaction that issues a document (an invoice's statement, an SLA
   certificate, a credit note): its kind, the object, whose it is, and the document's SHA-256. ``day`` is the UTC
   date of recording.
2. **Closed** (``close_day``, by the hourly ``billing.close_proof_days`` job once the UTC day is over): the day's
   leaves, ordered by (kind, object id, id), then one ``audit_head`` leaf, SHA-256 of the canonical JSON
   ``{"hash": <head event hash>, "seq": <head seq>}`` of the audit chain at closing (``0`` and 64 zeros for an empty
   chain), make the tree (``hashinsight.billing.merkle``); the root, the leaf count, the head and the OP_RETURN
   script are stored, each leaf gets its root and index, ``proof_root.closed`` goes to the outbox and the closing is
   appended to the audit chain (so the next day's audit-head leaf covers this day's root too).
3. **Proved** (``proof_for``): the JSON document a client downloads, with the path from its leaf to the root.

Rules:
- A closed day is never rebuilt: ``close_day`` on a closed day returns its root unchanged.
- Days close in order. A day with unclosed leaves of an earlier, still open day is refused (``earlier_day_open``);
  the job closes the oldest first.
- **Late leaves.** A leaf whose issuing transaction commits after its day was closed (it began before midnight UTC
  and ended after the closing) cannot join that tree. It stays with its own ``day`` (when it was issued) and joins
  the tree of the first day after it that is still open: ``close_day(D)`` takes every unclosed leaf dated on or
  before ``D``. Its proof says which day's root holds it (``day`` of the proof is the root's day).
- Days with nothing issued have no tree (the audit chain is anchored on the days something was issued).
- Broadcasting the OP_RETURN script is optional and off (``BILLING_BROADCAST_OP_RETURN``); an operator who
  broadcasts it records the transaction id (``root_record_broadcast``, from the admin or the API).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from hashinsight.billing import merkle
from hashinsight.billing.models import ISSUED_STATUSES, CreditNote, Invoice, ProofLeaf, ProofRoot, SlaCertificate
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import ActorType, actor_of, audit_append
from hashinsight.events.models import GENESIS_HASH, AuditEvent
from hashinsight.events.outbox import publish
from hashinsight.security.canonical import canonical_json

logger = logging.getLogger(__name__)

Kind = ProofLeaf.Kind
PROOF_VERSION = 1
PROOF_FORMAT = "hashinsight-merkle-inclusion-proof"
TREE_DESCRIPTION = (
    "RFC 6962 Merkle tree over SHA-256: leaf = SHA-256(0x00 || document SHA-256), node = SHA-256(0x01 || left || "
    "right), an odd node is promoted to the next level unchanged"
)
DOCUMENT_KINDS = (Kind.STATEMENT, Kind.SLA_CERTIFICATE, Kind.CREDIT_NOTE)


def record_leaf(*, kind: str, object_id: int, sha256: str, customer_id: int | None, site_id: int | None) -> ProofLeaf:
    """Called inside the issuing transaction: the leaf joins today's (UTC) tree when the day is closed."""
    leaf, _ = ProofLeaf.objects.get_or_create(
        kind=kind,
        object_id=object_id,
        sha256=sha256,
        defaults={"day": timezone.now().date(), "customer_id": customer_id, "site_id": site_id},
    )
    return leaf


# ---------------------------------------------------------------------------------------------------------------------
# Closing a day


def utc_today() -> date:
    return timezone.now().date()  # USE_TZ: now() is UTC


def audit_head() -> tuple[int, str]:
    """(seq, hash) of the audit chain's last event; (0, 64 zeros) for an empty chain."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "event_hash").first()
    return (head[0], head[1]) if head else (0, GENESIS_HASH)


def audit_head_sha256(seq: int, event_hash: str) -> str:
    """The audit-head leaf: SHA-256 of the canonical JSON ``{"hash": …, "seq": …}`` (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json({"seq": int(seq), "hash": event_hash})).hexdigest()


def close_day(day: date, *, actor=None) -> ProofRoot | None:
    """Close ``day`` (a past UTC day): build its tree and store its root. Returns the root (the existing one for a
    day already closed: never rebuilt), or None when there is nothing to put in a tree."""
    if day >= utc_today():
        raise DomainError(
            "day_not_over", _("A day is closed once it is over (UTC)."), status=409, details={"day": day.isoformat()}
        )
    existing = ProofRoot.objects.filter(day=day).first()
    if existing is not None:
        return existing
    try:
        return _close_day(day, actor=actor)
    except IntegrityError:
        # Another closer stored the same day first (the unique day): its root is the day's root.
        existing = ProofRoot.objects.filter(day=day).first()
        if existing is None:
            raise
        return existing


@transaction.atomic(durable=True)
def _close_day(day: date, *, actor) -> ProofRoot | None:
    # Lock the open leaves up to the day (ids in order: two closers queue instead of deadlocking). A leaf
    # committed after this read is a late leaf: it goes into the next open day's tree.
    leaves = list(
        ProofLeaf.objects.select_for_update()
        .filter(root__isnull=True, day__lte=day)
        .exclude(kind=Kind.AUDIT_HEAD)
        .order_by("id")
    )
    existing = ProofRoot.objects.filter(day=day).first()  # re-read under the lock
    if existing is not None:
        return existing
    earlier = {leaf.day for leaf in leaves if leaf.day < day}
    closed = set(ProofRoot.objects.filter(day__in=earlier).values_list("day", flat=True))
    if earlier - closed:
        first = min(earlier - closed)
        raise DomainError(
            "earlier_day_open",
            _("An earlier day with issued documents is not closed yet."),
            status=409,
            details={"day": first.isoformat()},
        )
    if not leaves:
        return None
    leaves.sort(key=lambda leaf: (leaf.kind, leaf.object_id if leaf.object_id is not None else -1, leaf.id))
    seq, head_hash = audit_head()
    head_leaf = ProofLeaf(day=day, kind=Kind.AUDIT_HEAD, object_id=seq, sha256=audit_head_sha256(seq, head_hash))
    hashes = [leaf.sha256 for leaf in leaves] + [head_leaf.sha256]
    root_hex = merkle.merkle_root(hashes)
    root = ProofRoot.objects.create(
        day=day,
        root_sha256=root_hex,
        leaf_count=len(hashes),
        audit_head_seq=seq,
        audit_head_hash=head_hash,
        op_return_hex=merkle.op_return_script(root_hex),
    )
    for index, leaf in enumerate(leaves):
        leaf.root, leaf.index = root, index
    ProofLeaf.objects.bulk_update(leaves, ["root", "index"], batch_size=500)
    head_leaf.root, head_leaf.index = root, len(leaves)
    head_leaf.save(force_insert=True)
    publish(
        "proof_root.closed",
        aggregate=f"proof_root:{day.isoformat()}",
        payload={"day": day, "root_sha256": root_hex, "leaf_count": len(hashes)},
    )
    actor_type, actor_id = actor_of(actor) if actor is not None else (ActorType.SYSTEM, "billing.close_proof_days")
    audit_append(
        event_type="proof_root.closed",
        actor_type=actor_type,
        actor_id=actor_id,
        reference=f"proof_root:{day.isoformat()}",
        payload={
            "day": day.isoformat(),
            "root_sha256": root_hex,
            "leaf_count": len(hashes),
            "audit_head_seq": seq,
            "audit_head_hash": head_hash,
            "op_return_hex": root.op_return_hex,
        },
    )
    return root


def days_to_close(today: date | None = None) -> list[date]:
    """The past days whose trees are due, oldest first: each day with open leaves of its own, and for a late leaf of
    a closed day the first open day after it (when that day is over too)."""
    today = today or utc_today()
    open_days = sorted(
        set(
            ProofLeaf.objects.filter(root__isnull=True, day__lt=today)
            .exclude(kind=Kind.AUDIT_HEAD)
            .values_list("day", flat=True)
        )
    )
    if not open_days:
        return []
    closed = set(ProofRoot.objects.filter(day__gte=open_days[0]).values_list("day", flat=True))
    due = set()
    for day in open_days:
        while day in closed:
            day += timedelta(days=1)
        if day < today:
            due.add(day)
    return sorted(due)


def close_pending_days(today: date | None = None) -> list[ProofRoot]:
    """Close every due day, oldest first, each in its own transaction (a catch-up after downtime closes them all)."""
    roots = []
    for day in days_to_close(today):
        root = close_day(day)
        if root is not None:
            roots.append(root)
    return roots


# ---------------------------------------------------------------------------------------------------------------------
# Broadcasting (optional, off by default)


class OpReturnBroadcaster(Protocol):
    """Sends a transaction with one OP_RETURN output carrying ``script_hex`` and returns its id (64 hex). Configured
    by ``BILLING_BROADCAST_ADAPTER`` (a dotted path to a class taking no arguments); none ships with the project, so
    nothing reaches the network unless an operator writes and configures one."""

    def broadcast(self, *, day: date, script_hex: str) -> str: ...


def broadcast_enabled() -> bool:
    return bool(getattr(settings, "BILLING_BROADCAST_OP_RETURN", False))


def broadcaster() -> OpReturnBroadcaster | None:
    path = getattr(settings, "BILLING_BROADCAST_ADAPTER", "") or ""
    if not broadcast_enabled() or not path:
        return None
    module, _sep, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)()


def broadcast_pending(*, limit: int = 10) -> list[ProofRoot]:
    """With broadcasting on and an adapter configured: broadcast the roots not broadcast yet (oldest first) and
    record their transaction ids. Otherwise nothing."""
    adapter = broadcaster()
    if adapter is None:
        return []
    done = []
    for root in ProofRoot.objects.filter(broadcast_txid="").order_by("day")[:limit]:
        txid = adapter.broadcast(day=root.day, script_hex=root.op_return_hex)
        done.append(root_record_broadcast(day=root.day, txid=txid, actor=None))
    return done


def _valid_txid(txid) -> str:
    txid = (txid or "").strip().lower() if isinstance(txid, str) else ""
    if not merkle.is_sha256_hex(txid):
        raise DomainError(
            "invalid_txid",
            _("A Bitcoin transaction id is 64 hexadecimal characters."),
            details={"txid": _("64 hexadecimal characters")},
        )
    return txid


@transaction.atomic
def root_record_broadcast(*, day: date, txid: str, actor) -> ProofRoot:
    """Record the transaction that carries ``day``'s OP_RETURN script. The same id again changes nothing; another id
    for a root that already has one is refused (``already_broadcast``): the first anchor stays."""
    txid = _valid_txid(txid)
    root = ProofRoot.objects.select_for_update().filter(day=day).first()
    if root is None:
        raise DomainError("not_found", _("No root for that day."), status=404)
    if root.broadcast_txid == txid:
        return root
    if root.broadcast_txid:
        raise DomainError(
            "already_broadcast",
            _("This root's broadcast transaction is already recorded."),
            status=409,
            details={"broadcast_txid": root.broadcast_txid},
        )
    root.broadcast_txid = txid
    root.save(update_fields=["broadcast_txid"])
    actor_type, actor_id = actor_of(actor) if actor is not None else (ActorType.SYSTEM, "billing.broadcast")
    audit_append(
        event_type="proof_root.broadcast",
        actor_type=actor_type,
        actor_id=actor_id,
        reference=f"proof_root:{day.isoformat()}",
        payload={"day": day.isoformat(), "root_sha256": root.root_sha256, "txid": txid},
    )
    return root


# ---------------------------------------------------------------------------------------------------------------------
# Reads: scoped leaves and proofs


def _scope(user):
    from sites.selectors import scope_of

    return scope_of(user)


def visible_invoices(user):
    """Issued invoices of the hosting clients and sites ``user`` sees (one query)."""
    q = _scope(user).q()
    qs = Invoice.objects.filter(status__in=ISSUED_STATUSES)
    return qs.filter(q) if q is not None else qs


def visible_certificates(user):
    q = _scope(user).q(prefix="contract__", customer_prefix="")
    qs = SlaCertificate.objects.all()
    return qs.filter(q) if q is not None else qs


def visible_leaves(user):
    """Proof leaves of the documents ``user`` may see (the audit-head leaves belong to nobody: owners and admins)."""
    q = _scope(user).q()
    qs = ProofLeaf.objects.all()
    return qs.filter(q) if q is not None else qs


def root_list(user=None):
    """Daily roots: not secret (a root reveals nothing of the leaves), every WEB3 reader sees them all."""
    return ProofRoot.objects.all()


def not_ready(leaf: ProofLeaf) -> DomainError:
    return DomainError(
        "proof_day_not_closed",
        _("This document's day is not closed yet: its proof is ready after the day ends (UTC) and its tree is built."),
        status=409,
        details={"day": leaf.day.isoformat()},
    )


def leaf_of(*, kind: str, object_id: int, sha256: str) -> ProofLeaf | None:
    return ProofLeaf.objects.filter(kind=kind, object_id=object_id, sha256=sha256).select_related("root").first()


def invoice_proof(*, user, invoice_id: int) -> dict:
    """The inclusion proof of an issued invoice's statement; 404 outside the user's scope, 409 before its day closes."""
    invoice = visible_invoices(user).filter(pk=invoice_id).first()
    if invoice is None or not invoice.statement_sha256:
        raise DomainError("not_found", _("No issued invoice with that id."), status=404)
    leaf = leaf_of(kind=Kind.STATEMENT, object_id=invoice.pk, sha256=invoice.statement_sha256)
    if leaf is None:
        raise DomainError("proof_not_recorded", _("This invoice's statement has no proof leaf."), status=409)
    return proof_for(leaf, obj=invoice)


def certificate_proof(*, user, certificate_id: int) -> dict:
    cert = visible_certificates(user).filter(pk=certificate_id).first()
    if cert is None:
        raise DomainError("not_found", _("No SLA certificate with that id."), status=404)
    leaf = leaf_of(kind=Kind.SLA_CERTIFICATE, object_id=cert.pk, sha256=cert.sha256)
    if leaf is None:
        raise DomainError("proof_not_recorded", _("This certificate has no proof leaf."), status=409)
    return proof_for(leaf, obj=cert)


def _object_of(leaf: ProofLeaf, obj=None) -> dict:
    if leaf.kind == Kind.STATEMENT:
        invoice = obj or Invoice.objects.filter(pk=leaf.object_id).first()
        out = {"type": "invoice_statement", "id": leaf.object_id}
        if invoice is not None:
            out.update(
                number=invoice.number,
                period_start=invoice.period_start.isoformat(),
                period_end=invoice.period_end.isoformat(),
            )
        return out
    if leaf.kind == Kind.SLA_CERTIFICATE:
        cert = obj or SlaCertificate.objects.filter(pk=leaf.object_id).first()
        out = {"type": "sla_certificate", "id": leaf.object_id}
        if cert is not None:
            out["month"] = cert.month.strftime("%Y-%m")
        return out
    if leaf.kind == Kind.CREDIT_NOTE:
        out = {"type": "credit_note", "id": leaf.object_id}
        note = CreditNote.objects.filter(pk=leaf.object_id).values_list("number", flat=True).first()
        if note:
            out["number"] = note
        return out
    return {"type": "audit_head", "seq": leaf.object_id}


def proof_for(leaf: ProofLeaf, *, obj=None) -> dict:
    """The inclusion proof document of ``leaf`` (JSON-ready): everything a verifier needs, with or without us."""
    root = leaf.root
    if root is None or leaf.index is None:
        raise not_ready(leaf)
    hashes = list(ProofLeaf.objects.filter(root=root).order_by("index").values_list("sha256", flat=True))
    head_index = len(hashes) - 1
    return {
        "version": PROOF_VERSION,
        "format": PROOF_FORMAT,
        "tree": TREE_DESCRIPTION,
        "leaf": {"kind": leaf.kind, "sha256": leaf.sha256, "object": _object_of(leaf, obj)},
        "issued_day": leaf.day.isoformat(),
        "day": root.day.isoformat(),
        "index": leaf.index,
        "leaf_count": root.leaf_count,
        "proof": merkle.inclusion_proof(hashes, leaf.index),
        "root": root.root_sha256,
        "audit_head": {
            "seq": root.audit_head_seq,
            "hash": root.audit_head_hash,
            "sha256": hashes[head_index],
            "index": head_index,
            "proof": merkle.inclusion_proof(hashes, head_index),
        },
        "op_return_hex": root.op_return_hex,
        "broadcast_txid": root.broadcast_txid or None,
    }


def proof_filename(document: dict) -> str:
    obj = document["leaf"]["object"]
    name = obj.get("number") or f"{obj.get('type', 'document')}-{obj.get('id', '')}"
    return f"proof-{name}-{document['day']}.json".replace("/", "-").replace(" ", "-")


# ---------------------------------------------------------------------------------------------------------------------
# Verification: shared by manage.py verify_statement, the API and the portal page


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not checked (and why in ``detail``)
    detail: str


@dataclass
class Verification:
    ok: bool
    reason: str  # "" when ok; else the first failed check's code
    message: str
    checks: list[Check] = field(default_factory=list)
    day: str | None = None
    root: str | None = None
    root_source: str = "proof"  # "database" when compared with the stored root, "proof" offline
    leaf: dict | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
            "day": self.day,
            "root": self.root,
            "root_source": self.root_source,
            "leaf": self.leaf,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


MAX_PROOF_BYTES = 64 * 1024


def parse_proof(raw) -> dict:
    """The proof document from bytes, text or a dict; ``MalformedProof`` when it is not one of ours."""
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_PROOF_BYTES:
            raise merkle.MalformedProof("the proof file is larger than any proof")
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise merkle.MalformedProof("the proof is not UTF-8 text") from exc
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise merkle.MalformedProof("the proof is not JSON") from exc
    if not isinstance(raw, dict):
        raise merkle.MalformedProof("the proof is not a JSON object")
    if raw.get("version") != PROOF_VERSION:
        raise merkle.MalformedProof(f"the proof's version is not {PROOF_VERSION}")
    leaf = raw.get("leaf")
    if not isinstance(leaf, dict) or not merkle.is_sha256_hex(leaf.get("sha256")):
        raise merkle.MalformedProof("the proof has no leaf SHA-256")
    if not merkle.is_sha256_hex(raw.get("root")):
        raise merkle.MalformedProof("the proof has no root")
    if not isinstance(raw.get("proof"), list):
        raise merkle.MalformedProof("the proof has no path")
    try:
        date.fromisoformat(str(raw.get("day")))
    except ValueError as exc:
        raise merkle.MalformedProof("the proof's day is not a date") from exc
    for key in ("index", "leaf_count"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool)):
            raise merkle.MalformedProof(f"the proof's {key} is not a whole number")
    return raw


def document_hashes(data: bytes, kind: str) -> list[tuple[str, str]]:
    """The ways a document file is hashed, as (how, sha256): its bytes; and for an SLA certificate or a credit note
    (JSON documents) also the canonical JSON of its content, so one re-saved with other spacing or key order still
    verifies."""
    out = [("bytes", hashlib.sha256(data).hexdigest())]
    if kind in (Kind.SLA_CERTIFICATE, Kind.CREDIT_NOTE):
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
            out.append(("canonical_json", hashlib.sha256(canonical_json(parsed)).hexdigest()))
            if isinstance(parsed, dict) and isinstance(parsed.get("document"), dict):
                out.append(("canonical_json", hashlib.sha256(canonical_json(parsed["document"])).hexdigest()))
        except (UnicodeDecodeError, ValueError, TypeError):
            pass
    return out


OFFLINE = "offline"


def verify_document(data: bytes, raw_proof, *, stored_root=None) -> Verification:
    """Check a document file against its proof. ``stored_root(day) -> root hex | None | OFFLINE`` compares with the
    stored daily root (None: no root for that day; ``OFFLINE``: no database, the root comes from the proof itself).
    Every check runs, so a reader sees all that failed; ``reason`` is the first."""
    checks: list[Check] = []
    try:
        proof = parse_proof(raw_proof)
    except merkle.MalformedProof as exc:
        checks.append(Check("proof", False, str(exc)))
        return Verification(False, "malformed_proof", _("The proof file is not a valid proof: %s.") % exc, checks)
    checks.append(
        Check("proof", True, _("A proof of version %(v)s for %(day)s.") % {"v": PROOF_VERSION, "day": proof["day"]})
    )
    leaf = proof["leaf"]
    kind, want = str(leaf.get("kind", "")), leaf["sha256"]
    result = Verification(True, "", "", checks, day=proof["day"], root=proof["root"], leaf=leaf)
    failures: list[tuple[str, str]] = []

    # 1. The file is the document the proof is about.
    hashes = document_hashes(data, kind)
    matched = next((how for how, h in hashes if h == want), None)
    if matched:
        how = _("its bytes") if matched == "bytes" else _("its canonical JSON")
        checks.append(
            Check(
                "document", True, _("The file's SHA-256 (%(how)s) is the proof's leaf %(h)s.") % {"how": how, "h": want}
            )
        )
    else:
        detail = _(
            "The file's SHA-256 is %(got)s, the proof's leaf is %(want)s: the file was changed, or the proof "
            "is for another document."
        ) % {"got": hashes[0][1], "want": want}
        checks.append(Check("document", False, detail))
        failures.append(("document_mismatch", detail))

    # 2. The path leads from the leaf to the root, and has the shape its position needs.
    try:
        computed = merkle.root_from_proof(want, proof["proof"])
        if (
            "index" in proof
            and "leaf_count" in proof
            and [s["side"] for s in proof["proof"]] != merkle.path_sides(proof["index"], proof["leaf_count"])
        ):
            raise merkle.MalformedProof("the path does not fit the leaf's index and the tree's size")
    except merkle.MalformedProof as exc:
        detail = _("The inclusion path is not valid: %s.") % exc
        checks.append(Check("path", False, detail))
        failures.append(("malformed_proof", detail))
        computed = None
    if computed is not None:
        if computed == proof["root"]:
            checks.append(Check("path", True, _("The path leads from the leaf to the root %s.") % computed))
        else:
            detail = _("The path leads to %(got)s, not to the proof's root %(want)s.") % {
                "got": computed,
                "want": proof["root"],
            }
            checks.append(Check("path", False, detail))
            failures.append(("path_mismatch", detail))

    # 3. The audit chain's head is in the same tree.
    head = proof.get("audit_head")
    if isinstance(head, dict) and "sha256" in head:
        try:
            expected = audit_head_sha256(int(head.get("seq") or 0), str(head.get("hash") or GENESIS_HASH))
            if expected != head["sha256"]:
                raise merkle.MalformedProof("the head's leaf is not the SHA-256 of {seq, hash}")
            if not merkle.verify(head["sha256"], head.get("proof"), proof["root"]):
                raise merkle.MalformedProof("the head's path does not lead to the root")
            checks.append(
                Check("audit_head", True, _("The audit chain's head (event #%s) is in the tree.") % head.get("seq"))
            )
        except (merkle.MalformedProof, TypeError, ValueError) as exc:
            detail = _("The audit chain's head does not check: %s.") % exc
            checks.append(Check("audit_head", False, detail))
            failures.append(("audit_head_mismatch", detail))

    # 4. The OP_RETURN script anchors this root.
    script = proof.get("op_return_hex")
    if script:
        try:
            anchored = merkle.op_return_root(str(script))
        except merkle.MalformedProof as exc:
            anchored, why = None, str(exc)
        if anchored == proof["root"]:
            checks.append(Check("op_return", True, _("The OP_RETURN script carries the root.")))
        else:
            detail = _("The OP_RETURN script does not carry the proof's root") + (
                f": {why}." if anchored is None else "."
            )
            checks.append(Check("op_return", False, detail))
            failures.append(("op_return_mismatch", detail))

    # 5. The root is the one we stored for that day (or, offline, it comes from the proof itself).
    stored = stored_root(date.fromisoformat(proof["day"])) if stored_root is not None else OFFLINE
    if stored == OFFLINE:
        result.root_source = "proof"
        checks.append(
            Check(
                "published_root",
                None,
                _(
                    "Not checked (offline): the root comes from the proof itself. "
                    "Compare it with the published daily root or the OP_RETURN "
                    "transaction."
                ),
            )
        )
    else:
        result.root_source = "database"
        if stored is None:
            detail = _("No daily root is stored for %s.") % proof["day"]
            checks.append(Check("published_root", False, detail))
            failures.append(("root_unknown", detail))
        elif stored == proof["root"]:
            checks.append(Check("published_root", True, _("The proof's root is the stored root of %s.") % proof["day"]))
        else:
            detail = _("The stored root of %(day)s is %(stored)s, not the proof's %(root)s.") % {
                "day": proof["day"],
                "stored": stored,
                "root": proof["root"],
            }
            checks.append(Check("published_root", False, detail))
            failures.append(("root_mismatch", detail))

    if failures:
        result.ok, result.reason, result.message = False, failures[0][0], failures[0][1]
    else:
        result.message = (
            _("The document is in the tree of %s, whose root is stored here.") % proof["day"]
            if result.root_source == "database"
            else _("The document is in the tree of %s (root taken from the proof).") % proof["day"]
        )
    return result


def stored_root_lookup(day: date):
    """``stored_root`` for ``verify_document`` from this database: the root hex, None, or ``OFFLINE`` when the
    database cannot be read."""
    try:
        return ProofRoot.objects.filter(day=day).values_list("root_sha256", flat=True).first()
    except DatabaseError:
        return OFFLINE
