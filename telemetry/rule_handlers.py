"""Alert rules on the event spine: evaluated after each ingest batch and each 5-minute rollup, and by
a periodic job for the miners that went quiet (an offline miner sends nothing to react to).

Every handler is idempotent: evaluating twice raises nothing new (a repeat only counts onto the open
alert) and resolves nothing twice. Imported at startup by ``TelemetryConfig.ready``."""

from __future__ import annotations

from collections import defaultdict

from celery import shared_task
from django.utils import timezone

from hashinsight.events.jobs import job
from hashinsight.events.registry import handles
from sites.models import Site
from telemetry import rule_engine


@handles("telemetry.ingested", batch=True)
def evaluate_ingested(pairs) -> None:
    """The miners whose live rows a batch changed, per site, judged by the batch's own clock."""
    miners: dict[int, set[int]] = defaultdict(set)
    newest: dict[int, object] = {}
    for payload, _event in pairs:
        miners[payload.site_id].update(payload.miner_ids)
        newest[payload.site_id] = max(newest.get(payload.site_id, payload.newest_ts), payload.newest_ts)
    for site_id in sorted(miners):
        now = rule_engine.ingest_reference_time(newest[site_id])
        if now is None or not miners[site_id]:
            continue  # a replayed backlog: the live rows have moved on since
        rule_engine.evaluate_site(site_id=site_id, phase="ingest", now=now, miner_ids=miners[site_id])


@handles("telemetry.rolled_up")
def evaluate_rolled_up(payload, event) -> None:
    """New 5-minute windows: the duration rules of the sites they cover. A rollup catching up on old
    windows is skipped; the one that reaches the present evaluates."""
    if payload.layer != "history_5m" or payload.window_end < timezone.now() - rule_engine.STALE_EVENT:
        return
    for site_id in sorted(set(payload.site_ids)):
        rule_engine.evaluate_site(site_id=site_id, phase="rollup")


@handles("alert_rules.changed")
def rules_changed(payload, event) -> None:
    """Forget the cached rules (every process shares the cache) and resolve the open alerts of kinds
    the site just disabled."""
    rule_engine.invalidate_rules([payload.site_id])
    rule_engine.resolve_disabled(site_id=payload.site_id)


@job("alert_rules_offline")
def _evaluate_offline(ctx):
    result = {"sites": 0, "raised": 0, "resolved": 0}
    for site_id in Site.objects.order_by("pk").values_list("pk", flat=True):
        outcome = rule_engine.evaluate_site(site_id=site_id, phase="offline")
        ctx.count(processed=outcome.evaluated, succeeded=outcome.evaluated)
        result["sites"] += 1
        result["raised"] += outcome.raised
        result["resolved"] += outcome.resolved
    return result


@shared_task(name="telemetry.evaluate_offline", bind=True, acks_late=True, ignore_result=True)
def evaluate_offline(self, trigger: str = "schedule") -> dict:
    return _evaluate_offline(trigger=trigger, task_id=self.request.id or "")
