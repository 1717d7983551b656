"""SLA certificates: issued with the invoice, signed with Ed25519, hashed into the proofs, verified; a changed byte
fails."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction

from hashinsight.billing import certificates, sla_signing
from hashinsight.billing.models import ProofLeaf, SlaCertificate
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.events.models import AuditEvent
from hashinsight.security.canonical import canonical_json
from hashinsight.tests.factories import CustomerFactory, HostingContractFactory, MinerFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "keys" / "sla.json")


@pytest.fixture
def invoice():
    site = SiteFactory(name="Alpha")
    zone = ZoneFactory(site=site)
    client = CustomerFactory(company="Client X Ltd.")
    m1, m2 = MinerFactory(zone=zone, site=site, customer=client), MinerFactory(zone=zone, site=site, customer=client)
    contract = HostingContractFactory(
        customer=client,
        site=site,
        number="HC-77",
        sla_uptime_target_pct=D("99.50"),
        sla_credit_schedule=[{"below_pct": "99.5", "credit_pct": "5"}, {"below_pct": "99", "credit_pct": "10"}],
    )
    statement = [
        (m1, date(2026, 2, 3), "6", "0", "0", "0"),
        (m1, date(2026, 2, 5), "0", "12", "0", "0"),
        (m2, date(2026, 2, 9), "2", "0", "4", "6"),
    ]
    return issued_invoice(contract, month=date(2026, 2, 1), statement=statement)


def issue(invoice):
    with transaction.atomic():
        return certificates.issue_certificate(invoice)


def test_issue_signs_hashes_and_records(invoice):
    cert = issue(invoice)
    p = cert.document["payload"]
    assert p["client"] == {"id": invoice.customer_id, "name": "Client X Ltd."}
    assert (p["contract_number"], p["month"], p["invoice_number"]) == ("HC-77", "2026-02", invoice.number)
    assert (p["uptime_pct"], p["target_pct"], p["met"], p["credit_pct"]) == ("99.206", "99.50", False, "5")
    assert p["hours"] == {
        "period": "1344",
        "operator": "8.000",
        "client": "12.000",
        "excluded": "4.000",
        "curtailed": "6.000",
    }
    assert p["credits"] == {"sla": "12.50", "curtailment": "0.00", "currency": "USD"}
    assert p["statement_sha256"] == "5" * 64
    assert (cert.uptime_pct, cert.met, cert.credits, cert.month) == (D("99.206"), False, D("12.50"), date(2026, 2, 1))
    assert cert.sha256 == certificates.document_sha256(cert.document)
    leaf = ProofLeaf.objects.get(kind="sla_certificate", object_id=cert.pk)
    assert (leaf.sha256, leaf.customer_id, leaf.site_id) == (cert.sha256, invoice.customer_id, invoice.site_id)
    assert AuditEvent.objects.filter(
        event_type="sla_certificate.issued", reference=f"sla_certificate:{cert.pk}"
    ).exists()
    # The signature is Ed25519 over the payload's canonical JSON, with the published key.
    key = sla_signing.public_key(cert.document["key_id"])
    assert key.current and key.public_key_b64 == cert.document["public_key"]
    sla_signing.load_public(key.public_key_b64).verify(sla_signing.unb64(cert.document["signature"]), canonical_json(p))
    # A repeat returns the same certificate.
    assert issue(invoice).pk == cert.pk
    assert SlaCertificate.objects.count() == 1


def test_the_stored_document_verifies_after_a_database_round_trip(invoice):
    cert = issue(invoice)
    fresh = SlaCertificate.objects.get(pk=cert.pk)
    downloaded = json.loads(certificates.document_bytes(fresh.document))
    result = certificates.verify_certificate(downloaded)
    assert result.valid and result.reason == "ok" and result.recorded
    assert result.certificate_id == cert.pk and result.sha256 == cert.sha256


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["payload"].__setitem__("uptime_pct", "99.900"), "bad_signature"),
        (lambda d: d["payload"]["hours"].__setitem__("operator", "0.000"), "bad_signature"),
        (lambda d: d.__setitem__("signature", d["signature"][:-4] + "AAA="), "bad_signature"),
        (lambda d: d.__setitem__("key_id", "0" * 16), "unknown_key"),
        (lambda d: d.pop("signature"), "malformed"),
        (lambda d: d["payload"].__setitem__("type", "something.else"), "malformed"),
    ],
)
def test_a_tampered_certificate_fails(invoice, change, reason):
    document = copy.deepcopy(issue(invoice).document)
    change(document)
    result = certificates.verify_certificate(document)
    assert not result.valid and result.reason == reason


def test_a_document_signed_by_another_key_fails(invoice):
    document = copy.deepcopy(issue(invoice).document)
    other = Ed25519PrivateKey.generate()
    document["signature"] = sla_signing.b64(other.sign(canonical_json(document["payload"])))
    assert certificates.verify_certificate(document).reason == "bad_signature"


def test_a_validly_signed_document_not_on_record_fails(invoice):
    cert = issue(invoice)
    payload = {**cert.document["payload"], "certificate_id": cert.pk + 1000}
    result = certificates.verify_certificate(certificates.sign_payload(payload))
    assert (result.valid, result.reason) == (False, "not_on_record")
    payload = {**cert.document["payload"], "uptime_pct": "100.000"}  # signed by us, but not what was issued
    result = certificates.verify_certificate(certificates.sign_payload(payload))
    assert (result.valid, result.reason) == (False, "hash_mismatch")


def test_rotation_keeps_old_certificates_verifiable(invoice):
    cert = issue(invoice)
    new_id = sla_signing.rotate_signing_key()
    assert new_id != cert.document["key_id"]
    assert [k.current for k in sla_signing.public_keys()] == [True, False]
    assert certificates.verify_certificate(cert.document).valid


def test_the_private_key_is_sealed_on_disk(invoice, settings):
    issue(invoice)
    text = Path(settings.SLA_SIGNING_KEYRING).read_text()
    ring = json.loads(text)
    assert ring["keys"][0]["sealed_private_key"].startswith("hie1.")
    assert set(ring["keys"][0]) == {"key_id", "public_key", "sealed_private_key", "created_at"}


def test_no_miners_no_certificate(invoice):
    invoice.miner_count = 0
    assert issue(invoice) is None


def test_uptime_from_the_statement_when_the_invoice_has_none(invoice):
    invoice.sla_uptime_pct = None
    cert = issue(invoice)
    # 100 × (1344 − 8) / 1344 = 99.4047… → 99.405
    assert cert.document["payload"]["uptime_pct"] == "99.405"


def test_erc721_metadata(invoice):
    cert = issue(invoice)
    meta = certificates.erc721_metadata(cert, external_url="https://example.test/sla/1")
    assert set(meta) >= {"name", "description", "image", "external_url", "attributes"}
    assert meta["name"] == "SLA 2026-02 · Client X Ltd."
    assert meta["image"].startswith("data:image/svg+xml;base64,")
    import base64

    svg = base64.b64decode(meta["image"].split(",", 1)[1]).decode()
    assert "99.206%" in svg and "SLA MISSED" in svg
    attrs = {a["trait_type"]: a["value"] for a in meta["attributes"]}
    assert attrs["Uptime (%)"] == 99.206 and attrs["Target met"] == "no" and attrs["Month"] == "2026-02"
    assert meta["properties"]["certificate_sha256"] == cert.sha256
    json.dumps(meta)  # plain JSON
