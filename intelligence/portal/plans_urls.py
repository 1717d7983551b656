"""Portal routes of the intelligence layer's plans part (namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import curtailment_planner as pages

urlpatterns: list = [
    path("curtailment/plans/", pages.plan_list, name="curtailment-plan-list"),
    path("curtailment/planner/", pages.planner, name="curtailment-planner"),
    path("curtailment/plans/<int:pk>/", pages.plan_detail, name="curtailment-plan-detail"),
    path("curtailment/plans/<int:pk>/send/", pages.plan_send, name="curtailment-plan-send"),
]
