"""API routes of the intelligence layer's anomaly part: ``v1`` under /api/v1/ (no seed path)."""

from django.urls import re_path

from intelligence.api.anomaly_views import DetectAnomaliesView

v1 = [
    re_path(
        r"^assets/(?P<asset_id>[^/]{1,40})/detect_anomalies/?$",
        DetectAnomaliesView.as_view(),
        name="asset-detect-anomalies",
    ),
]
seed: list = []
