"""Portal routes of the intelligence layer's responder part (the real-time responder; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import responder as pages

urlpatterns: list = [
    path("curtailment/responder/", pages.responder_sites, name="responder-sites"),
    path("curtailment/responder/<int:site_id>/", pages.responder_detail, name="responder-detail"),
    path("curtailment/responder/<int:site_id>/enable/", pages.responder_toggle, {"action": "enable"},
         name="responder-enable"),
    path("curtailment/responder/<int:site_id>/disable/", pages.responder_toggle, {"action": "disable"},
         name="responder-disable"),
]  # fmt: skip
