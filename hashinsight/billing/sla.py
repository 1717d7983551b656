"""SLA downtime classification (owner: sla): the Django side of ``hashinsight.billing.calc.sla``.

Downtime of a miner-day is split into operator-caused (site outage, operator curtailment beyond the contract's
allowance, failed maintenance, unexplained), client-caused (client-requested disable) and excluded (miner hardware
fault, force majeure, curtailment within the allowance); curtailment at the operator's request is also counted in
``curtailed_h`` for the curtailment credit. The precedence and the SLA uptime formula are written once, in the
pure module's docstring.

Where each cause comes from (all read with a few set-based queries per contract and period, never per miner-day):

- **force majeure**: ``ForceMajeureWindow`` rows of the site overlapping the period (site-wide).
- **client disable**: an effective (``ACKED``/``COMPLETED``/``PARTIAL``, target not failed) ``HASHING_DISABLE``,
  ``POWER_MODE`` low or ``CURTAIL`` proposed by a user whose role is CLIENT, or any such command whose dedupe key
  starts with ``client:``, ``hold:`` or ``billing-hold:`` (a hold for non-payment, ``hashinsight.billing.holds``,
  proposed on the client's account). A
  disable lasts from its acknowledgement until the miner's next effective ``HASHING_ENABLE`` (or ``POWER_MODE``
  normal/high), else to the period's end; a ``CURTAIL`` for its window.
- **operator curtailment**: effective ``CURTAIL`` commands proposed by anyone else (operators, AI, system rules),
  for their window; and ``CurtailmentEventMiner`` rows (``curtailed_at`` → ``restored_at``, or the event's end).
- **operator disable**: an effective ``HASHING_DISABLE`` by anyone else (operator-caused, named for the statement).
- **hardware fault**: ``SafetyEvent`` fan failure or hashboard/chain failure on the miner (open-ended: until the
  miner's run of down days ends). ``overheat_shutdown`` is operator-caused (cooling is the site's duty).
- **failed maintenance**: ``MINER_RESTART``, ``POOL_SET``, ``SET_FAN``, ``POWER_MODE`` or ``HASHING_ENABLE`` that
  FAILED, TIMED OUT or was ROLLED BACK (or whose target failed), from its dispatch, open-ended: followed by
  downtime, it explains the downtime until the miner is back up.
- **site outage**: a power-loss safety event (site-wide when it names no miner, open-ended to the end of its day),
  and every 5-minute window of ``SiteHistory5m`` in which fewer than half of the miners the site had reporting that
  day (``SiteDaily.miners_reporting``) were hashing, or a window missing on a day that has others. Whole-site
  curtailment or a client's mass disable look the same in telemetry; they rank above the outage and claim first.

Cost per contract and period: one ``Daily`` read of the down rows (uptime < 100) and one count per miner (to find
missing rows), the site's facts (cached across contracts with ``site_cache``), and four queries of commands,
curtailment events and safety events restricted to the client's miners at the site."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q

from hashinsight.billing.calc import sla as calc

EFFECTIVE = ("ACKED", "COMPLETED", "PARTIAL")
FAILED = ("FAILED", "TIMEOUT", "ROLLED_BACK")
CLIENT_MARKS = ("client:", "hold:", "billing-hold:")  # billing-hold: hashinsight.billing.holds
MAINTENANCE_TYPES = ("MINER_RESTART", "POOL_SET", "SET_FAN", "POWER_MODE", "HASHING_ENABLE")
OUTAGE_SHARE = 0.5  # a 5-minute window with fewer than half of the day's reporting miners hashing is an outage
LOOKBACK = timedelta(days=7)  # faults and failed commands this long before the period may still explain downtime
HISTORY = timedelta(days=366)  # how far back a disable still in force is looked for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayDowntime:
    operator_h: Decimal = Decimal("0")
    client_h: Decimal = Decimal("0")
    excluded_h: Decimal = Decimal("0")
    curtailed_h: Decimal = Decimal("0")  # at the operator's request (credit basis), whatever class it fell into
    reasons: tuple[str, ...] = ()  # codes: site_outage, curtailment, maintenance_failed, client_disable, ...
    command_ids: tuple[int, ...] = field(default=())


def _dt(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def contract_miner_ids(contract) -> list[int]:
    """The miners a contract covers: the ones it lists, else every miner of the client at the site."""
    from miners.models import Miner

    listed = list(contract.miners.values_list("pk", flat=True))
    if listed:
        return listed
    return list(
        Miner.objects.filter(site_id=contract.site_id, customer_id=contract.customer_id).values_list("pk", flat=True)
    )


def _down_hours(contract, miner_ids: list[int], start: date, end: date, uptime: dict | None) -> dict:
    """``{(miner, day): down hours > 0}`` for the period: from ``uptime`` when given, else two reads of ``Daily``."""
    from telemetry.models import Daily

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    covered = set(miner_ids)
    down: dict[tuple[int, date], Decimal] = {}
    if uptime is not None:
        memo: dict = {}  # few distinct uptime values; Decimal arithmetic per miner-day would dominate
        for m in miner_ids:
            for d in days:
                pct = uptime.get((m, d))
                if pct is not None and pct >= 100:
                    continue
                hours = memo.get(pct)
                if hours is None:
                    hours = memo[pct] = calc.down_hours(pct)
                if hours > 0:
                    down[(m, d)] = hours
        return down
    rows = Daily.objects.filter(
        site_id=contract.site_id, customer_id=contract.customer_id, day__gte=start, day__lte=end
    )
    for m, d, pct in rows.filter(uptime_pct__lt=100).values_list("miner_id", "day", "uptime_pct").iterator(5000):
        if m in covered and (hours := calc.down_hours(pct)) > 0:
            down[(m, d)] = hours
    counts = dict(rows.values("miner_id").annotate(n=Count("*")).values_list("miner_id", "n"))
    short = [m for m in miner_ids if counts.get(m, 0) < len(days)]
    present: set[tuple[int, date]] = set()
    for i in range(0, len(short), 2000):
        chunk = [m for m in short[i : i + 2000] if counts.get(m, 0)]
        if chunk:  # by the primary key (miner, day): a range per miner, not the client's whole month again
            present.update(
                Daily.objects.filter(miner_id__in=chunk, day__gte=start, day__lte=end).values_list("miner_id", "day")
            )
    for m in short:
        for d in days:
            if (m, d) not in present:
                down[(m, d)] = calc.DAY_H
    return down


def _site_causes(site_id: int, start: date, end: date) -> list[calc.Cause]:
    """Site-wide causes: force-majeure windows, power loss without a miner, outage windows seen in telemetry."""
    from hashinsight.billing.models import ForceMajeureWindow
    from telemetry.models import SafetyEvent, SiteDaily, SiteHistory5m

    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    causes = [
        calc.Cause(calc.FORCE_MAJEURE, max(s, lo - LOOKBACK), min(e, hi))
        for s, e in ForceMajeureWindow.objects.filter(site_id=site_id, start__lt=hi, end__gt=lo).values_list(
            "start", "end"
        )
    ]
    causes += [
        calc.Cause(calc.SITE_OUTAGE, ts)
        for ts in SafetyEvent.objects.filter(
            site_id=site_id, miner__isnull=True, kind="power_loss", ts__gte=lo, ts__lt=hi
        ).values_list("ts", flat=True)
    ]
    reference = dict(
        SiteDaily.objects.filter(site_id=site_id, day__gte=start, day__lte=end).values_list("day", "miners_reporting")
    )
    buckets = defaultdict(dict)
    for bucket, hashing in SiteHistory5m.objects.filter(site_id=site_id, bucket__gte=lo, bucket__lt=hi).values_list(
        "bucket", "miners_hashing"
    ):
        buckets[bucket.astimezone(UTC).date()][bucket.astimezone(UTC)] = hashing
    step = timedelta(minutes=5)
    for day, seen in buckets.items():
        ref = reference.get(day) or 0
        if ref <= 0:
            continue
        run_start = None
        t, day_end = _dt(day), _dt(day + timedelta(days=1))
        while t < day_end:
            hashing = seen.get(t)
            outage = hashing is None or hashing < OUTAGE_SHARE * ref
            if outage and run_start is None:
                run_start = t
            elif not outage and run_start is not None:
                causes.append(calc.Cause(calc.SITE_OUTAGE, run_start, t))
                run_start = None
            t += step
        if run_start is not None:
            causes.append(calc.Cause(calc.SITE_OUTAGE, run_start, day_end))
    return causes


def _is_client(command: dict, client_user_ids: set[int]) -> bool:
    return command["proposer_id"] in client_user_ids or command["dedupe_key"].startswith(CLIENT_MARKS)


def _window(params: dict) -> tuple[datetime, datetime] | None:
    try:
        start = datetime.fromisoformat(str(params["start"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(params["end"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        return None
    return start, end


def _command_causes(contract, miners: set[int], start: date, end: date) -> list[calc.Cause]:
    """Causes from the control plane for the client's miners at the site: three queries (commands, curtailments'
    targets, the other targets)."""
    from commands.models import Command, CommandTarget
    from hashinsight.accounts.roles import Role

    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    toggles = ("HASHING_DISABLE", "HASHING_ENABLE", "POWER_MODE")
    wanted = (
        Q(command_type__in=toggles, status__in=EFFECTIVE, created_at__gte=lo - HISTORY)
        | Q(command_type="CURTAIL", status__in=EFFECTIVE, created_at__gte=lo - timedelta(days=8))
        | Q(command_type__in=MAINTENANCE_TYPES, created_at__gte=lo - LOOKBACK)
    )
    commands = {
        c["id"]: c
        for c in Command.objects.filter(wanted, site_id=contract.site_id, created_at__lt=hi).values(
            "id",
            "command_type",
            "status",
            "params",
            "proposer_id",
            "proposer__role",
            "dedupe_key",
            "created_at",
            "dispatched_at",
            "finished_at",
        )
    }
    if not commands:
        return []
    client_users = {c["proposer_id"] for c in commands.values() if c["proposer__role"] == Role.CLIENT}
    for c in commands.values():  # worked out once per command, not per target
        c["client"] = _is_client(c, client_users)
        c["mode"] = str((c["params"] or {}).get("mode", "")).lower()
        c["window"] = _window(c["params"] or {}) if c["command_type"] == "CURTAIL" else None
    mine = CommandTarget.objects.filter(miner__customer_id=contract.customer_id, miner__site_id=contract.site_id)
    causes: list[calc.Cause] = []
    # Curtailments: their window is the command's, so the (many) targets need no time of their own.
    curtail_ids = [pk for pk, c in commands.items() if c["window"] and c["status"] in EFFECTIVE]
    for command_id, miner_id, result in (
        mine.filter(command_id__in=curtail_ids).values_list("command_id", "miner_id", "result_status").iterator(5000)
    ):
        if miner_id in miners and result != "failed":
            c = commands[command_id]
            kind = calc.CLIENT_DISABLE if c["client"] else calc.CURTAILMENT
            causes.append(calc.Cause(kind, *c["window"], miner_id, command_id))
    others = [pk for pk, c in commands.items() if c["command_type"] != "CURTAIL"]
    targets = mine.filter(command_id__in=others).values_list("command_id", "miner_id", "result_status", "acked_at")
    toggle_events: dict[int, list[tuple[datetime, str, int, bool]]] = defaultdict(list)  # miner → (t, on/off, ...)
    for command_id, miner_id, result, acked_at in targets.iterator(5000):
        if miner_id not in miners:
            continue
        c = commands[command_id]
        kind, status, client = c["command_type"], c["status"], c["client"]
        when = acked_at or c["finished_at"] or c["dispatched_at"] or c["created_at"]
        effective = status in EFFECTIVE and result != "failed"
        failed = status in FAILED or result == "failed"
        if kind == "HASHING_DISABLE" and effective:
            toggle_events[miner_id].append((when, "off", c["id"], client))
        elif kind == "POWER_MODE" and effective and c["mode"] == "low" and client:
            toggle_events[miner_id].append((when, "off", c["id"], True))
        elif kind in ("HASHING_ENABLE", "POWER_MODE") and effective:
            toggle_events[miner_id].append((when, "on", c["id"], client))
        if kind in MAINTENANCE_TYPES and failed and when >= lo - LOOKBACK:
            causes.append(calc.Cause(calc.MAINTENANCE_FAILED, c["dispatched_at"] or when, None, miner_id, c["id"]))
    for miner_id, events in toggle_events.items():
        events.sort(key=lambda e: (e[0], e[2]))
        for i, (t, state, command_id, client) in enumerate(events):
            if state != "off":
                continue
            until = next((e[0] for e in events[i + 1 :] if e[1] == "on"), hi)
            if until > max(t, lo):
                kind = calc.CLIENT_DISABLE if client else calc.OPERATOR_DISABLE
                causes.append(calc.Cause(kind, t, until, miner_id, command_id))
    return causes


def _telemetry_causes(contract, miners: set[int], start: date, end: date) -> list[calc.Cause]:
    """Curtailment events' miners and per-miner safety events (two queries)."""
    from intelligence.models import CurtailmentEventMiner
    from telemetry.models import SafetyEvent

    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    causes = []
    rows = CurtailmentEventMiner.objects.filter(
        event__site_id=contract.site_id, curtailed_at__isnull=False, curtailed_at__lt=hi, miner_id__isnull=False,
        miner__customer_id=contract.customer_id,
    ).filter(Q(restored_at__isnull=True) | Q(restored_at__gt=lo))  # fmt: skip
    for miner_id, cut, restored, ended, max_end in rows.values_list(
        "miner_id", "curtailed_at", "restored_at", "event__ended_at", "event__max_end_at"
    ):
        stop = restored or ended or max_end
        if miner_id in miners and stop and stop > cut:
            causes.append(calc.Cause(calc.CURTAILMENT, cut, stop, miner_id))
    kinds = {
        "fan_failure": calc.HARDWARE_FAULT,
        "hashboard_failure": calc.HARDWARE_FAULT,
        "overheat_shutdown": calc.OVERHEAT,
        "power_loss": calc.SITE_OUTAGE,
    }
    events = SafetyEvent.objects.filter(
        site_id=contract.site_id, miner__customer_id=contract.customer_id, ts__gte=lo - LOOKBACK, ts__lt=hi
    ).values_list("miner_id", "kind", "ts")
    for miner_id, kind, ts in events:
        if miner_id in miners and kind in kinds:
            causes.append(calc.Cause(kinds[kind], ts, None, miner_id))
    return causes


