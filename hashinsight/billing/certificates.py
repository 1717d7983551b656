"""Monthly SLA certificates (owner: sla): signed JSON and ERC-721 metadata.

A certificate is issued with its month's invoice (``issue_certificate``, inside the issuing transaction). Its
**document** is ``{"payload", "algorithm": "Ed25519", "key_id", "public_key", "signature"}``: the signature covers
the canonical JSON of the payload (``hashinsight.security.canonical``), the key is the one of
``hashinsight.billing.sla_signing``. ``SlaCertificate.sha256`` is the SHA-256 of the canonical JSON of the whole
document, the exact bytes ``/api/v1/sla-certificates/{id}/document`` serves; it goes into the day's Merkle tree as
a ``sla_certificate`` leaf, so a client verifies a certificate the way it verifies a statement (an inclusion proof),
and ``verify_certificate`` checks the signature, the key and the hash on record.

The figures come from what the invoice froze: its SLA uptime (``Invoice.sla_uptime_pct``, computed from the
statement when the invoice left it empty), the statement rows' operator/client/excluded/curtailed hours and the
SLA credit lines. The ERC-721 form (``erc721_metadata``) is what the seed calls the "SLA NFT": a name, a
description, an SVG badge as a ``data:`` URI, the figures as attributes and a link back; it carries the
certificate's SHA-256 and is rendered from the stored document, never signed separately."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from hashinsight.billing import sla_signing
from hashinsight.billing.calc import sla as calc
from hashinsight.billing.models import InvoiceLine, ProofLeaf, SlaCertificate, StatementRow
from hashinsight.security.canonical import canonical_json, to_plain

DOCUMENT_TYPE = "hashinsight.sla_certificate"
VERSION = 1
_Q3 = Decimal("0.001")


def document_bytes(document: dict) -> bytes:
    """The bytes that are hashed and downloaded: the canonical JSON of the document."""
    return canonical_json(document)


def document_sha256(document: dict) -> str:
    return hashlib.sha256(document_bytes(document)).hexdigest()


def _figures(invoice) -> dict:
    sums = StatementRow.objects.filter(invoice=invoice).aggregate(
        operator=Sum("downtime_operator_h"),
        client=Sum("downtime_client_h"),
        excluded=Sum("downtime_excluded_h"),
        curtailed=Sum("curtailed_h"),
    )
    hours = {k: Decimal(v or 0).quantize(_Q3) for k, v in sums.items()}
    days = (invoice.period_end - invoice.period_start).days + 1
    period_h = Decimal(invoice.miner_count * days * 24)
    uptime = invoice.sla_uptime_pct
    if uptime is None:
        uptime = calc.sla_uptime_pct(period_h, hours["operator"])
    lines = dict(
        InvoiceLine.objects.filter(
            invoice=invoice, kind__in=[InvoiceLine.Kind.SLA_CREDIT, InvoiceLine.Kind.CURTAILMENT_CREDIT]
        )
        .values("kind")
        .annotate(total=Sum("amount"))
        .values_list("kind", "total")
    )
    sla_credit = -(lines.get(InvoiceLine.Kind.SLA_CREDIT) or Decimal("0"))
    curtailment_credit = -(lines.get(InvoiceLine.Kind.CURTAILMENT_CREDIT) or Decimal("0"))
    return {
        "period_h": period_h,
        "hours": hours,
        "uptime": Decimal(uptime).quantize(_Q3),
        "sla_credit": sla_credit.quantize(Decimal("0.01")),
        "curtailment_credit": curtailment_credit.quantize(Decimal("0.01")),
    }


def build_payload(invoice, *, certificate_id: int, issued_at) -> dict:
    contract, customer, site = invoice.contract, invoice.customer, invoice.site
    f = _figures(invoice)
    target = Decimal(contract.sla_uptime_target_pct).quantize(Decimal("0.01"))
    credit_pct = calc.credit_pct(contract.sla_credit_schedule, f["uptime"], target) if _schedule_ok(contract) else 0
    return to_plain(
        {
            "type": DOCUMENT_TYPE,
            "version": VERSION,
            "certificate_id": certificate_id,
            "client": {"id": customer.pk, "name": customer.company or customer.slug},
            "site": {"id": site.pk, "name": site.name},
            "contract_number": contract.number,
            "month": invoice.period_start.strftime("%Y-%m"),
            "period": {"start": invoice.period_start, "end": invoice.period_end},
            "miners": invoice.miner_count,
            "uptime_pct": f["uptime"],
            "target_pct": target,
            "met": f["uptime"] >= target,
            "hours": {
                "period": f["period_h"],
                "operator": f["hours"]["operator"],
                "client": f["hours"]["client"],
                "excluded": f["hours"]["excluded"],
                "curtailed": f["hours"]["curtailed"],
            },
            "uptime_formula": "100 * (period - operator) / period",
            "credit_pct": Decimal(credit_pct),
            "credits": {
                "sla": f["sla_credit"],
                "curtailment": f["curtailment_credit"],
                "currency": invoice.currency,
            },
            "invoice_number": invoice.number,
            "invoice_sha256": invoice.content_sha256,
            "statement_sha256": invoice.statement_sha256,
            "issued_at": issued_at,
        }
    )


def _schedule_ok(contract) -> bool:
    try:
        calc.parse_schedule(contract.sla_credit_schedule)
    except ValueError:
        return False
    return True


def sign_payload(payload: dict) -> dict:
    key_id, public_key, signature = sla_signing.sign(canonical_json(payload))
    return {
        "payload": payload,
        "algorithm": sla_signing.ALGORITHM,
        "key_id": key_id,
        "public_key": public_key,
        "signature": signature,
    }


def issue_certificate(invoice):
    """Called inside the issuing transaction of a month's invoice: the client's SLA certificate for that month (and
    its proof leaf). Returns the SlaCertificate, or None (an invoice with no miners certifies nothing). A repeat for
    the same contract and month returns the certificate already issued."""
    from hashinsight.billing.proofs import record_leaf
    from hashinsight.events.audit import audit_append

    month = invoice.period_start.replace(day=1)
    existing = SlaCertificate.objects.filter(contract_id=invoice.contract_id, month=month).first()
    if existing is not None:
        return existing
    if not invoice.miner_count:
        return None
    issued_at = timezone.now().replace(microsecond=0)
    cert = SlaCertificate.objects.create(
        customer_id=invoice.customer_id,
        contract_id=invoice.contract_id,
        invoice=invoice,
        month=month,
        uptime_pct=Decimal("0"),
        target_pct=invoice.contract.sla_uptime_target_pct,
        met=False,
        currency=invoice.currency,
        document={},
        sha256="",
    )
    payload = build_payload(invoice, certificate_id=cert.pk, issued_at=issued_at)
    document = to_plain(sign_payload(payload))
    cert.document = document
    cert.sha256 = document_sha256(document)
    cert.uptime_pct = Decimal(payload["uptime_pct"])
    cert.met = payload["met"]
    cert.credits = Decimal(payload["credits"]["sla"])
    cert.save(update_fields=["document", "sha256", "uptime_pct", "met", "credits"])
    record_leaf(
        kind="sla_certificate",
        object_id=cert.pk,
        sha256=cert.sha256,
        customer_id=cert.customer_id,
        site_id=invoice.site_id,
    )
    audit_append(
        event_type="sla_certificate.issued",
        actor_type="system",
        actor_id="",
        reference=f"sla_certificate:{cert.pk}",
        site=invoice.site_id,
        payload={
            "certificate_id": cert.pk,
            "invoice": invoice.number,
            "month": payload["month"],
            "sha256": cert.sha256,
        },
    )
    return cert


# ---------------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str  # "ok" or the first failed check's code
    message: str
    certificate_id: int | None = None
    sha256: str | None = None
    key_id: str | None = None
    recorded: bool = False  # its SHA-256 is a leaf of the proofs (in a closed day's tree once ``root`` is set)
    proof_day: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


REQUIRED = {"payload", "algorithm", "key_id", "public_key", "signature"}


def verify_certificate(document) -> Verification:
    """Check a certificate document: its shape, a key of ours, the Ed25519 signature over the payload's canonical
    JSON, and that its SHA-256 is the one on record for its id. The first failed check is the reason."""
    if not isinstance(document, dict) or set(document) != REQUIRED or not isinstance(document.get("payload"), dict):
        return Verification(
            False,
            "malformed",
            _("Not an SLA certificate document (payload, algorithm, key_id, public_key and signature expected)."),
        )
    payload = document["payload"]
    if payload.get("type") != DOCUMENT_TYPE or document["algorithm"] != sla_signing.ALGORITHM:
        return Verification(False, "malformed", _("Not an Ed25519-signed SLA certificate."))
    try:
        sha = document_sha256(document)
    except (TypeError, ValueError, RecursionError):
        return Verification(False, "malformed", _("The document holds values JSON cannot carry canonically."))
    key = sla_signing.public_key(str(document["key_id"]))
    if key is None or key.public_key_b64 != document["public_key"]:
        return Verification(False, "unknown_key", _("The certificate was not signed with one of our keys."), sha256=sha)
    try:
        sla_signing.load_public(key.public_key_b64).verify(
            sla_signing.unb64(str(document["signature"])), canonical_json(payload)
        )
    except (InvalidSignature, ValueError, TypeError):
        return Verification(
            False,
            "bad_signature",
            _("The signature does not match the certificate's contents."),
            sha256=sha,
            key_id=key.key_id,
        )
    cert_id = payload.get("certificate_id")
    cert = SlaCertificate.objects.filter(pk=cert_id).first() if isinstance(cert_id, int) else None
    if cert is None:
        return Verification(
            False, "not_on_record", _("No certificate with this id was issued here."), sha256=sha, key_id=key.key_id
        )
    if cert.sha256 != sha:
        return Verification(
            False,
            "hash_mismatch",
            _("The document differs from the certificate on record."),
            certificate_id=cert.pk,
            sha256=sha,
            key_id=key.key_id,
        )
    leaf = ProofLeaf.objects.filter(kind="sla_certificate", object_id=cert.pk, sha256=sha).first()
    return Verification(
        True,
        "ok",
        _("Signature, key and hash verified."),
        certificate_id=cert.pk,
        sha256=sha,
        key_id=key.key_id,
        recorded=leaf is not None,
        proof_day=leaf.day.isoformat() if leaf else None,
    )


# ---------------------------------------------------------------------------------------------------------
# ERC-721 metadata (the "SLA NFT")


def badge_svg(payload: dict) -> str:
    met = bool(payload.get("met"))
    colour = "#198754" if met else "#dc3545"
    word = "SLA MET" if met else "SLA MISSED"
    client = escape(str(payload.get("client", {}).get("name", "")))[:60]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="350" height="350" viewBox="0 0 350 350">'
        f'<rect width="350" height="350" rx="24" fill="#0f172a"/>'
        f'<circle cx="175" cy="140" r="92" fill="none" stroke="{colour}" stroke-width="12"/>'
        f'<text x="175" y="132" fill="#fff" font-family="sans-serif" font-size="40" text-anchor="middle">'
        f"{escape(str(payload.get('uptime_pct')))}%</text>"
        f'<text x="175" y="170" fill="{colour}" font-family="sans-serif" font-size="20" text-anchor="middle">'
        f"{word}</text>"
        f'<text x="175" y="270" fill="#cbd5e1" font-family="sans-serif" font-size="18" text-anchor="middle">'
        f"{escape(str(payload.get('month')))} · target {escape(str(payload.get('target_pct')))}%</text>"
        f'<text x="175" y="300" fill="#94a3b8" font-family="sans-serif" font-size="14" text-anchor="middle">'
        f"{client}</text></svg>"
    )


def erc721_metadata(cert: SlaCertificate, *, external_url: str = "") -> dict:
    """ERC-721 metadata JSON (name, description, image, external_url, attributes) of a certificate."""
    p = cert.document["payload"]
    svg = badge_svg(p)
    hours = p["hours"]
    return {
        "name": f"SLA {p['month']} · {p['client']['name']}",
        "description": (
            f"HashInsight SLA certificate for contract {p['contract_number']} ({p['site']['name']}), {p['month']}: "
            f"uptime {p['uptime_pct']} % against a {p['target_pct']} % target. Signed with Ed25519 key "
            f"{cert.document['key_id']}; SHA-256 {cert.sha256}."
        ),
        "image": "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii"),
        "external_url": external_url,
        "attributes": [
            {"trait_type": "Client", "value": p["client"]["name"]},
            {"trait_type": "Contract", "value": p["contract_number"]},
            {"trait_type": "Site", "value": p["site"]["name"]},
            {"trait_type": "Month", "value": p["month"]},
            {"trait_type": "Uptime (%)", "value": float(p["uptime_pct"]), "display_type": "number"},
            {"trait_type": "Target (%)", "value": float(p["target_pct"]), "display_type": "number"},
            {"trait_type": "Target met", "value": "yes" if p["met"] else "no"},
            {"trait_type": "Operator downtime (h)", "value": float(hours["operator"]), "display_type": "number"},
            {"trait_type": "Client downtime (h)", "value": float(hours["client"]), "display_type": "number"},
            {"trait_type": "Excluded downtime (h)", "value": float(hours["excluded"]), "display_type": "number"},
            {"trait_type": "SLA credit (%)", "value": float(p["credit_pct"]), "display_type": "number"},
            {"trait_type": f"SLA credit ({p['credits']['currency']})", "value": p["credits"]["sla"]},
            {"trait_type": "Invoice", "value": p["invoice_number"]},
        ],
        "properties": {
            "certificate_sha256": cert.sha256,
            "key_id": cert.document["key_id"],
            "statement_sha256": p["statement_sha256"],
        },
    }
