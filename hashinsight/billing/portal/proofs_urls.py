"""Portal routes of proofs: verify page, roots (owner: proofs; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import proofs as proof_pages

urlpatterns: list = [
    path("proofs/", proof_pages.proof_root_list, name="proof-root-list"),
    path("proofs/documents/", proof_pages.proof_document_list, name="proof-document-list"),
    path("proofs/documents/<int:pk>/proof.json", proof_pages.leaf_proof_download, name="proof-leaf-download"),
    path("proofs/verify/", proof_pages.proof_verify, name="proof-verify"),
    path("invoices/<int:pk>/proof.json", proof_pages.invoice_proof_download, name="proof-invoice-download"),
    path(
        "sla-certificates/<int:pk>/proof.json",
        proof_pages.certificate_proof_download,
        name="proof-certificate-download",
    ),
]