def _lookback_down(contract, causes: list[calc.Cause], start: date) -> dict:
    """Down hours of the days before the period for miners with open-ended causes that began then (one query):
    a fault on the 28th of last month still explains the downtime of the 1st if the miner never came back up."""
    from telemetry.models import Daily

    first: dict[int, date] = {}
    for c in causes:
        if c.end is None and c.miner_id is not None and (d := c.start.astimezone(UTC).date()) < start:
            first[c.miner_id] = min(first.get(c.miner_id, d), d)
    if not first:
        return {}
    lo = min(first.values())
    seen = {
        (m, d): calc.down_hours(p)
        for m, d, p in Daily.objects.filter(miner_id__in=list(first), day__gte=lo, day__lt=start).values_list(
            "miner_id", "day", "uptime_pct"
        )
    }
    out = {}
    for m, d0 in first.items():
        d = d0
        while d < start:
            out[(m, d)] = seen.get((m, d), calc.DAY_H)
            d += timedelta(days=1)
    return out


def classify_period(
    contract, start: date, end: date, *, uptime: dict | None = None, site_cache: dict | None = None
) -> dict:
    """``{(miner_id, day): DayDowntime}`` for the contract's miners between ``start`` and ``end`` (inclusive), only
    for miner-days with downtime or curtailment. ``uptime`` is ``{(miner_id, day): uptime_pct}`` when the caller
    already read the daily layer (miner-days missing from it were not reported: 24 h down). ``site_cache``: a dict
    the caller keeps across the contracts of one run, so a site's own facts are read once.

    The period is clipped to the contract's term; the curtailment allowance is consumed from the first day of the
    month (or the contract's start), so a period starting mid-month sees what the days before it used."""
    start = max(start, contract.start_date)
    if contract.end_date:
        end = min(end, contract.end_date)
    if end < start:
        return {}
    month_start = max(start.replace(day=1), contract.start_date)
    miner_ids = contract_miner_ids(contract)
    if not miner_ids:
        return {}
    miners = set(miner_ids)
    down = _down_hours(contract, miner_ids, month_start, end, uptime if month_start == start else None)
    if uptime is not None and month_start < start:
        down.update(_down_hours(contract, miner_ids, start, end, uptime))
    key = (contract.site_id, month_start, end)
    if site_cache is not None and key in site_cache:
        site = site_cache[key]
    else:
        site = _site_causes(contract.site_id, month_start, end)
        if site_cache is not None:
            site_cache[key] = site
    causes = (
        site
        + _command_causes(contract, miners, month_start, end)
        + _telemetry_causes(contract, miners, month_start, end)
    )
    context = _lookback_down(contract, causes, month_start)
    splits = calc.classify({**context, **down}, causes, allowance_h=contract.curtailment_allowance_hours)
    return {
        (m, d): DayDowntime(
            operator_h=s.operator_h,
            client_h=s.client_h,
            excluded_h=s.excluded_h,
            curtailed_h=s.curtailed_h,
            reasons=s.reasons,
            command_ids=s.refs,
        )
        for (m, d), s in splits.items()
        if start <= d <= end
    }


