"""API routes of the intelligence layer's events part: curtailment events and the demand-response webhook (owner: events
backend). ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.events_views import (
    DRWebhookView,
    EventDetailView,
    EventEndView,
    EventListView,
    EventPreviewView,
)

v1: list = [
    re_path(r"^curtailment/events/?$", EventListView.as_view(), name="curtailment-event-list"),
    re_path(r"^curtailment/events/preview/?$", EventPreviewView.as_view(), name="curtailment-event-preview"),
    re_path(r"^curtailment/events/(?P<pk>[0-9]{1,18})/?$", EventDetailView.as_view(), name="curtailment-event-detail"),
    re_path(r"^curtailment/events/(?P<pk>[0-9]{1,18})/end/?$", EventEndView.as_view(), name="curtailment-event-end"),
    re_path(r"^curtailment/dr/(?P<slug>[-a-zA-Z0-9_]+)/?$", DRWebhookView.as_view(), name="curtailment-dr-webhook"),
]
seed: list = []
