"""API routes of proofs: daily Merkle roots, inclusion proofs, verification (owner: proofs)."""

from django.urls import re_path

from hashinsight.billing.api.proofs_views import (
    BroadcastView,
    CertificateProofView,
    InvoiceProofView,
    OpReturnView,
    RootDetailView,
    RootListView,
    VerifyView,
)

DAY = r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"

v1: list = [
    re_path(r"^proof-roots/?$", RootListView.as_view(), name="proof-root-list"),
    re_path(rf"^proof-roots/{DAY}/?$", RootDetailView.as_view(), name="proof-root-detail"),
    re_path(rf"^proof-roots/{DAY}/op-return/?$", OpReturnView.as_view(), name="proof-root-op-return"),
    re_path(rf"^proof-roots/{DAY}/broadcast/?$", BroadcastView.as_view(), name="proof-root-broadcast"),
    re_path(r"^invoices/(?P<pk>[0-9]{1,18})/proof/?$", InvoiceProofView.as_view(), name="invoice-proof"),
    re_path(
        r"^sla-certificates/(?P<pk>[0-9]{1,18})/proof/?$", CertificateProofView.as_view(), name="sla-certificate-proof"
    ),
    re_path(r"^proofs/verify/?$", VerifyView.as_view(), name="proof-verify"),
]
seed: list = []