def period_summary(contract, start: date, end: date, downtime: dict | None = None, *, miner_count: int | None = None):
    """``{"period_h", "operator_h", "client_h", "excluded_h", "curtailed_h", "sla_uptime_pct", "credit_pct"}`` of a
    contract's period (``downtime``: ``classify_period``'s answer when already computed)."""
    start = max(start, contract.start_date)
    if contract.end_date:
        end = min(end, contract.end_date)
    if downtime is None:
        downtime = classify_period(contract, start, end)
    if miner_count is None:
        miner_count = len(contract_miner_ids(contract))
    days = max((end - start).days + 1, 0)
    period_h = Decimal(miner_count * days * 24)
    sums = {k: sum((getattr(v, k) for v in downtime.values()), Decimal("0")) for k in
            ("operator_h", "client_h", "excluded_h", "curtailed_h")}  # fmt: skip
    uptime = calc.sla_uptime_pct(period_h, sums["operator_h"])
    return {"period_h": period_h, **sums, "sla_uptime_pct": uptime, "credit_pct": sla_credit_pct(contract, uptime)}


def sla_credit_pct(contract, sla_uptime_pct: Decimal) -> Decimal:
    """The credit (in % of the month's charge) the contract's schedule gives for this SLA uptime; 0 when met.
    A schedule that does not parse gives no credit rather than a failed invoicing run (the CRM form checks it)."""
    try:
        return calc.credit_pct(contract.sla_credit_schedule, sla_uptime_pct, contract.sla_uptime_target_pct)
    except ValueError as exc:
        log.warning("contract %s: SLA credit schedule refused (%s); no SLA credit", contract.pk, exc)
        return Decimal("0")
