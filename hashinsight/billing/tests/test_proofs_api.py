"""The proofs API: roots for every WEB3 reader (list, filters, CSV, OP_RETURN), proofs scoped to their client (404
for another's, 409 before the day closes), verification by upload, broadcast recorded by owners and admins only."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashinsight.billing import proofs
from hashinsight.billing.models import ProofLeaf, ProofRoot, SlaCertificate
from hashinsight.billing.tests.test_proofs_support import issued_invoice, statement_bytes, yesterday
from hashinsight.security.canonical import canonical_json

pytestmark = pytest.mark.django_db
READERS = ("owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y")
NOT_WEB3 = ("customer", "guest")


@pytest.fixture
def closed(farm):
    inv_x = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    inv_y = issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    root = proofs.close_day(yesterday())
    return inv_x, inv_y, root


def as_user(api, farm, name):
    api.force_authenticate(farm.users[name])
    return api


@pytest.mark.parametrize("name", READERS + NOT_WEB3)
def test_roots_are_read_by_every_web3_reader(api, farm, closed, name):
    response = as_user(api, farm, name).get("/api/v1/proof-roots")
    if name in NOT_WEB3:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["root_sha256"] == closed[2].root_sha256
    assert body["results"][0]["op_return_hex"] == "6a2448534931" + closed[2].root_sha256


def test_anonymous_is_refused(api, closed):
    assert api.get("/api/v1/proof-roots").status_code in (401, 403)
    assert api.get(f"/api/v1/invoices/{closed[0].pk}/proof").status_code in (401, 403)


def test_roots_filter_sort_and_csv(api, farm, closed):
    ProofRoot.objects.create(day=date(2026, 1, 2), root_sha256="a" * 64, leaf_count=1, op_return_hex="6a24")
    client = as_user(api, farm, "client_x")
    days = [r["day"] for r in client.get("/api/v1/proof-roots?sort=day").json()["results"]]
    assert days == ["2026-01-02", yesterday().isoformat()]
    assert client.get("/api/v1/proof-roots?day=2026-01-02").json()["count"] == 1
    assert client.get("/api/v1/proof-roots?start=2026-01-03").json()["count"] == 1
    assert client.get("/api/v1/proof-roots?day=nope").status_code == 400
    assert client.get("/api/v1/proof-roots?sort=secret").status_code == 400
    response = client.get("/api/v1/proof-roots?format=csv&end=2026-01-31")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Day (UTC),Merkle root (SHA-256),Leaves")
    assert len(text.splitlines()) == 2 and "a" * 64 in text


def test_op_return_hex_and_raw(api, farm, closed):
    root = closed[2]
    client = as_user(api, farm, "siteowner_b_ro")
    body = client.get(f"/api/v1/proof-roots/{root.day}/op-return").json()
    assert body["script_hex"] == "6a24" + "48534931" + root.root_sha256
    assert body["asm"] == "OP_RETURN 48534931" + root.root_sha256
    assert body["size_bytes"] == 38 and body["tag"] == "HSI1" and body["broadcast_enabled"] is False
    raw = client.get(f"/api/v1/proof-roots/{root.day}/op-return?format=bin")
    assert raw.status_code == 200 and raw["Content-Type"] == "application/octet-stream"
    assert raw.content == bytes.fromhex(body["script_hex"])
    assert client.get("/api/v1/proof-roots/2020-01-01/op-return").status_code == 404
    assert client.get("/api/v1/proof-roots/2020-13-45/op-return?format=bin").json()["error_code"] == "not_found"


def test_invoice_proof_is_scoped_to_its_client(api, farm, closed):
    inv_x, inv_y, root = closed
    mine = as_user(api, farm, "client_x").get(f"/api/v1/invoices/{inv_x.pk}/proof")
    assert mine.status_code == 200
    assert mine.json()["leaf"]["sha256"] == inv_x.statement_sha256 and mine.json()["root"] == root.root_sha256
    theirs = as_user(api, farm, "client_x").get(f"/api/v1/invoices/{inv_y.pk}/proof")
    assert theirs.status_code == 404 and theirs.json()["error_code"] == "not_found"
    assert as_user(api, farm, "client_x").get("/api/v1/invoices/999999999/proof").status_code == 404
    # A site owner sees the invoices of its sites only.
    assert as_user(api, farm, "siteowner_a").get(f"/api/v1/invoices/{inv_x.pk}/proof").status_code == 200
    assert as_user(api, farm, "siteowner_a").get(f"/api/v1/invoices/{inv_y.pk}/proof").status_code == 404
    assert as_user(api, farm, "customer").get(f"/api/v1/invoices/{inv_x.pk}/proof").status_code == 403
    download = as_user(api, farm, "client_x").get(f"/api/v1/invoices/{inv_x.pk}/proof?download=1")
    assert f'filename="proof-{inv_x.number}-{root.day}.json"' in download["Content-Disposition"]


def test_invoice_proof_before_the_day_closes_is_a_409(api, farm):
    invoice = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    response = as_user(api, farm, "client_x").get(f"/api/v1/invoices/{invoice.pk}/proof")
    assert response.status_code == 409
    assert response.json()["error_code"] == "proof_day_not_closed"
    assert response.json()["details"] == {"day": yesterday().isoformat()}


def certificate(farm, customer, site, invoice=None):
    from hashinsight.tests.factories import HostingContractFactory

    contract = invoice.contract if invoice else HostingContractFactory(customer=customer, site=site)
    document = {"payload": {"client": customer.slug, "month": "2026-10", "uptime_pct": "99.100"}, "signature": "x"}
    sha = hashlib.sha256(canonical_json(document)).hexdigest()
    cert = SlaCertificate.objects.create(
        customer=customer, contract=contract, month=date(2026, 10, 1), uptime_pct=Decimal("99.100"),
        target_pct=Decimal("97.00"), met=True, document=document, sha256=sha,
    )  # fmt: skip
    leaf = proofs.record_leaf(kind=ProofLeaf.Kind.SLA_CERTIFICATE, object_id=cert.pk, sha256=sha,
                              customer_id=customer.pk, site_id=site.pk)  # fmt: skip
    ProofLeaf.objects.filter(pk=leaf.pk).update(day=yesterday())
    return cert


def test_sla_certificate_proof_scoped_and_its_json_verifies(api, farm):
    cert_x = certificate(farm, farm.client_x, farm.site_a)
    cert_y = certificate(farm, farm.client_y, farm.site_b)
    proofs.close_day(yesterday())
    client = as_user(api, farm, "client_x")
    response = client.get(f"/api/v1/sla-certificates/{cert_x.pk}/proof")
    assert response.status_code == 200
    document = response.json()
    assert document["leaf"]["object"] == {"type": "sla_certificate", "id": cert_x.pk, "month": "2026-10"}
    assert client.get(f"/api/v1/sla-certificates/{cert_y.pk}/proof").status_code == 404
    # The certificate as a client saves it (indented, other key order) verifies by its canonical JSON.
    pretty = json.dumps({"signature": "x", "payload": cert_x.document["payload"]}, indent=2).encode()
    result = proofs.verify_document(pretty, document, stored_root=proofs.stored_root_lookup)
    assert result.ok, result.as_dict()
    assert "canonical JSON" in result.checks[1].detail
    changed = pretty.replace(b"99.100", b"99.900")
    assert proofs.verify_document(changed, document).reason == "document_mismatch"


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_verify_endpoint(api, farm, closed):
    inv_x = closed[0]
    client = as_user(api, farm, "client_x")
    document = client.get(f"/api/v1/invoices/{inv_x.pk}/proof").json()
    data = statement_bytes(inv_x)
    proof_bytes = json.dumps(document).encode()

    ok = client.post("/api/v1/proofs/verify", {"file": upload("s.csv", data), "proof": upload("p.json", proof_bytes)},
                     format="multipart")  # fmt: skip
    assert ok.status_code == 200, ok.content
    assert ok.json()["ok"] is True and ok.json()["root_source"] == "database"
    assert [c["ok"] for c in ok.json()["checks"]] == [True] * 6

    changed = bytearray(data)
    changed[10] ^= 0x20
    bad = client.post("/api/v1/proofs/verify", {"file": upload("s.csv", bytes(changed)), "proof": json.dumps(document)},
                      format="multipart")  # fmt: skip
    assert bad.status_code == 200
    assert bad.json()["ok"] is False and bad.json()["reason"] == "document_mismatch"
    assert next(c for c in bad.json()["checks"] if c["name"] == "document")["ok"] is False

    missing = client.post("/api/v1/proofs/verify", {"proof": json.dumps(document)}, format="multipart")
    assert missing.status_code == 400 and missing.json()["error_code"] == "missing_file"
    no_proof = client.post("/api/v1/proofs/verify", {"file": upload("s.csv", data)}, format="multipart")
    assert no_proof.status_code == 400 and no_proof.json()["error_code"] == "missing_proof"
    garbage = client.post("/api/v1/proofs/verify", {"file": upload("s.csv", data), "proof": "{not json"},
                          format="multipart")  # fmt: skip
    assert garbage.json()["reason"] == "malformed_proof"
    refused = as_user(api, farm, "customer").post(
        "/api/v1/proofs/verify", {"file": upload("s.csv", data), "proof": json.dumps(document)}, format="multipart"
    )
    assert refused.status_code == 403


def test_broadcast_recorded_by_owners_and_admins(api, farm, closed):
    root = closed[2]
    url = f"/api/v1/proof-roots/{root.day}/broadcast"
    txid = "cd" * 32
    for name in ("siteowner_a", "client_x"):
        assert as_user(api, farm, name).post(url, {"txid": txid}, format="json").status_code == 403
    bad = as_user(api, farm, "admin").post(url, {"txid": "nope"}, format="json")
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_txid"
    assert as_user(api, farm, "admin").post("/api/v1/proof-roots/2020-01-01/broadcast", {"txid": txid},
                                            format="json").status_code == 404  # fmt: skip
    ok = as_user(api, farm, "admin").post(url, {"txid": txid}, format="json")
    assert ok.status_code == 200 and ok.json()["broadcast_txid"] == txid
    again = as_user(api, farm, "owner").post(url, {"txid": "ef" * 32}, format="json")
    assert again.status_code == 409 and again.json()["error_code"] == "already_broadcast"
    root.refresh_from_db()
    assert root.broadcast_txid == txid
