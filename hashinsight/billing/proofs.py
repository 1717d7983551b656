"""Verifiable statements (owner: proofs): leaves recorded when something is issued, closed into a daily Merkle tree."""

from __future__ import annotations

from django.utils import timezone

from hashinsight.billing.models import ProofLeaf


def record_leaf(*, kind: str, object_id: int, sha256: str, customer_id: int | None, site_id: int | None) -> ProofLeaf:
    """Called inside the issuing transaction: the leaf joins today's (UTC) tree when the day is closed."""
    leaf, _ = ProofLeaf.objects.get_or_create(
        kind=kind,
        object_id=object_id,
        sha256=sha256,
        defaults={"day": timezone.now().date(), "customer_id": customer_id, "site_id": site_id},
    )
    return leaf
