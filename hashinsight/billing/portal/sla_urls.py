"""Portal routes of SLA: force majeure and certificates (owner: sla; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import sla

urlpatterns: list = [
    path("sla/", sla.sla_history, name="sla-history"),
    path("sla/certificates/<int:pk>/download/", sla.certificate_document, name="sla-certificate-download"),
    path("sla/verify/", sla.certificate_verify, name="sla-certificate-verify"),
    path("sla/force-majeure/", sla.force_majeure_list, name="force-majeure-list"),
    path("sla/force-majeure/new/", sla.force_majeure_create, name="force-majeure-create"),
    path("sla/force-majeure/<int:pk>/delete/", sla.force_majeure_delete, name="force-majeure-delete"),
]
