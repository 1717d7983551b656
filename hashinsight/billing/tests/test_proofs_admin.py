"""Admin of proof roots and leaves: read-only, except a root's broadcast transaction (through the service: audited,
recorded once)."""

from __future__ import annotations

import pytest

from hashinsight.billing import proofs
from hashinsight.billing.models import ProofLeaf
from hashinsight.billing.tests.test_proofs_support import issued_invoice, yesterday
from hashinsight.events.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(farm):
    issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    return proofs.close_day(yesterday())


def test_root_admin_records_the_broadcast_txid_only(client, farm, root):
    client.force_login(farm.users["admin"])
    url = f"/admin/billing/proofroot/{root.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and root.root_sha256 in page.content.decode()
    assert client.get("/admin/billing/proofroot/add/").status_code == 403
    bad = client.post(url, {"broadcast_txid": "not a txid"})
    root.refresh_from_db()
    assert root.broadcast_txid == "" and bad.status_code == 302  # refused with a message, nothing saved
    txid = "9f" * 32
    assert client.post(url, {"broadcast_txid": txid, "root_sha256": "0" * 64}).status_code == 302
    before = root.root_sha256
    root.refresh_from_db()
    assert root.broadcast_txid == txid and root.root_sha256 == before  # read-only fields ignored
    assert AuditEvent.objects.filter(event_type="proof_root.broadcast").count() == 1
    assert client.post(f"/admin/billing/proofroot/{root.pk}/delete/", {"post": "yes"}).status_code == 403


def test_leaf_admin_is_read_only(client, farm, root):
    client.force_login(farm.users["owner"])
    leaf = ProofLeaf.objects.filter(kind="statement").first()
    assert client.get("/admin/billing/proofleaf/").status_code == 200
    url = f"/admin/billing/proofleaf/{leaf.pk}/change/"
    assert client.get(url).status_code == 200
    client.post(url, {"sha256": "0" * 64})
    leaf.refresh_from_db()
    assert leaf.sha256 != "0" * 64
