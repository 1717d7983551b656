"""A certificate verifies the way a statement does: its downloaded file against the inclusion proof of its day's
Merkle tree (``hashinsight.billing.proofs``), and a changed byte fails."""

from __future__ import annotations

from datetime import date, timedelta
from unittest import mock

import pytest
from django.db import transaction

from hashinsight.billing import certificates, proofs
from hashinsight.billing.models import ProofLeaf
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db(transaction=True)  # close_day is a durable transaction


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "sla.json")


def test_certificate_file_against_its_inclusion_proof(farm):
    contract = HostingContractFactory(customer=farm.client_x, site=farm.site_a, number="HC-P")
    with transaction.atomic():
        cert = certificates.issue_certificate(issued_invoice(contract, month=date(2026, 2, 1), number="INV-P"))
    leaf = ProofLeaf.objects.get(kind="sla_certificate", object_id=cert.pk)
    tomorrow = leaf.day + timedelta(days=1)
    with mock.patch.object(proofs, "utc_today", return_value=tomorrow):
        proofs.close_day(leaf.day)
    proof = proofs.certificate_proof(user=farm.users["client_x"], certificate_id=cert.pk)
    data = certificates.document_bytes(cert.document)
    lookup = proofs.stored_root_lookup
    assert proofs.verify_document(data, proof, stored_root=lookup).ok
    changed = data.replace(b'"met":true', b'"met":false')
    assert changed != data
    result = proofs.verify_document(changed, proof, stored_root=lookup)
    assert not result.ok
    # And the signature check says the same about the changed file.
    import json

    assert certificates.verify_certificate(json.loads(changed)).reason == "bad_signature"
