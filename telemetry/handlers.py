"""Alert events → WebSocket groups, a batch at a time: one channel-layer message per group per batch,
carrying that group's alerts in order (the consumer sends one frame per alert). A burst thus costs a
few group sends per batch instead of one per alert and group. Pushing twice (a redelivery) is
harmless: browsers key frames by event id."""

from __future__ import annotations

from collections import defaultdict

from hashinsight.core.realtime import group_send_many
from hashinsight.events.registry import handles
from miners.models import Miner
from telemetry.groups import groups_for_alert
from telemetry.models import LiveStatus
from telemetry.replay import alert_frame


@handles("alert.raised", "alert.updated", "alert.resolved", batch=True)
def push_alert(pairs) -> None:
    by_group: dict[str, list[dict]] = defaultdict(list)
    for payload, event in sorted(pairs, key=lambda pair: (pair[1].created_at, str(pair[1].pk))):
        frame = alert_frame(event.pk, event.event_type, payload.model_dump(mode="json"))
        for group in groups_for_alert(payload):
            by_group[group].append(frame)
    group_send_many([(group, {"type": "alert.batch", "frames": frames}) for group, frames in by_group.items()])


@handles("miner.updated", batch=True)
def resync_live_owner(pairs) -> None:
    """A moved or re-assigned miner's live row takes its new site and client (the row's copies serve the
    indexes; access itself is decided on the miner, see ``telemetry_selectors._live_scoped``)."""
    moved = {p.miner_id for p, _ in pairs if p.site_id != p.old_site_id or p.customer_id != p.old_customer_id}
    for miner_id, site_id, customer_id in Miner.objects.filter(pk__in=moved).values_list(
        "pk", "site_id", "customer_id"
    ):
        LiveStatus.objects.filter(miner_id=miner_id).update(site_id=site_id, customer_id=customer_id)
