"""API routes of SLA: force-majeure windows and certificates (owner: sla). ``v1`` under /api/v1/."""

from django.urls import re_path

from hashinsight.billing.api.sla_views import (
    CertificateDetailView,
    CertificateDocumentView,
    CertificateErc721View,
    CertificateListView,
    ForceMajeureDetailView,
    ForceMajeureListView,
    PreviewView,
    PublicKeyView,
    VerifyView,
)

v1: list = [
    re_path(r"^force-majeure/?$", ForceMajeureListView.as_view(), name="force-majeure-list"),
    re_path(r"^force-majeure/(?P<pk>[0-9]+)/?$", ForceMajeureDetailView.as_view(), name="force-majeure-detail"),
    re_path(r"^sla-preview/?$", PreviewView.as_view(), name="sla-preview"),
    re_path(r"^sla-certificates/?$", CertificateListView.as_view(), name="sla-certificate-list"),
    re_path(r"^sla-certificates/public-key/?$", PublicKeyView.as_view(), name="sla-certificate-public-key"),
    re_path(r"^sla-certificates/verify/?$", VerifyView.as_view(), name="sla-certificate-verify"),
    re_path(r"^sla-certificates/(?P<pk>[0-9]+)/?$", CertificateDetailView.as_view(), name="sla-certificate-detail"),
    re_path(
        r"^sla-certificates/(?P<pk>[0-9]+)/document/?$",
        CertificateDocumentView.as_view(),
        name="sla-certificate-document",
    ),
    re_path(
        r"^sla-certificates/(?P<pk>[0-9]+)/erc721/?$", CertificateErc721View.as_view(), name="sla-certificate-erc721"
    ),
]
seed: list = []
