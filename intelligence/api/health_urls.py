"""API routes of the intelligence layer's health part: miner health predictions (owner: assets/health). ``v1`` under
/api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.health_views import HealthPredictView, HealthSummaryView, MinerHealthViewSet

v1: list = [
    re_path(r"^miner-health/?$", MinerHealthViewSet.as_view({"get": "list"}), name="minerhealth-list"),
    re_path(r"^miner-health/summary/?$", HealthSummaryView.as_view(), name="minerhealth-summary"),
    re_path(
        r"^miner-health/(?P<miner_id>[0-9]{1,18})/?$",
        MinerHealthViewSet.as_view({"get": "retrieve"}),
        name="minerhealth-detail",
    ),
    re_path(r"^health-predict/?$", HealthPredictView.as_view(), name="health-predict"),
]
seed: list = []
