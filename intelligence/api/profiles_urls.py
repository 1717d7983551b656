"""API routes of the intelligence layer's profiles part: response profiles and demand-response programmes (owner:
profiles). ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api import profiles_views as views

v1: list = [
    re_path(r"^curtailment/profiles/?$", views.ProfileListView.as_view(), name="curtailment-profile-list"),
    re_path(r"^curtailment/profiles/(?P<pk>[0-9]{1,18})/?$", views.ProfileDetailView.as_view(),
            name="curtailment-profile-detail"),
    re_path(r"^curtailment/profiles/(?P<pk>[0-9]{1,18})/default/?$", views.ProfileDefaultView.as_view(),
            name="curtailment-profile-default"),
    re_path(r"^curtailment/programs/?$", views.ProgramListView.as_view(), name="curtailment-program-list"),
    re_path(r"^curtailment/programs/(?P<pk>[0-9]{1,18})/?$", views.ProgramDetailView.as_view(),
            name="curtailment-program-detail"),
    re_path(r"^curtailment/programs/(?P<pk>[0-9]{1,18})/rotate/?$", views.ProgramRotateView.as_view(),
            name="curtailment-program-rotate"),
]  # fmt: skip
seed: list = []
