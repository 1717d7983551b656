"""Alert events → WebSocket groups. Pushing twice (a redelivery) is harmless: browsers key by event id."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from hashinsight.events.registry import handles
from telemetry.groups import groups_for_alert


@handles("alert.raised", "alert.updated", "alert.resolved")
def push_alert(payload, event) -> None:
    layer = get_channel_layer()
    message = {
        "type": "alert.message",
        "event": {"id": str(event.pk), "event_type": event.event_type, "alert": payload.model_dump(mode="json")},
    }
    for group in groups_for_alert(payload):
        async_to_sync(layer.group_send)(group, message)
