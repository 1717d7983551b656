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
from telemetry.models import Alert, LiveStatus
from telemetry.replay import alert_frame
from telemetry.services import alerts_resolve


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
    indexes; access itself is decided on the miner, see ``telemetry_selectors._live_scoped``), and the
    alerts left open on it at a site it left are resolved: that site's rules no longer look at it."""
    moved = {p.miner_id for p, _ in pairs if p.site_id != p.old_site_id or p.customer_id != p.old_customer_id}
    site_of = {}
    for miner_id, site_id, customer_id in Miner.objects.filter(pk__in=moved).values_list(
        "pk", "site_id", "customer_id"
    ):
        LiveStatus.objects.filter(miner_id=miner_id).update(site_id=site_id, customer_id=customer_id)
        site_of[miner_id] = site_id
    open_alerts = Alert.objects.filter(miner_id__in=site_of).exclude(status=Alert.Status.RESOLVED)
    left_behind = [pk for pk, miner_id, site_id in open_alerts.values_list("pk", "miner_id", "site_id")
                   if site_id != site_of[miner_id]]  # fmt: skip
    if left_behind:
        alerts_resolve(alert_ids=left_behind, note="Condition cleared: the miner moved to another site.")
