"""Command events → WebSocket groups, a batch at a time (the portal's commands pages update live).

Frames go to the command's site group and the ALL group only, never to a hosting client's group: commands
belong to the CURTAILMENT module, which clients do not have. The consumer checks again per frame (the
user's role must read CURTAILMENT and its scope must hold the site). One channel-layer message per group
per batch, like the alert frames; a redelivered event pushes again, which is harmless (browsers key frames
by event id and re-read the row)."""

from __future__ import annotations

from collections import defaultdict

from commands.verification import verify_ingested
from hashinsight.core.realtime import group_send_many
from hashinsight.events.registry import handles
from telemetry.groups import ALL, site_group


def command_frame(event_id, event_type: str, command: dict) -> dict:
    """The one shape of a command WebSocket frame (static/js/commands-live.js reads it)."""
    return {"type": "command", "id": str(event_id), "event_type": event_type, "command": command}


def groups_for_command(payload) -> list[str]:
    return [ALL, site_group(payload.site_id)]


@handles("command.created", "command.updated", batch=True)
def push_command(pairs) -> None:
    by_group: dict[str, list[dict]] = defaultdict(list)
    for payload, event in sorted(pairs, key=lambda pair: (pair[1].created_at, str(pair[1].pk))):
        frame = command_frame(event.pk, event.event_type, payload.model_dump(mode="json"))
        for group in groups_for_command(payload):
            by_group[group].append(frame)
    group_send_many([(group, {"type": "command.batch", "frames": frames}) for group, frames in by_group.items()])


# Telemetry just stored for a site: decide its waiting commands' targets on those miners at once, instead of at
# the next 5 s run (the figure: propose → COMPLETED with verification, p95 < 2 × the collector's poll interval).
handles("telemetry.ingested", batch=True)(verify_ingested)
