"""Proof pages (Django test client): who may open them, the roots list's filters and CSV, the documents page scoped
to its client, proof downloads (404 for another client's, 409 before the day closes), and the verify page's verdicts."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashinsight.billing import proofs
from hashinsight.billing.models import ProofLeaf
from hashinsight.billing.tests.test_proofs_support import issued_invoice, statement_bytes, yesterday

pytestmark = pytest.mark.django_db
PAGES = ("/proofs/", "/proofs/documents/", "/proofs/verify/")


@pytest.fixture
def closed(farm):
    inv_x = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    inv_y = issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    return inv_x, inv_y, proofs.close_day(yesterday())


@pytest.mark.parametrize(
    "name, status",
    [("owner", 200), ("admin", 200), ("siteowner_a", 200), ("siteowner_b_ro", 200), ("client_x", 200),
     ("customer", 403), ("guest", 403)],
)  # fmt: skip
def test_who_opens_the_pages(client, farm, closed, name, status):
    client.force_login(farm.users[name])
    for url in PAGES:
        assert client.get(url).status_code == status, url


def test_anonymous_goes_to_login(client, closed):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_roots_page_lists_filters_and_exports(client, farm, closed):
    root = closed[2]
    client.force_login(farm.users["client_y"])
    page = client.get("/proofs/").content.decode()
    assert root.root_sha256 in page and root.op_return_hex in page and 'data-copy-target="#op-return-' in page
    assert "38 bytes" in page
    empty = client.get("/proofs/?broadcast=yes").content.decode()
    assert root.root_sha256 not in empty
    csv = client.get("/proofs/?format=csv")
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert root.root_sha256 in text and root.op_return_hex in text
    assert "not a date" not in client.get("/proofs/?start=nope").content.decode()  # dropped, named as a problem
    assert client.get("/proofs/?start=nope").status_code == 200


def test_documents_page_shows_only_the_clients_own(client, farm, closed):
    inv_x, inv_y, _root = closed
    client.force_login(farm.users["client_x"])
    page = client.get("/proofs/documents/").content.decode()
    assert inv_x.statement_sha256 in page and inv_y.statement_sha256 not in page and inv_x.number in page
    assert ProofLeaf.objects.get(kind="audit_head").sha256 not in page
    leaf_y = ProofLeaf.objects.get(object_id=inv_y.pk, kind="statement")
    assert client.get(f"/proofs/documents/{leaf_y.pk}/proof.json").status_code == 404
    leaf_x = ProofLeaf.objects.get(object_id=inv_x.pk, kind="statement")
    download = client.get(f"/proofs/documents/{leaf_x.pk}/proof.json")
    assert download.status_code == 200 and json.loads(download.content)["leaf"]["sha256"] == inv_x.statement_sha256


def test_invoice_proof_download_scoped_and_waits_for_the_day(client, farm, closed):
    inv_x, inv_y, _root = closed
    client.force_login(farm.users["client_x"])
    response = client.get(f"/finance/invoices/{inv_x.pk}/proof.json")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert client.get(f"/finance/invoices/{inv_y.pk}/proof.json").status_code == 404
    late = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                          day=proofs.utc_today())  # fmt: skip
    waiting = client.get(f"/finance/invoices/{late.pk}/proof.json")
    assert waiting.status_code == 409 and 'data-code="proof_day_not_closed"' in waiting.content.decode()


def post_verify(client, data: bytes, proof: bytes | None, text: str = ""):
    body = {"file": SimpleUploadedFile("statement.csv", data), "proof_text": text}
    if proof is not None:
        body["proof"] = SimpleUploadedFile("proof.json", proof)
    return client.post("/proofs/verify/", body)


def test_verify_page_ok_and_which_check_failed(client, farm, closed):
    inv_x = closed[0]
    client.force_login(farm.users["client_x"])
    document = proofs.invoice_proof(user=farm.users["client_x"], invoice_id=inv_x.pk)
    data = statement_bytes(inv_x)

    ok = post_verify(client, data, json.dumps(document).encode()).content.decode()
    assert 'data-testid="verify-result" data-ok="1"' in ok and "OK: the document is verified" in ok

    changed = bytearray(data)
    changed[-3] ^= 0x04
    bad = post_verify(client, bytes(changed), None, text=json.dumps(document)).content.decode()
    assert 'data-ok="0" data-reason="document_mismatch"' in bad
    assert 'data-name="document" data-ok="0"' in bad and 'data-name="path" data-ok="1"' in bad

    nothing = post_verify(client, data, None)
    assert nothing.status_code == 400 and "Choose the proof file or paste the proof." in nothing.content.decode()
