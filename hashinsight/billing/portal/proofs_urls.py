"""Portal routes of proofs: verify page, roots (owner: proofs; namespace ``portal``)."""

from django.urls import path
from django.views.generic import RedirectView

from hashinsight.portal.views import proofs as proof_pages

urlpatterns: list = [
    path("proofs/", proof_pages.proof_root_list, name="proof-root-list"),
    path("proofs/documents/", proof_pages.proof_document_list, name="proof-document-list"),
    path("proofs/documents/<int:pk>/proof.json", proof_pages.leaf_proof_download, name="proof-leaf-download"),
    path("proofs/verify/", proof_pages.proof_verify, name="proof-verify"),
    path("finance/invoices/<int:pk>/proof.json", proof_pages.invoice_proof_download, name="proof-invoice-download"),
    # The address until the move under /finance/: links already e-mailed keep working. The redirect names nothing
    # (any id, any user); the new address checks the scope (hidden = 404).
    path(
        "invoices/<int:pk>/proof.json",
        RedirectView.as_view(pattern_name="portal:proof-invoice-download", permanent=True, query_string=True),
        name="proof-invoice-download-old",
    ),
    path(
        "sla-certificates/<int:pk>/proof.json",
        proof_pages.certificate_proof_download,
        name="proof-certificate-download",
    ),
]
