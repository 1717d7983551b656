"""API routes of the intelligence layer's roi part: ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.roi_views import RoiExplainView

v1: list = [re_path(r"^explain/roi/?$", RoiExplainView.as_view(), name="explain-roi")]
seed: list = [re_path(r"^explain/roi/?$", RoiExplainView.as_view(), name="seed-explain-roi")]
