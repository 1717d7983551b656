"""API routes of the intelligence layer's plans part: ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.plans_views import PlanDetailView, PlanListView, PlanSendView, SeedOptimizeView

v1: list = [
    re_path(r"^curtailment/plans/?$", PlanListView.as_view(), name="curtailment-plan-list"),
    re_path(r"^curtailment/plans/(?P<pk>[0-9]{1,18})/?$", PlanDetailView.as_view(), name="curtailment-plan-detail"),
    re_path(r"^curtailment/plans/(?P<pk>[0-9]{1,18})/send/?$", PlanSendView.as_view(), name="curtailment-plan-send"),
]
seed: list = [
    re_path(r"^optimize/curtailment/?$", SeedOptimizeView.as_view(), name="seed-optimize-curtailment"),
]
