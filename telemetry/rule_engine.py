"""The alert rules, run against the database: load a site's rules (cached) and a batch of miners'
states in a few queries, ask ``telemetry.rules.evaluate``, then raise what holds and resolve what
cleared — through ``telemetry.services`` only, so every change is an outbox event the WebSocket follows.

Query cost per batch is constant: live rows joined with their miner and model (1), the 5-minute
windows the durations need (1), the raw samples of miners that report offline (1, only if any), the
open alerts of the batch (1), then the bulk raise (lock, insert, update, two event inserts) and one
resolve per rule kind that cleared. Whole-site evaluations (rollup, offline job) walk the site in
chunks of ``CHUNK`` miners.

Rules are per site and kind; a kind a site never saved runs with ``rules.default_rules()``. The API
and the portal write the five defaults on a site's first read (``site_rules``), so they show up in
admin from then on; the engine never writes rules."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from telemetry import rules as R
from telemetry import services
from telemetry.models import Alert, AlertRule, History5m, LiveStatus, RawSample

logger = logging.getLogger(__name__)

CHUNK = 5000
RULES_CACHE_S = 60
# An ingest event older than this is a replayed backlog or a queue far behind: the live rows have
# moved on, and the next fresh batch (or the rollup and offline jobs) judge the miners instead.
STALE_EVENT = timedelta(minutes=15)

CLEARED_NOTES = {
    R.CHIP_TEMP_ABOVE: "Condition cleared: chip temperature at or below {threshold:g} °C.",
    R.HASHRATE_BELOW_PCT: "Condition cleared: hashrate back at or above {threshold:g} % of nominal.",
    R.OFFLINE_FOR: "Condition cleared: the miner is reporting again.",
    R.POWER_DEVIATION_PCT: "Condition cleared: power within {threshold:g} % of nominal.",
    R.REJECT_RATE_ABOVE_PCT: "Condition cleared: reject rate at or below {threshold:g} %.",
}
NOT_MONITORED_NOTE = "Condition cleared: the miner is in maintenance or retired and is not monitored."
RULE_DISABLED_NOTE = "Condition cleared: the rule was disabled for this site."


def stale_after_s() -> float:
    """How long a miner may stay silent before it counts as offline (as the live pages count it)."""
    return float(settings.TELEMETRY_LIVE_OFFLINE_AFTER_S)


# ---------------------------------------------------------------------------------------------------
# Rules, cached per site (a short TTL, and deleted whenever a site's rules change).


def _cache_key(site_id: int) -> str:
    return f"alert_rules:v1:{site_id}"


def _merge(stored: dict[str, R.Rule]) -> list[R.Rule]:
    return [stored.get(default.kind, default) for default in R.default_rules()]


def rules_for_sites(site_ids) -> dict[int, list[R.Rule]]:
    """site id → its five effective rules; one query for all the sites not in the cache."""
    keys = {site_id: _cache_key(site_id) for site_id in site_ids}
    try:
        cached = cache.get_many(list(keys.values()))
    except Exception:  # the cache is down: read the database
        cached = {}
    found = {site_id: [R.Rule(*t) for t in cached[key]] for site_id, key in keys.items() if key in cached}
    missing = [site_id for site_id in keys if site_id not in found]
    if missing:
        stored: dict[int, dict[str, R.Rule]] = defaultdict(dict)
        rows = AlertRule.objects.filter(site_id__in=missing).values_list(
            "site_id", "kind", "threshold", "duration_minutes", "severity", "enabled"
        )
        for site_id, *fields in rows:
            stored[site_id][fields[0]] = R.Rule(*fields)
        for site_id in missing:
            found[site_id] = _merge(stored[site_id])
        try:
            cache.set_many({keys[s]: [astuple(r) for r in found[s]] for s in missing}, RULES_CACHE_S)
        except Exception:
            logger.warning("cache unavailable; alert rules not cached")
    return found


def invalidate_rules(site_ids) -> None:
    try:
        cache.delete_many([_cache_key(site_id) for site_id in site_ids])
    except Exception:
        logger.warning("cache unavailable; alert rules cache not cleared")


# ---------------------------------------------------------------------------------------------------
# Loading a batch.

LIVE_FIELDS = (
    "miner_id", "last_seen", "status", "hashrate_ghs", "temp_chip_max_c", "power_w", "miner__status",
    "miner__customer_id", "miner__zone_id", "miner__model__hashrate_ths", "miner__model__power_w",
)  # fmt: skip
WINDOW_FIELDS = (
    "miner_id", "bucket", "avg_hashrate_ths", "avg_temp_chip_max_c", "avg_power_w", "accepted_shares",
    "rejected_shares",
)  # fmt: skip


def _float(value) -> float | None:
    return None if value is None else float(value)


def _offline_since(miner_ids: list[int], *, now: datetime, lookback_minutes: int) -> dict[int, datetime]:
    """For miners whose last sample said offline: since when, read from ``raw`` — their last sample
    that was not offline, or (none in the lookback) their first sample in it. One query."""
    if not miner_ids:
        return {}
    start = now - timedelta(minutes=lookback_minutes)
    rows = (
        RawSample.objects.filter(miner_id__in=miner_ids, ts__gte=start, ts__lte=now)
        .values("miner_id")
        .annotate(last_ok=Max("ts", filter=~Q(status="offline")), first=Min("ts"))
        .values_list("miner_id", "last_ok", "first")
    )
    return {miner_id: last_ok or first for miner_id, last_ok, first in rows}


def _states(rows: list[dict], *, now: datetime, offline_rule: R.Rule | None, peers: dict | None):
    offline_ids = [r["miner_id"] for r in rows if r["status"] == "offline"]
    since = {}
    if offline_rule is not None and offline_ids:
        since = _offline_since(offline_ids, now=now, lookback_minutes=offline_rule.duration_minutes + 10)
    return [
        R.MinerState(
            miner_id=r["miner_id"], nominal_hashrate_ths=_float(r["miner__model__hashrate_ths"]),
            nominal_power_w=_float(r["miner__model__power_w"]), last_seen=r["last_seen"], status=r["status"],
            hashrate_ghs=r["hashrate_ghs"], temp_chip_max_c=r["temp_chip_max_c"], power_w=r["power_w"],
            miner_status=r["miner__status"], offline_since=since.get(r["miner_id"]),
            peers_last_seen=peers.get(r["miner__zone_id"]) if peers else None,
        )
        for r in rows
    ]  # fmt: skip


def _windows(miner_ids: list[int], active: list[R.Rule], *, now: datetime) -> list[R.Window]:
    depth = max((max(r.windows, 1) if r.kind == R.REJECT_RATE_ABOVE_PCT else r.windows) for r in active)
    if not depth or not miner_ids:
        return []
    end = R.floor_window(now)
    rows = History5m.objects.filter(
        miner_id__in=miner_ids, bucket__gte=end - depth * R.WINDOW, bucket__lt=end
    ).values_list(*WINDOW_FIELDS)
    return [R.Window(*row) for row in rows]


# ---------------------------------------------------------------------------------------------------
# Evaluating.


@dataclass
class Outcome:
    evaluated: int = 0
    raised: int = 0  # alerts raised or counted onto
    resolved: int = 0

    def add(self, other: Outcome) -> None:
        self.evaluated += other.evaluated
        self.raised += other.raised
        self.resolved += other.resolved


def evaluate_site(*, site_id: int, phase: str, now: datetime | None = None, miner_ids=None) -> Outcome:
    """Run the site's rules of ``phase`` over ``miner_ids`` (ingest) or over the whole site."""
    now = now or timezone.now()
    active = R.rules_for_phase(rules_for_sites([site_id])[site_id], phase)
    total = Outcome()
    if not active:
        return total
    offline_rule = next((r for r in active if r.kind == R.OFFLINE_FOR), None)
    base = LiveStatus.objects.filter(miner__site_id=site_id)
    peers = None
    if phase == "offline":
        cutoff = now - timedelta(seconds=stale_after_s())
        open_offline = Alert.objects.filter(site_id=site_id, alert_type=R.OFFLINE_FOR).exclude(
            status=Alert.Status.RESOLVED
        )
        base = base.filter(
            Q(status="offline") | Q(last_seen__lt=cutoff) | Q(miner_id__in=open_offline.values("miner_id"))
        )
        peers = dict(
            LiveStatus.objects.filter(miner__site_id=site_id)
            .values("miner__zone_id")
            .annotate(latest=Max("last_seen"))
            .values_list("miner__zone_id", "latest")
        )
    if miner_ids is not None:
        ids = sorted(set(miner_ids))
        chunks = (base.filter(miner_id__in=ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK))
        for qs in chunks:
            total.add(_evaluate_rows(site_id, list(qs.values(*LIVE_FIELDS)), active, phase, now, offline_rule, peers))
        return total
    after = 0
    while True:
        rows = list(base.filter(miner_id__gt=after).order_by("miner_id").values(*LIVE_FIELDS)[:CHUNK])
        if not rows:
            return total
        total.add(_evaluate_rows(site_id, rows, active, phase, now, offline_rule, peers))
        after = rows[-1]["miner_id"]


