"""/api/edge/v1/: what edge collectors call, authenticated by their device token."""

from django.urls import path  # noqa: F401 (used as routes are added)

urlpatterns: list = [
    # Each part of the edge API adds its routes here.
]
