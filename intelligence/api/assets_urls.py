"""API routes of the intelligence layer's assets part: per-asset power and energy forecasts (owner: assets/health).
``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.assets_views import AssetPredictView

v1: list = [
    re_path(r"^assets/(?P<asset_id>[^/]{1,40})/predict/?$", AssetPredictView.as_view(), name="asset-predict"),
]
seed: list = []