@transaction.atomic
def _evaluate_rows(site_id, rows, active, phase, now, offline_rule, peers) -> Outcome:
    if not rows:
        return Outcome()
    ids = [r["miner_id"] for r in rows]
    states = _states(rows, now=now, offline_rule=offline_rule, peers=peers)
    windows = _windows(ids, active, now=now)
    findings = R.evaluate(active, states, windows, now=now, phase=phase, stale_after_s=stale_after_s())
    customer_of = {r["miner_id"]: r["miner__customer_id"] for r in rows}
    # Every unresolved alert of these miners and kinds, locked up front in primary-key order: the raise
    # and the resolves below then take no new locks on existing rows, so two evaluations of the same
    # miners (an ingest and a rollup) wait for each other instead of deadlocking.
    open_rows = list(
        Alert.objects.select_for_update()
        .filter(site_id=site_id, miner_id__in=ids, alert_type__in=[r.kind for r in active])
        .exclude(status=Alert.Status.RESOLVED)
        .order_by("pk")
        .values_list("pk", "miner_id", "alert_type")
    )
    to_raise = [
        services.AlertToRaise(
            site_id=site_id, alert_type=f.kind, severity=f.severity, message=f.message, miner_id=f.miner_id,
            customer_id=customer_of[f.miner_id], evidence=f.evidence,
        )
        for f in findings
        if f.holds
    ]  # fmt: skip
    services.alerts_raise(to_raise)
    cleared = {(f.miner_id, f.kind): f.reason for f in findings if not f.holds}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pk, miner_id, kind in open_rows:
        reason = cleared.get((miner_id, kind))
        if reason is not None:
            groups[(kind, reason)].append(pk)
    thresholds = {r.kind: r.threshold for r in active}
    resolved = 0
    for (kind, reason), alert_ids in sorted(groups.items()):
        cleared_note = CLEARED_NOTES[kind].format(threshold=thresholds[kind])
        note = NOT_MONITORED_NOTE if reason == "not_monitored" else cleared_note
        resolved += len(services.alerts_resolve(alert_ids=alert_ids, actor=None, note=note))
    return Outcome(evaluated=len(rows), raised=len(to_raise), resolved=resolved)


def resolve_disabled(*, site_id: int) -> int:
    """Resolve the open alerts of rule kinds the site has disabled (its managers turned them off)."""
    disabled = [r.kind for r in rules_for_sites([site_id])[site_id] if not r.enabled]
    if not disabled:
        return 0
    ids = list(
        Alert.objects.filter(site_id=site_id, alert_type__in=disabled)
        .exclude(status=Alert.Status.RESOLVED)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    return len(services.alerts_resolve(alert_ids=ids, actor=None, note=RULE_DISABLED_NOTE))


def ingest_reference_time(newest_ts: datetime, now: datetime | None = None) -> datetime | None:
    """The clock an ingest batch is judged by: its newest sample (never in the future), or None when
    the batch is a backlog too old to say anything about the present."""
    now = now or timezone.now()
    if newest_ts < now - STALE_EVENT:
        return None
    return min(newest_ts, now)
