"""API routes of the intelligence layer's responder part: the real-time responder (owner: responder). ``v1`` under
/api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.responder_views import DecisionListView, ResponderView

v1: list = [
    re_path(r"^sites/(?P<pk>[0-9]{1,18})/responder/?$", ResponderView.as_view(), name="site-responder"),
    re_path(
        r"^sites/(?P<pk>[0-9]{1,18})/responder/decisions/?$",
        DecisionListView.as_view(),
        name="site-responder-decisions",
    ),
]
seed: list = []
