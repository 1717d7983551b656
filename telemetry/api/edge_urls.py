"""/api/edge/v1/: what edge collectors call, authenticated by their device token."""

from django.urls import path

from commands.api import edge_views as command_edge_views
from telemetry.api import edge_device_views, ingest_views

urlpatterns: list = [
    # Each part of the edge API adds its routes here.
    path("telemetry/ingest", ingest_views.TelemetryIngestView.as_view(), name="edge-telemetry-ingest"),
    path("events/safety/batch", ingest_views.SafetyEventBatchView.as_view(), name="edge-safety-events"),
    path("register", edge_device_views.RegisterView.as_view(), name="edge-register"),
    path("health", edge_device_views.HealthView.as_view(), name="edge-health"),
    path("inventory", edge_device_views.InventoryView.as_view(), name="edge-inventory"),
    path("commands/poll", command_edge_views.CommandPollView.as_view(), name="edge-commands-poll"),
    path("commands/<int:command_id>/ack", command_edge_views.CommandAckView.as_view(), name="edge-commands-ack"),
]
