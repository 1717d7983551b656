"""Curtailment events (issue 9, part 4c): what operators run every day — a scope, a mode, a window bounded by a
minimum and a maximum duration, carried out by ``CURTAIL`` commands through the control plane, confirmed from
telemetry, restored in staggered batches and settled per miner for billing.

Selectors (reads, scoped): ``event_list``, ``event_get``, ``event_miners``, ``event_body``. Services (writes):
``event_preview`` (reads only, but a first step of starting: FULL), ``event_start``, ``event_end``, ``event_tick``
(the Beat job's). The demand-response webhook (``intelligence.dr_webhook``) calls ``event_start``/``event_end``.

Who may do what: events belong to the CURTAILMENT module (READ to read, FULL to start and end) and to a site: a
site the user does not see is a 404, one seen only through a read-only grant a 403 ``site_read_only``
(``sites.selectors``, the same rules as plans and commands). Hosting clients have no CURTAILMENT access (the role
matrix), so they never see events; their share of an event is billed through ``CurtailmentEventMiner.customer``.

Choosing miners (``kw_reduction``): every active miner in scope that draws something, ordered by hosting-contract
priority (the curtailment plans' rule: own miners 0, clients 1, ``client_priority`` overrides; higher is
curtailed later; ``"firm"`` is never curtailed by a normal event), then least efficient first (J/TH from the live
power and hashrate, the model's nameplate when either is unknown), ties by id; taken until the shed reaches the
target. ``full_stop`` takes every active miner in scope. Hard mode sheds a miner's whole draw; soft mode
(``kw_reduction`` only) throttles it to half its nameplate (the control plane's soft floor) and sheds the rest.

Emergency priority changes three things: contract priority is ignored (pure least-efficient order, firm clients
included: a grid emergency outranks hosting contracts), the commands carry the control plane's highest priority
(9, normal events 5), and the event may be ended before its minimum duration. Approval still follows the risk
engine: an emergency is not a licence to skip approvers.

Restore order: most efficient miners first (they earn most per kW). Batch ``b`` (``restore_batch_size`` miners)
has its own ``CURTAIL`` command whose window ends at ``max_end_at + b × restore_interval_seconds``, so the edge
restores the batches one interval apart at the natural end (no inrush, no pool reconnect storm). A CURTAIL cannot be
ended early by the control plane (``commands.risk.inverse``: it ends with its window), so ending early cancels the
commands not yet dispatched and, batch by batch one interval apart, proposes ``HASHING_ENABLE`` for stopped miners
(``POWER_MODE normal`` for throttled ones) through the tick job.

Telemetry (the live layer, ``telemetry.LiveStatus``, a reading newer than the acknowledgement): a stopped miner is
confirmed when its power is at most 10 % of its draw before and its hashrate at most max(0.5 TH/s, 2 % of before)
(the control plane's own thresholds, ``commands.effects``); a throttled one when its power is within its target
(+ 5 % + 50 W) and its hashrate at most 90 % of before. A confirmed miner has drifted when both are above those
thresholds again (noise between them changes nothing), while the event still holds it.

Settlement, per miner and per curtailed stretch (from acknowledgement to restore, or to drift): energy avoided =
shed kW × hours (kWh, 3 places), revenue forgone = TH/s given up × hashprice × hours / 24 (USD, 2 places, half up;
TH/s given up is the whole hashrate when stopped and ``ths × shed / kW`` when throttled, hashrate assumed to follow
power). The hashprice is the one the preview used at the start (``preview.hashprice_usd_per_th_day``), so a bill
does not move with the market after the fact. The event's totals are the sums of its miners' rounded figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from hashinsight.accounts.roles import Access, Module, Role, has_access, role_of
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import audit_append
from intelligence.models import (
    CurtailmentEvent,
    CurtailmentEventMiner,
    CurtailmentMode,
    CurtailmentPriority,
    DriftAction,
    ResponseProfile,
    ScopeKind,
)

MODULE = Module.CURTAILMENT
E = CurtailmentEvent.Status
M = CurtailmentEventMiner.State
OPEN = (E.SCHEDULED, E.ACTIVE, E.RESTORING)
CLOSED = (E.RESTORING, E.ENDED, E.CANCELLED, E.FAILED)
HELD = (M.CURTAILED, M.CONFIRMED)  # the event holds these miners down
FIRM = "firm"  # in client_priority: never curtailed by a normal event
MAX_MINERS = 10_000  # the control plane's target limit per command, and what one event holds
MAX_WINDOW = timedelta(days=7)  # the control plane's CURTAIL window and proposal horizon
MAX_INTERVAL_S = 3600
PAST_GRACE = timedelta(minutes=5)  # a start a little in the past (clock skew, a slow request) is "now"
CMD_PRIORITY = {CurtailmentPriority.NORMAL: 5, CurtailmentPriority.EMERGENCY: 9}
SOFT_FLOOR = Decimal("0.5")  # commands.services.SOFT_FLOOR_OF_NAMEPLATE
# Confirmation and drift thresholds (see the module docstring).
STOP_POWER_FRACTION = Decimal("0.10")
ZERO_THS = Decimal("0.5")
ZERO_FRACTION = Decimal("0.02")
TARGET_TOLERANCE = Decimal("0.05")
TARGET_SLACK_W = Decimal(50)
THROTTLED_THS_FRACTION = Decimal("0.90")
KW, KWH, USD, HP = Decimal("0.001"), Decimal("0.001"), Decimal("0.01"), Decimal("0.000001")
DRIFT_ALERT = "curtailment_drift"


def _field_default(name: str):
    return ResponseProfile._meta.get_field(name).default


def _bad(code: str, field: str, message: str, *, status: int = 400, **details) -> DomainError:
    return DomainError(code, f"{field}: {message}", status=status, details={"field": field, **details})


def _not_found() -> DomainError:
    return DomainError("not_found", "Not found.", status=404)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dec(value) -> str | None:
    return None if value is None else str(value)


def _audit(event_type: str, event: CurtailmentEvent, *, actor=None, actor_kind: str | None = None, payload=None):
    audit_append(
        event_type=event_type, actor_type=actor_kind or ("user" if actor is not None else "system"),
        actor_id=getattr(actor, "pk", None), reference=f"curtailment_event:{event.pk}",
        payload={"event_id": event.pk, "status": event.status, **(payload or {})}, site=event.site_id,
    )  # fmt: skip


def _publish(event: CurtailmentEvent, previous: str | None) -> None:
    """``curtailment_event.changed`` on the outbox, for whatever reacts (pages over WebSocket, billing). The
    contract lives in the shared ``hashinsight.events.contracts``; until it is registered there the event is not
    published (the audit chain records every change either way)."""
    from hashinsight.events import outbox
    from hashinsight.events.contracts import REGISTRY

    if ("curtailment_event.changed", 1) not in REGISTRY:
        return
    outbox.publish(
        "curtailment_event.changed", aggregate=f"curtailment_event:{event.pk}",
        payload={"event_id": event.pk, "site_id": event.site_id, "status": event.status,
                 "previous_status": previous, "source": event.source, "priority": event.priority},
    )  # fmt: skip


def _move(event: CurtailmentEvent, to: str, *, actor=None, actor_kind=None, payload=None, fields=()) -> None:
    previous = event.status
    event.status = to
    event.save(update_fields=["status", "updated_at", *fields])
    _audit(f"curtailment_event.{to}", event, actor=actor, actor_kind=actor_kind,
           payload={"from": previous, "to": to, **(payload or {})})  # fmt: skip
    _publish(event, previous)


# ---------------------------------------------------------------------------------------------------------
# Selectors


def event_list(*, user) -> QuerySet[CurtailmentEvent]:
    """The events of the sites ``user`` sees, newest first (none without READ on CURTAILMENT). One query; the
    queryset has ``site`` selected, so a list page may filter (site, status, source, priority) and sort it."""
    from sites.selectors import site_list

    if not has_access(user, MODULE, Access.READ):
        return CurtailmentEvent.objects.none()
    return CurtailmentEvent.objects.filter(site__in=site_list(user=user)).select_related("site", "created_by")


def event_get(*, user, event_id: int) -> CurtailmentEvent:
    """One event ``user`` may see, else ``DomainError("not_found", status=404)`` (hidden and missing alike)."""
    event = event_list(user=user).filter(pk=event_id).first()
    if event is None:
        raise _not_found()
    return event


def event_miners(event: CurtailmentEvent) -> QuerySet[CurtailmentEventMiner]:
    """The event's miners (batch, serial order) with their hosting client, for a detail table."""
    return event.miners.select_related("customer").order_by("batch", "serial")


def _site_for(*, user, site_id, write: bool = True):
    """The site, if ``user`` sees it (else 404); with ``write``, FULL on CURTAILMENT and a manage grant (else 403)."""
    from sites.selectors import require_site_manageable, site_list

    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise _bad("invalid", "site", "is a site id (a number)")
    site = site_list(user=user).filter(pk=site_id).first() if has_access(user, MODULE, Access.READ) else None
    if site is None:
        raise _not_found()
    if write:
        if not has_access(user, MODULE, Access.FULL):
            raise DomainError("permission_denied", "Your role may not start or end curtailment events.", status=403)
        require_site_manageable(user=user, site_id=site.pk)
    return site


# ---------------------------------------------------------------------------------------------------------
# Scope


def _ints(ids, kind: str) -> list[int]:
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise _bad("invalid_scope", "scope", f"{kind} ids are numbers", kind=kind)
    return list(dict.fromkeys(ids))


def resolve_scope(site, scope) -> tuple[dict, QuerySet]:
    """The normalised scope and the queryset of the site's active miners in it. A malformed scope, or one naming
    zones, racks, clients or miners that are not on the site, is a 400 ``invalid_scope`` naming them."""
    from miners.models import Miner
    from sites.models import Zone

    if scope is None or scope == {}:
        scope = {"kind": ScopeKind.SITE, "ids": []}
    if not isinstance(scope, dict):
        raise _bad("invalid_scope", "scope", 'is {"kind": "site|zone|rack|customer|miners", "ids": [...]}')
    unknown = set(scope) - {"kind", "ids"}
    if unknown:
        raise _bad("invalid_scope", "scope", f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    kind = scope.get("kind", ScopeKind.SITE)
    if kind not in ScopeKind.values:
        raise _bad("invalid_scope", "scope", f"kind is one of {', '.join(ScopeKind.values)}", kind=str(kind)[:40])
    ids = scope.get("ids") or []
    if not isinstance(ids, list) or len(ids) > MAX_MINERS:
        raise _bad("invalid_scope", "scope", f"ids is a list of at most {MAX_MINERS:,} items", kind=kind)
    active = Miner.objects.filter(site=site, status=Miner.Status.ACTIVE)
    if kind == ScopeKind.SITE:
        if any(i != site.pk for i in ids):
            raise _bad("invalid_scope", "scope", "a site scope names no ids but the site's own", kind=kind)
        return {"kind": kind, "ids": []}, active
    if not ids:
        raise _bad("invalid_scope", "scope", f"a {kind} scope names at least one id", kind=kind)
    if kind == ScopeKind.ZONE:
        ids = _ints(ids, kind)
        found = set(Zone.objects.filter(site=site, pk__in=ids).values_list("pk", flat=True))
        qs = active.filter(zone_id__in=ids)
    elif kind == ScopeKind.CUSTOMER:
        ids = _ints(ids, kind)
        found = set(Miner.objects.filter(site=site, customer_id__in=ids).values_list("customer_id", flat=True))
        qs = active.filter(customer_id__in=ids)
    elif kind == ScopeKind.RACK:
        if not all(isinstance(i, str) and i.strip() for i in ids):
            raise _bad("invalid_scope", "scope", "rack ids are rack names (text)", kind=kind)
        ids = list(dict.fromkeys(i.strip() for i in ids))
        found = set(Miner.objects.filter(site=site, rack__in=ids).values_list("rack", flat=True))
        qs = active.filter(rack__in=ids)
    else:  # miners: serials or ids
        if not all(isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool)) for i in ids):
            raise _bad("invalid_scope", "scope", "miner ids are serials (text) or miner ids (numbers)", kind=kind)
        ids = list(dict.fromkeys(ids))
        serials = [i for i in ids if isinstance(i, str)]
        pks = [i for i in ids if isinstance(i, int)]
        rows = Miner.objects.filter(site=site).filter(Q(serial__in=serials) | Q(pk__in=pks)).values_list("pk", "serial")
        found = {x for row in rows for x in row}
        qs = active.filter(Q(serial__in=serials) | Q(pk__in=pks))
    missing = [i for i in ids if i not in found]
    if missing:
        raise _bad(
            "invalid_scope", "scope", f"not on this site: {', '.join(map(str, missing[:20]))}", kind=kind,
            unknown=missing[:100],
        )  # fmt: skip
    return {"kind": kind, "ids": ids}, qs


# ---------------------------------------------------------------------------------------------------------
# Candidates and the choice


@dataclass
class Candidate:
    id: int
    serial: str
    model: str
    customer_id: int | None
    zone_id: int
    rack: str
    kw: Decimal  # drawing now (live), else nameplate
    ths: Decimal
    nominal_kw: Decimal
    j_per_th: Decimal | None
    source: str  # "live" | "nominal"
    priority: int | None = 0  # None: firm
    shed_kw: Decimal = Decimal(0)
    power_target_w: int | None = None
    batch: int = 0

    @property
    def ths_forgone(self) -> Decimal:
        if self.power_target_w is None or not self.kw:
            return self.ths
        return self.ths * self.shed_kw / self.kw

    def as_dict(self) -> dict:
        return {
            "id": self.id, "serial": self.serial, "model": self.model, "customer": self.customer_id,
            "zone": self.zone_id, "rack": self.rack, "kw": str(self.kw), "ths": str(self.ths),
            "j_per_th": None if self.j_per_th is None else str(self.j_per_th.quantize(Decimal("0.1"))),
            "shed_kw": str(self.shed_kw), "power_target_w": self.power_target_w, "batch": self.batch,
            "source": self.source,
        }  # fmt: skip


def _candidates(qs, priorities: dict) -> list[Candidate]:
    """The miners with their draw, hashrate and efficiency: two queries (miners with models, live rows)."""
    from telemetry.models import LiveStatus

    # A miner another open event holds is that event's: two events would fight over its restore.
    busy = CurtailmentEventMiner.objects.filter(
        event__status__in=OPEN, state__in=(M.PENDING, M.CURTAILED, M.CONFIRMED, M.DRIFTED), miner_id__isnull=False
    ).values("miner_id")
    rows = list(
        qs.exclude(pk__in=busy)
        .order_by("pk")
        .values_list(
            "pk", "serial", "model__name", "customer_id", "zone_id", "rack", "model__power_w", "model__hashrate_ths"
        )[: MAX_MINERS + 1]
    )
    if len(rows) > MAX_MINERS:
        raise _bad("too_many_miners", "scope", f"an event holds at most {MAX_MINERS:,} miners")
    live = {
        m: (w, ghs)
        for m, w, ghs in LiveStatus.objects.filter(miner_id__in=[r[0] for r in rows]).values_list(
            "miner_id", "power_w", "hashrate_ghs"
        )
    }
    out = []
    for pk, serial, model, customer_id, zone_id, rack, power_w, ths in rows:
        nominal_kw = (Decimal(power_w) / 1000).quantize(KW)
        w, ghs = live.get(pk, (None, None))
        kw = nominal_kw if w is None else (Decimal(str(max(w, 0.0))) / 1000).quantize(KW, ROUND_HALF_UP)
        hashrate = Decimal(ths) if ghs is None else (Decimal(str(max(ghs, 0.0))) / 1000).quantize(KW, ROUND_HALF_UP)
        if w is not None and ghs is not None and w > 0 and ghs > 0:
            j = Decimal(str(w)) / (Decimal(str(ghs)) / 1000)
        else:
            j = Decimal(power_w) / Decimal(ths) if ths else None
        out.append(
            Candidate(
                id=pk, serial=serial, model=model, customer_id=customer_id, zone_id=zone_id, rack=rack, kw=kw,
                ths=hashrate, nominal_kw=nominal_kw, j_per_th=j, source="nominal" if w is None else "live",
                priority=_contract_priority(priorities, customer_id),
            )
        )  # fmt: skip
    return out


def _contract_priority(priorities: dict, customer_id: int | None) -> int | None:
    from intelligence import curtailment_plans as plans

    key = plans.OWN if customer_id is None else str(customer_id)
    if priorities.get(key) == FIRM:
        return None
    return plans._priority({k: v for k, v in priorities.items() if v != FIRM}, customer_id)


def _with_contract_priorities(site_id: int, requested: dict) -> dict:
    """The request's ``client_priority`` completed from the hosting contracts: a client the request does not name
    takes its active contract's terms at this site today (``curtailment_priority``, or ``"firm"`` for a firm
    contract); a client with no active contract keeps the default. One query."""
    from sites.models import HostingContract

    today = timezone.now().date()
    contracts = (
        HostingContract.objects.filter(site_id=site_id, status=HostingContract.Status.ACTIVE, start_date__lte=today)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .order_by("start_date")
        .values_list("customer_id", "curtailment_priority", "firm")
    )
    out = dict(requested)
    for customer_id, priority, firm in contracts:
        out.setdefault(str(customer_id), FIRM if firm else priority)
    return out


def _clean_client_priority(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        (isinstance(v, str) and v == FIRM) or (isinstance(v, int) and not isinstance(v, bool)) for v in value.values()
    ):
        raise _bad("invalid", "client_priority", '{"own" or client id: a whole number or "firm"}')
    return {str(k): v for k, v in value.items()}


def _least_efficient_first(c: Candidate):
    # Unknown efficiency last: only what is known to be wasteful goes first.
    return (1, Decimal(0), c.id) if c.j_per_th is None else (0, -c.j_per_th, c.id)


def _most_efficient_first(c: Candidate):
    return (1, Decimal(0), c.id) if c.j_per_th is None else (0, c.j_per_th, c.id)


def choose(cands: list[Candidate], *, mode: str, target_kw: Decimal | None, priority: str, soft: bool):
    """The miners to curtail and what each sheds; sets ``shed_kw`` and ``power_target_w`` on them. Returns
    (chosen, available_kw). ``cannot_shed`` when the target is above what the scope can shed."""
    for c in cands:
        if soft:
            floor = (c.nominal_kw * SOFT_FLOOR).quantize(KW, ROUND_HALF_UP)
            c.shed_kw = max(Decimal(0), c.kw - floor)
            c.power_target_w = int((floor * 1000).to_integral_value())
        else:
            c.shed_kw, c.power_target_w = c.kw, None
    if mode == CurtailmentMode.FULL_STOP:
        # Every miner in scope that draws something: one already at 0 W has nothing to stop.
        chosen = [c for c in cands if c.shed_kw > 0]
        return chosen, sum((c.shed_kw for c in chosen), Decimal(0))
    emergency = priority == CurtailmentPriority.EMERGENCY
    eligible = [c for c in cands if c.shed_kw > 0 and (emergency or c.priority is not None)]
    if emergency:
        eligible.sort(key=_least_efficient_first)
    else:
        eligible.sort(key=lambda c: (c.priority, *_least_efficient_first(c)))
    available = sum((c.shed_kw for c in eligible), Decimal(0))
    if target_kw > available:
        raise DomainError(
            "cannot_shed",
            f"target_kw: the scope can shed at most {available.quantize(KW)} kW, not {target_kw} kW.",
            details={"field": "target_kw", "available_kw": str(available.quantize(KW)), "target_kw": str(target_kw)},
        )
    chosen, total = [], Decimal(0)
    for c in eligible:
        if total >= target_kw:
            break
        chosen.append(c)
        total += c.shed_kw
    return chosen, available


def _batches(chosen: list[Candidate], size: int) -> int:
    for i, c in enumerate(sorted(chosen, key=_most_efficient_first)):
        c.batch = i // size
    return math.ceil(len(chosen) / size) if chosen else 0


# ---------------------------------------------------------------------------------------------------------
# Arguments


def _choice(value, field: str, choices) -> str:
    if value not in choices:
        raise _bad("invalid_choice", field, f"is one of {', '.join(choices)}")
    return value


def _kw_value(value, field: str = "target_kw") -> Decimal:
    if isinstance(value, bool):
        raise _bad("invalid", field, "is a number of kW")
    try:
        kw = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _bad("invalid", field, "is a number of kW") from None
    if not kw.is_finite() or not Decimal(0) < kw <= Decimal(1_000_000):
        raise _bad("out_of_range", field, "is above 0 and at most 1,000,000 kW")
    return kw.quantize(KW, ROUND_HALF_UP)


def _whole(value, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("invalid", field, "is a whole number")
    if not low <= value <= high:
        raise _bad("out_of_range", field, f"is from {low} to {high}")
    return value


def _moment(value, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad("invalid", field, "is an ISO 8601 date and time") from None
    else:
        raise _bad("invalid", field, "is an ISO 8601 date and time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-12:00 is past the last representable UTC moment
        raise _bad("out_of_range", field, "is a date and time within the years 1–9999 UTC") from None


@dataclass
class Request:
    site: object
    mode: str
    scope: dict
    target_kw: Decimal | None
    priority: str
    soft: bool
    client_priority: dict
    profile: ResponseProfile | None
    qs: QuerySet


def _request(*, actor, site_id, mode, scope, target_kw, priority, profile_id, soft, client_priority) -> Request:
    site = _site_for(user=actor, site_id=site_id, write=True)
    profile = None
    if profile_id is not None:
        if isinstance(profile_id, bool) or not isinstance(profile_id, int):
            raise _bad("invalid", "profile", "is a response profile id (a number)")
        profile = ResponseProfile.objects.filter(site=site, pk=profile_id).first()
        if profile is None:
            raise _not_found()
        mode = mode if mode is not None else profile.mode
        target_kw = target_kw if target_kw is not None else profile.target_kw
        priority = priority if priority is not None else profile.priority
        scope = scope if scope is not None else profile.scope
    mode = _choice(mode if mode is not None else CurtailmentMode.FULL_STOP, "mode", CurtailmentMode.values)
    priority = _choice(priority or CurtailmentPriority.NORMAL, "priority", CurtailmentPriority.values)
    if not isinstance(soft, bool):
        raise _bad("invalid", "soft", "is true or false")
    if mode == CurtailmentMode.KW_REDUCTION:
        if target_kw is None:
            raise _bad("required", "target_kw", "a kW reduction needs the kW to shed")
        target_kw = _kw_value(target_kw)
    else:
        if soft:
            raise _bad("invalid", "soft", "a full stop stops miners; throttling is for a kW reduction")
        target_kw = None
    clean_scope, qs = resolve_scope(site, scope)
    return Request(site, mode, clean_scope, target_kw, priority, soft, _clean_client_priority(client_priority),
                   profile, qs)  # fmt: skip


def _plan(req: Request, batch_size: int, interval_s: int) -> tuple[dict, list[Candidate]]:
    from intelligence import curtailment_plans as plans

    cands = _candidates(req.qs, _with_contract_priorities(req.site.pk, req.client_priority))
    if not cands:
        raise _bad("empty_scope", "scope", "no active miner stands in this scope")
    chosen, available = choose(cands, mode=req.mode, target_kw=req.target_kw, priority=req.priority, soft=req.soft)
    if not chosen or not any(c.shed_kw > 0 for c in chosen):
        raise _bad("cannot_shed", "scope", "no miner in this scope draws power now", available_kw="0.000")
    batches = _batches(chosen, batch_size)
    value, source = plans.market_hashprice()
    hashprice = Decimal(str(value)).quantize(HP, ROUND_HALF_UP)
    shed = sum((c.shed_kw for c in chosen), Decimal(0))
    ths = sum((c.ths_forgone for c in chosen), Decimal(0))
    ordered = sorted(chosen, key=lambda c: (c.batch, *_most_efficient_first(c)))
    body = {
        "site": req.site.pk,
        "mode": req.mode,
        "priority": req.priority,
        "scope": req.scope,
        "target_kw": _dec(req.target_kw),
        "command_mode": "soft" if req.soft else "hard",
        "client_priority": req.client_priority,
        "profile": None if req.profile is None else req.profile.pk,
        "miners": [c.as_dict() for c in ordered],
        "miner_count": len(chosen),
        "shed_kw": str(shed.quantize(KW)),
        "ths": str(ths.quantize(KW, ROUND_HALF_UP)),
        "energy_kwh_per_hour": str(shed.quantize(KWH)),
        "revenue_forgone_usd_per_hour": str((ths * hashprice / 24).quantize(USD, ROUND_HALF_UP)),
        "hashprice_usd_per_th_day": str(hashprice),
        "hashprice_source": source,
        "restore": {
            "batch_size": batch_size,
            "interval_seconds": interval_s,
            "batches": batches,
            "total_seconds": max(0, batches - 1) * interval_s,
        },
        "available_kw": str(available.quantize(KW)),
    }
    return body, ordered


def _restore_args(profile, batch_size, interval_s) -> tuple[int, int]:
    batch_size = batch_size if batch_size is not None else (
        profile.restore_batch_size if profile else _field_default("restore_batch_size"))  # fmt: skip
    interval_s = interval_s if interval_s is not None else (
        profile.restore_interval_seconds if profile else _field_default("restore_interval_seconds"))  # fmt: skip
    return (_whole(batch_size, "restore_batch_size", 1, MAX_MINERS),
            _whole(interval_s, "restore_interval_seconds", 0, MAX_INTERVAL_S))  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Preview and start


def event_preview(
    *, actor, site_id: int, mode: str | None = None, scope: dict | None = None, target_kw=None,
    priority: str | None = None, profile_id: int | None = None, soft: bool = False,
    client_priority: dict | None = None, restore_batch_size: int | None = None,
    restore_interval_seconds: int | None = None,
) -> dict:  # fmt: skip
    """What an event would do, without doing it (no row written, no command proposed). See ``event_start``
    for the arguments; ``profile_id`` fills what is left None from a response profile of the site.

    Returns a JSON-ready dict (money and kW as decimal strings)::

        {"site", "mode", "priority", "scope", "target_kw", "command_mode": "hard"|"soft", "client_priority",
         "profile", "miners": [{"id", "serial", "model", "customer", "zone", "rack", "kw", "ths", "j_per_th",
                     "shed_kw", "power_target_w", "batch", "source": "live"|"nominal"}],   # restore order
         "miner_count", "shed_kw", "ths", "energy_kwh_per_hour", "revenue_forgone_usd_per_hour",
         "hashprice_usd_per_th_day", "hashprice_source",
         "restore": {"batch_size", "interval_seconds", "batches", "total_seconds"}, "available_kw"}

    Refusals (``DomainError``): 404 ``not_found`` (site hidden or missing, profile not of the site); 403
    ``permission_denied`` / ``site_read_only`` (needs FULL and a manage grant: previewing is the first step of
    starting); 400 ``invalid_scope`` / ``invalid`` / ``invalid_choice`` / ``out_of_range`` / ``required`` with
    ``details.field``; 400 ``empty_scope`` (no active miner in scope); 400 ``cannot_shed`` when ``target_kw`` is
    more than the scope can shed (``details.available_kw``)."""
    req = _request(actor=actor, site_id=site_id, mode=mode, scope=scope, target_kw=target_kw, priority=priority,
                   profile_id=profile_id, soft=soft, client_priority=client_priority)  # fmt: skip
    batch_size, interval_s = _restore_args(req.profile, restore_batch_size, restore_interval_seconds)
    body, _chosen = _plan(req, batch_size, interval_s)
    return body


def batch_key(event_id: int, batch: int) -> str:
    return f"curtailment-event:{event_id}:b{batch}"


def recurtail_key(event_id: int, miner_id: int, drift: int) -> str:
    return f"curtailment-event:{event_id}:m{miner_id}:d{drift}"


def restore_key(event_id: int, batch: int, kind: str) -> str:
    return f"curtailment-event:{event_id}:r{batch}:{kind}"


def batch_end(event: CurtailmentEvent, batch: int) -> datetime:
    """Where batch ``batch``'s CURTAIL window ends: the natural, staggered restore."""
    return event.max_end_at + timedelta(seconds=batch * event.restore_interval_seconds)


def _curtail_params(event: CurtailmentEvent, rows, start: datetime, end: datetime) -> dict:
    soft = event.preview.get("command_mode") == "soft"
    params = {"start": _iso(start), "end": _iso(end), "mode": "soft" if soft else "hard"}
    if soft:
        params["kw"] = str(sum((r.kw_before - Decimal(r.power_target_w) / 1000 for r in rows), Decimal(0)).quantize(KW))
    else:
        # Every target stops: 100 % of the targets' draw, whatever the control plane reads it as at proposal.
        params["percent"] = 100
    return params


def _proposer_kind(event: CurtailmentEvent, *, system: bool = False) -> str:
    from commands.models import ProposerKind

    return ProposerKind.SYSTEM if system or event.source != CurtailmentEvent.Source.MANUAL else ProposerKind.USER


def event_start(
    *, actor, site_id: int, mode: str | None = None, scope: dict | None = None, target_kw=None,
    priority: str | None = None, profile_id: int | None = None, soft: bool = False,
    client_priority: dict | None = None, starts_at=None, min_duration_minutes: int | None = None,
    max_duration_minutes: int | None = None, restore_batch_size: int | None = None,
    restore_interval_seconds: int | None = None, drift_action: str | None = None, reason: str = "",
    source: str = CurtailmentEvent.Source.MANUAL, program=None, external_id: str = "",
) -> CurtailmentEvent:  # fmt: skip
    """Start (schedule) an event: the preview's miners become ``CurtailmentEventMiner`` rows and one ``CURTAIL``
    command per restore batch is proposed through ``commands.services.command_propose`` (window ``starts_at`` →
    ``max_end_at + batch × interval``, dedupe key per event and batch), linked in ``event.commands``. The event
    stays SCHEDULED until its commands are acknowledged (``event_tick``). All or nothing: a refusal of one command
    rolls everything back.

    Arguments: ``mode`` ``kw_reduction`` (needs ``target_kw`` > 0) or ``full_stop``; ``scope``
    ``{"kind": "site"|"zone"|"rack"|"customer"|"miners", "ids": [...]}`` (zone and customer: ids; rack: names;
    miners: serials or ids; ``{}`` or kind site: the whole site); ``priority`` ``normal`` | ``emergency``;
    ``soft`` (kw_reduction only) throttles to half the nameplate instead of stopping; ``client_priority`` as in
    curtailment plans (``{"own": p, "<customer id>": p}``, higher curtailed later, ``"firm"`` never in a normal
    event); ``starts_at`` default now (at most 7 days ahead); durations, batch, interval and drift action default
    to the profile's, else the ResponseProfile field defaults. Returns the event.

    Refusals: those of ``event_preview``, plus 400 ``out_of_range`` (durations, batch, interval),
    ``window_too_long`` (the last batch's window above the control plane's 7 days), and the control plane's own
    (``unsafe_command`` 400, ...)."""
    from commands.services import command_propose

    req = _request(actor=actor, site_id=site_id, mode=mode, scope=scope, target_kw=target_kw, priority=priority,
                   profile_id=profile_id, soft=soft, client_priority=client_priority)  # fmt: skip
    profile = req.profile
    batch_size, interval_s = _restore_args(profile, restore_batch_size, restore_interval_seconds)
    max_minutes = max_duration_minutes if max_duration_minutes is not None else (
        profile.max_duration_minutes if profile else _field_default("max_duration_minutes"))  # fmt: skip
    max_minutes = _whole(max_minutes, "max_duration_minutes", 1, int(MAX_WINDOW.total_seconds() // 60))
    min_minutes = min_duration_minutes if min_duration_minutes is not None else min(
        profile.min_duration_minutes if profile else _field_default("min_duration_minutes"), max_minutes)  # fmt: skip
    min_minutes = _whole(min_minutes, "min_duration_minutes", 0, max_minutes)
    drift = drift_action if drift_action is not None else (
        profile.drift_action if profile else _field_default("drift_action"))  # fmt: skip
    drift = _choice(drift, "drift_action", DriftAction.values)
    if not isinstance(reason, str) or len(reason) > 300:
        raise _bad("invalid", "reason", "is text of at most 300 characters")
    now = timezone.now()
    start = now if starts_at is None else _moment(starts_at, "starts_at")
    if start < now - PAST_GRACE:
        raise _bad("out_of_range", "starts_at", "is now or later")
    start = max(start, now)
    if start >= now + MAX_WINDOW:
        raise _bad("out_of_range", "starts_at", "is within 7 days from now (the control plane's horizon)")
    preview, chosen = _plan(req, batch_size, interval_s)
    batches = preview["restore"]["batches"]
    max_end = start + timedelta(minutes=max_minutes)
    last_end = max_end + timedelta(seconds=max(0, batches - 1) * interval_s)
    if last_end - start > MAX_WINDOW:
        raise _bad(
            "window_too_long", "max_duration_minutes",
            "the last restore batch's window would be longer than the control plane's 7 days",
            last_batch_end=_iso(last_end),
        )  # fmt: skip
    preview["miners"] = preview["miners"][:200]  # the full list is in the miner rows
    with transaction.atomic():
        event = CurtailmentEvent.objects.create(
            site=req.site, profile=profile, source=source, program=program, external_id=external_id,
            reason=reason.strip(), scope=req.scope, mode=req.mode, target_kw=req.target_kw, priority=req.priority,
            starts_at=start, min_end_at=start + timedelta(minutes=min_minutes), max_end_at=max_end,
            restore_batch_size=batch_size, restore_interval_seconds=interval_s, drift_action=drift,
            preview=preview, shed_kw=Decimal(preview["shed_kw"]), created_by=actor,
        )  # fmt: skip
        rows = CurtailmentEventMiner.objects.bulk_create(
            CurtailmentEventMiner(
                event=event, miner_id=c.id, serial=c.serial, customer_id=c.customer_id, batch=c.batch,
                kw_before=c.kw, ths_before=c.ths, power_target_w=c.power_target_w,
            )
            for c in chosen
        )  # fmt: skip
        by_batch: dict[int, list] = {}
        for r in rows:
            by_batch.setdefault(r.batch, []).append(r)
        kind = _proposer_kind(event)
        linked = []
        for b in sorted(by_batch):
            proposed = command_propose(
                actor=actor, type="CURTAIL", targets=[r.miner_id for r in by_batch[b]], site_id=req.site.pk,
                params=_curtail_params(event, by_batch[b], start, batch_end(event, b)),
                dedupe_key=batch_key(event.pk, b), priority=CMD_PRIORITY[req.priority], proposer_kind=kind,
            )  # fmt: skip
            linked.append(proposed.command)
        event.commands.add(*linked)
        _audit(
            "curtailment_event.started", event, actor=actor,
            actor_kind="system" if source != CurtailmentEvent.Source.MANUAL else None,
            payload={"source": source, "mode": req.mode, "priority": req.priority, "scope": req.scope,
                     "target_kw": _dec(req.target_kw), "miners": len(rows), "shed_kw": preview["shed_kw"],
                     "starts_at": _iso(start), "max_end_at": _iso(max_end), "commands": [c.pk for c in linked],
                     "external_id": external_id, "program": getattr(program, "pk", None)},
        )  # fmt: skip
        _publish(event, None)
    return event


# ---------------------------------------------------------------------------------------------------------
# End


def event_end(
    *, actor, event: CurtailmentEvent, reason: str = "", force: bool = False, _authority: bool = False
) -> CurtailmentEvent:
    """End an event now: before any miner was curtailed → CANCELLED (its commands not yet dispatched cancelled);
    while it runs → RESTORING, the restore batches following one another at the event's interval
    (``event_tick`` proposes them), then ENDED. An event already restoring, ended, cancelled or failed, or past
    its latest end (restoring on its own), is returned unchanged (idempotent).

    Refusals: 404 (hidden), 403 (no FULL / read-only site), 409 ``min_duration`` before ``min_end_at`` unless
    the event's priority is emergency or ``force`` is given by an owner (403 ``force_owner_only`` otherwise).
    ``_authority`` is the demand-response webhook's: the programme's end signal is the grid releasing the load,
    so the minimum duration (which protects against an operator's short-cycling) does not hold it."""
    from commands.models import LIVE_STATUSES, Command, CommandStatus
    from commands.services import command_cancel

    event = event_get(user=actor, event_id=event.pk)
    _site_for(user=actor, site_id=event.site_id, write=True)
    if not isinstance(reason, str) or len(reason) > 300:
        raise _bad("invalid", "reason", "is text of at most 300 characters")
    if force and role_of(actor) != Role.OWNER:
        raise DomainError("force_owner_only", "Only an owner may end an event before its minimum duration.",
                          status=403)  # fmt: skip
    now = timezone.now()
    with transaction.atomic():
        event = CurtailmentEvent.objects.select_for_update().get(pk=event.pk)
        if event.status in CLOSED or event.end_requested_at is not None or now >= event.max_end_at:
            return event
        started = event.miners.exclude(state__in=(M.PENDING, M.FAILED)).exists()
        early_ok = event.priority == CurtailmentPriority.EMERGENCY or force or _authority
        if started and now < event.min_end_at and not early_ok:
            raise DomainError(
                "min_duration",
                f"This event runs at least until {_iso(event.min_end_at)}; end it then (or, as an owner, force it).",
                status=409, details={"min_end_at": _iso(event.min_end_at)},
            )  # fmt: skip
        batch_cmds = [c for c in event.commands.all() if c.dedupe_key.startswith(batch_key(event.pk, 0)[:-1])]
        undispatched = [c for c in batch_cmds if c.status in (CommandStatus.PENDING, CommandStatus.PENDING_APPROVAL,
                                                               CommandStatus.APPROVED)]  # fmt: skip
        for command in undispatched:
            command_cancel(command=command, actor=actor, reason=f"curtailment event #{event.pk} ended")
        event.end_requested_at = now
        payload = {"reason": reason.strip(), "force": bool(force), "cancelled_commands": [c.pk for c in undispatched]}
        live_left = Command.objects.filter(pk__in=[c.pk for c in batch_cmds], status__in=LIVE_STATUSES).exists()
        if not started and not live_left:
            event.miners.filter(state=M.PENDING).update(state=M.FAILED)
            event.ended_at = now
            _move(event, E.CANCELLED, actor=actor, payload=payload, fields=["end_requested_at", "ended_at"])
        else:
            _move(event, E.RESTORING, actor=actor, payload=payload, fields=["end_requested_at"])
    return event


# ---------------------------------------------------------------------------------------------------------
# The tick


def settle_miner(
    *, kw_shed: Decimal, ths_forgone: Decimal, hours: Decimal, hashprice: Decimal
) -> tuple[Decimal, Decimal]:
    """Energy avoided (kWh, 3 places) and revenue forgone (USD, 2 places), both half up, for ``hours`` curtailed."""
    energy = (kw_shed * hours).quantize(KWH, ROUND_HALF_UP)
    revenue = (ths_forgone * hashprice * hours / 24).quantize(USD, ROUND_HALF_UP)
    return energy, revenue


def _shed(row: CurtailmentEventMiner) -> tuple[Decimal, Decimal]:
    """(kW shed, TH/s given up) while the miner is held."""
    if row.power_target_w is None:
        return row.kw_before, row.ths_before
    shed = max(Decimal(0), row.kw_before - Decimal(row.power_target_w) / 1000)
    ths = row.ths_before * shed / row.kw_before if row.kw_before else Decimal(0)
    return shed, ths


def _settle_stretch(row: CurtailmentEventMiner, until: datetime, hashprice: Decimal) -> None:
    if row.curtailed_at is None or until <= row.curtailed_at:
        return
    hours = Decimal((until - row.curtailed_at).total_seconds()) / 3600
    kw, ths = _shed(row)
    energy, revenue = settle_miner(kw_shed=kw, ths_forgone=ths, hours=hours, hashprice=hashprice)
    row.energy_avoided_kwh += energy
    row.revenue_forgone_usd += revenue


def _dropped(row: CurtailmentEventMiner, power_w, ths) -> tuple[bool, bool]:
    """(power dropped, hashrate dropped) for a live reading, by the thresholds of the module docstring."""
    power = None if power_w is None else Decimal(str(power_w))
    before_w = row.kw_before * 1000
    if row.power_target_w is None:
        power_ok = power is not None and power <= STOP_POWER_FRACTION * before_w
        ths_ok = ths is not None and ths <= max(ZERO_THS, ZERO_FRACTION * row.ths_before)
    else:
        limit = Decimal(row.power_target_w) * (1 + TARGET_TOLERANCE) + TARGET_SLACK_W
        power_ok = power is not None and power <= limit
        ths_ok = ths is not None and ths <= THROTTLED_THS_FRACTION * row.ths_before
    return power_ok, ths_ok


def _reading_ths(instant, ghs) -> Decimal | None:
    # The last sample first: the 5-minute average lags a stop by minutes.
    if instant is not None:
        return Decimal(str(instant))
    return None if ghs is None else Decimal(str(ghs)) / 1000


def event_tick(now: datetime | None = None, *, limit: int = 200) -> dict:
    """Move every open event along (the Beat job's body, every 30 s): SCHEDULED → ACTIVE when its commands are
    acknowledged; miners CURTAILED → CONFIRMED from telemetry, drift detection and its action, ACTIVE → RESTORING
    at ``max_end_at``, early-ended events' staggered restore, settlement and ENDED. Idempotent (every step
    depends on the rows' state; proposals carry dedupe keys); each event in a transaction of its own, its row
    locked with ``skip_locked`` (another worker's event is left for the next tick; the event's lock guards its
    miner rows, which only the holder of the event's lock writes). Queries per event do not grow with its miners:
    miners, commands, targets and live readings are read in one query each, changes written in bulk."""
    now = now or timezone.now()
    ids = list(CurtailmentEvent.objects.filter(status__in=OPEN).order_by("pk").values_list("pk", flat=True)[:limit])
    counts = {"events": 0, "skipped": 0, "moved": 0, "confirmed": 0, "drifted": 0, "restored": 0, "proposed": 0}
    for pk in ids:
        with transaction.atomic():
            event = (
                CurtailmentEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=pk, status__in=OPEN)
                .select_related("created_by", "program__created_by")
                .first()
            )
            if event is None:
                counts["skipped"] += 1
                continue
            counts["events"] += 1
            for key, n in _tick_event(event, now).items():
                counts[key] = counts.get(key, 0) + n
    return counts


def _actor_of(event: CurtailmentEvent):
    return event.created_by


def _tick_event(event: CurtailmentEvent, now: datetime) -> dict:
    from commands.models import LIVE_STATUSES, CommandTarget
    from telemetry.models import LiveStatus

    out = {"moved": 0, "confirmed": 0, "drifted": 0, "restored": 0, "proposed": 0}
    hashprice = Decimal(event.preview.get("hashprice_usd_per_th_day") or "0")
    rows = list(event.miners.all())
    commands = {c.dedupe_key: c for c in event.commands.all()}
    targets = {}
    for cid, mid, result, acked in CommandTarget.objects.filter(command__in=list(commands.values())).values_list(
        "command_id", "miner_id", "result_status", "acked_at"
    ):
        targets[(cid, mid)] = (result, acked)
    dirty: set[int] = set()
    prefix = f"curtailment-event:{event.pk}:"

    def target_of(key: str, row) -> tuple[str | None, object, object]:
        """(command status or None, result, acked_at) of ``row`` in the command of ``key``."""
        c = commands.get(key)
        if c is None:
            return None, None, None
        result, acked = targets.get((c.pk, row.miner_id), (None, None))
        return c.status, result, acked

    # 1. Acknowledgements: PENDING → CURTAILED or FAILED; a re-curtailed DRIFTED miner → CURTAILED.
    for r in rows:
        if r.state == M.PENDING:
            status, result, acked = target_of(batch_key(event.pk, r.batch), r)
            if status is None or status in LIVE_STATUSES:
                continue
            if result == "ok" and acked is not None:
                r.state, r.curtailed_at = M.CURTAILED, acked
            else:
                r.state = M.FAILED
            dirty.add(r.pk)
        elif r.state == M.DRIFTED and event.drift_action == DriftAction.RECURTAIL and r.restored_at is None:
            status, result, acked = target_of(recurtail_key(event.pk, r.miner_id, r.drift_count), r)
            if status is not None and status not in LIVE_STATUSES and result == "ok" and acked is not None:
                r.state, r.curtailed_at, r.confirmed_at = M.CURTAILED, acked, None
                dirty.add(r.pk)

    batch_cmds = [c for k, c in commands.items() if k.startswith(prefix + "b")]
    live_left = any(c.status in LIVE_STATUSES for c in batch_cmds)
    held = [r for r in rows if r.state in HELD]

    # 2. SCHEDULED → ACTIVE (or FAILED when nothing was curtailed).
    if event.status == E.SCHEDULED and not live_left:
        if held:
            _move(event, E.ACTIVE, payload={"curtailed": len(held)})
        else:
            event.ended_at = now
            _move(event, E.FAILED, payload={"why": "no miner was curtailed"}, fields=["ended_at"])
        out["moved"] += 1

    # 3. Confirmation and drift, from the live layer (one query for the miners the event holds).
    restoring_early = event.end_requested_at is not None
    watch = [r for r in rows if r.state in HELD and r.miner_id is not None and now < batch_end(event, r.batch)]
    live = {
        m: (seen, w, instant, ghs)
        for m, seen, w, instant, ghs in LiveStatus.objects.filter(miner_id__in=[r.miner_id for r in watch]).values_list(
            "miner_id", "last_seen", "power_w", "hashrate_ths_instant", "hashrate_ghs"
        )
    } if watch else {}  # fmt: skip
    drifted = []
    for r in watch:
        reading = live.get(r.miner_id)
        if reading is None:
            continue
        seen, w, instant, ghs = reading
        power_ok, ths_ok = _dropped(r, w, _reading_ths(instant, ghs))
        if r.state == M.CURTAILED and seen > r.curtailed_at and power_ok and ths_ok:
            r.state, r.confirmed_at = M.CONFIRMED, seen
            dirty.add(r.pk)
            out["confirmed"] += 1
        elif (
            r.state == M.CONFIRMED and not restoring_early and seen > r.confirmed_at
            and not power_ok and not ths_ok
            and w is not None and _reading_ths(instant, ghs) is not None
        ):  # fmt: skip
            _settle_stretch(r, seen, hashprice)
            r.state, r.drift_count, r.curtailed_at, r.confirmed_at = M.DRIFTED, r.drift_count + 1, None, None
            dirty.add(r.pk)
            drifted.append((r, seen, w, _reading_ths(instant, ghs)))
    out["drifted"] += len(drifted)
    if drifted:
        out["proposed"] += _on_drift(event, drifted, now, commands)

    # 4. Confirmed by telemetry: every miner the event holds confirmed.
    if event.confirmed_at is None and event.status == E.ACTIVE:
        states = {r.state for r in rows}
        if M.CONFIRMED in states and not states & {M.PENDING, M.CURTAILED}:
            event.confirmed_at = max(r.confirmed_at for r in rows if r.state == M.CONFIRMED)
            event.shed_kw = sum((_shed(r)[0] for r in rows if r.state == M.CONFIRMED), Decimal(0))
            event.save(update_fields=["confirmed_at", "shed_kw", "updated_at"])
            _audit("curtailment_event.confirmed", event, payload={"shed_kw": str(event.shed_kw)})

    # 5. The natural end: ACTIVE → RESTORING at max_end_at.
    if event.status == E.ACTIVE and now >= event.max_end_at:
        _move(event, E.RESTORING, payload={"why": "latest end reached"})
        out["moved"] += 1

    # 6. Restore, batch by batch.
    if event.status == E.RESTORING:
        out["proposed"] += _restore_early(event, rows, now, commands) if restoring_early else 0
        for r in rows:
            if r.state in (M.RESTORED, M.FAILED):
                continue
            at = _restored_at(event, r, now, commands, targets)
            if at is None:
                continue
            if r.state in HELD:
                _settle_stretch(r, at, hashprice)
            if r.state == M.PENDING:
                r.state = M.FAILED  # its command never came back before the event ended
            else:
                r.state, r.restored_at = M.RESTORED, at
                out["restored"] += 1
            dirty.add(r.pk)

    if dirty:
        _write_rows([r for r in rows if r.pk in dirty], MINER_FIELDS)
        _audit("curtailment_event.miners", event, payload={
            "confirmed": out["confirmed"], "drifted": [r.serial for r, *_ in drifted][:50],
            "restored": out["restored"], "by_state": _by_state(rows)})  # fmt: skip

    # 7. RESTORING → ENDED when every miner is back (or failed); the event's figures are the miners' sums.
    if event.status == E.RESTORING and all(r.state in (M.RESTORED, M.FAILED) for r in rows):
        event.energy_avoided_kwh = sum((r.energy_avoided_kwh for r in rows), Decimal(0))
        event.revenue_forgone_usd = sum((r.revenue_forgone_usd for r in rows), Decimal(0))
        restored = [r.restored_at for r in rows if r.restored_at is not None]
        event.ended_at = max(restored) if restored else now
        to = E.ENDED if restored else E.CANCELLED
        _move(event, to, payload={"energy_avoided_kwh": str(event.energy_avoided_kwh),
                                  "revenue_forgone_usd": str(event.revenue_forgone_usd)},
              fields=["energy_avoided_kwh", "revenue_forgone_usd", "ended_at"])  # fmt: skip
        out["moved"] += 1
    return out


MINER_FIELDS = (
    "state", "curtailed_at", "confirmed_at", "restored_at", "drift_count", "energy_avoided_kwh", "revenue_forgone_usd",
)  # fmt: skip
WRITE_CHUNK = 1000


def _write_rows(rows: list, fields) -> None:
    """Write the changed miner rows. On PostgreSQL one ``UPDATE … FROM (VALUES …)`` per 1,000 rows: Django's
    ``bulk_update`` builds one CASE per field over every row, which PostgreSQL took ~100 s to run for 10,000 rows
    (measured in notes/events-docs.md); elsewhere (SQLite in tests) ``bulk_update``."""
    from django.db import connection

    if not rows:
        return
    if connection.vendor != "postgresql":
        CurtailmentEventMiner.objects.bulk_update(rows, list(fields), batch_size=WRITE_CHUNK)
        return
    meta = CurtailmentEventMiner._meta
    cols = [meta.get_field(f) for f in fields]
    names = ", ".join(connection.ops.quote_name(c.column) for c in cols)
    assign = ", ".join(f"{connection.ops.quote_name(c.column)} = v.{connection.ops.quote_name(c.column)}" for c in cols)
    row_sql = "(" + ", ".join(["%s::bigint", *(f"%s::{c.db_type(connection)}" for c in cols)]) + ")"
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        for i in range(0, len(rows), WRITE_CHUNK):
            chunk = rows[i : i + WRITE_CHUNK]
            params = []
            for r in chunk:
                params.append(r.pk)
                params.extend(c.get_db_prep_save(getattr(r, c.attname), connection) for c in cols)
            # Identifiers come from the model's own meta, quoted; every value is a parameter.
            sql = (
                f"UPDATE {table} AS t SET {assign} FROM (VALUES {', '.join([row_sql] * len(chunk))}) "  # noqa: S608
                f"AS v(id, {names}) WHERE t.id = v.id"
            )
            cursor.execute(sql, params)


def _by_state(rows) -> dict:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    return counts


def _restore_time(event: CurtailmentEvent, batch: int) -> datetime:
    """When batch ``batch`` comes back: the natural staggered end, or, ended early, one interval apart from the
    end request."""
    if event.end_requested_at is not None and event.end_requested_at < event.max_end_at:
        return event.end_requested_at + timedelta(seconds=batch * event.restore_interval_seconds)
    return batch_end(event, batch)


def _restored_at(event, r, now, commands, targets) -> datetime | None:
    """When ``r`` was restored, or None while it is still held: its batch's CURTAIL window end once passed (the
    edge restores then); ended early, its restore command's acknowledgement (or that window end, whichever
    first). A miner never curtailed (drifted and flagged, failed) is done at its batch's restore time."""
    from commands.models import LIVE_STATUSES

    window_end = batch_end(event, r.batch)
    if r.state not in HELD and r.state != M.DRIFTED:
        if r.state == M.PENDING:
            c = commands.get(batch_key(event.pk, r.batch))
            return now if c is None or c.status not in LIVE_STATUSES or now >= window_end else None
        return None
    if r.state == M.DRIFTED and event.drift_action == DriftAction.FLAG:
        at = _restore_time(event, r.batch)
        return at if now >= at else None
    if event.end_requested_at is not None and event.end_requested_at < event.max_end_at:
        for kind in ("enable", "power"):
            c = commands.get(restore_key(event.pk, r.batch, kind))
            if c is None or c.status in LIVE_STATUSES:
                continue
            result, acked = targets.get((c.pk, r.miner_id), (None, None))
            if result == "ok" and acked is not None:
                return acked
    return window_end if now >= window_end else None


def _restore_early(event: CurtailmentEvent, rows, now: datetime, commands: dict) -> int:
    """Ended early: propose each batch's restore when its turn comes (``end_requested_at + b × interval``):
    ``HASHING_ENABLE`` for stopped miners, ``POWER_MODE normal`` for throttled ones. Dedupe key per event, batch
    and kind, so a second tick proposes nothing. A refusal (safety guard, the starter's rights gone) is audited and
    left to the CURTAIL's own window end, which restores the batch at the edge anyway."""
    from commands.services import command_propose

    actor = _actor_of(event)
    proposed = 0
    batches: dict[int, list] = {}
    for r in rows:
        if r.state in HELD or (r.state == M.DRIFTED and event.drift_action == DriftAction.RECURTAIL):
            batches.setdefault(r.batch, []).append(r)
    for b in sorted(batches):
        if now < _restore_time(event, b) or now >= batch_end(event, b):
            continue
        for kind, type_, params in (("enable", "HASHING_ENABLE", {}), ("power", "POWER_MODE", {"mode": "normal"})):
            members = [r for r in batches[b] if (r.power_target_w is None) == (kind == "enable") and r.miner_id]
            key = restore_key(event.pk, b, kind)
            if not members or key in commands:
                continue
            try:
                with transaction.atomic():
                    found = command_propose(
                        actor=actor, type=type_, params=params, targets=[r.miner_id for r in members],
                        site_id=event.site_id, dedupe_key=key, priority=CMD_PRIORITY[event.priority],
                        proposer_kind=_proposer_kind(event, system=True),
                    )  # fmt: skip
            except DomainError as exc:
                _audit("curtailment_event.restore_refused", event,
                       payload={"batch": b, "code": exc.code, "message": exc.message[:200]})  # fmt: skip
                commands[key] = None  # not again this tick; the next tick retries
                continue
            event.commands.add(found.command)
            commands[key] = found.command
            proposed += 1
    for key in [k for k, v in commands.items() if v is None]:
        del commands[key]
    return proposed


def _on_drift(event: CurtailmentEvent, drifted: list, now: datetime, commands: dict) -> int:
    """Re-curtail each drifted miner until its batch's end (dedupe per miner and drift count), or flag it with an
    alert (``curtailment_drift``, one open alert per miner, repeats counted onto it)."""
    if event.drift_action == DriftAction.FLAG:
        _flag(event, drifted)
        return 0
    from commands.services import command_propose

    proposed = 0
    for r, _seen, _w, _ths in drifted:
        end = batch_end(event, r.batch)
        key = recurtail_key(event.pk, r.miner_id, r.drift_count)
        if end <= now or key in commands:
            continue
        try:
            with transaction.atomic():
                found = command_propose(
                    actor=_actor_of(event), type="CURTAIL", targets=[r.miner_id], site_id=event.site_id,
                    params=_curtail_params(event, [r], now, end), dedupe_key=key,
                    priority=CMD_PRIORITY[event.priority], proposer_kind=_proposer_kind(event, system=True),
                )  # fmt: skip
        except DomainError as exc:
            _audit("curtailment_event.recurtail_refused", event,
                   payload={"serial": r.serial, "code": exc.code, "message": exc.message[:200]})  # fmt: skip
            continue
        event.commands.add(found.command)
        commands[key] = found.command
        proposed += 1
    return proposed


def drift_message(*, serial: str, event_id: int, ths, watts) -> tuple[str, dict]:
    """The alert's English message and its ``msg`` (id and parameters) for the pages' translation
    (``telemetry.alert_messages``: the lead adds the id to its CATALOG)."""
    params = {"serial": serial, "event": event_id, "ths": f"{ths:.1f}", "watts": f"{watts:.0f}"}
    text = (
        "Miner {serial} resumed hashing during curtailment event #{event} ({ths} TH/s, {watts} W); "
        "flagged, not curtailed again."
    ).format(**params)
    return text, {"id": DRIFT_ALERT, "params": params}


def _flag(event: CurtailmentEvent, drifted: list) -> None:
    from telemetry.services import AlertToRaise, alerts_raise

    items = []
    for r, seen, w, ths in drifted:
        text, msg = drift_message(serial=r.serial, event_id=event.pk, ths=float(ths), watts=float(w))
        items.append(
            AlertToRaise(
                site_id=event.site_id, alert_type=DRIFT_ALERT, severity="warning", message=text,
                miner_id=r.miner_id, customer_id=None,
                evidence={"msg": msg, "event_id": event.pk, "serial": r.serial, "drift_count": r.drift_count,
                          "seen_at": _iso(seen), "power_w": float(w), "hashrate_ths": float(ths)},
            )
        )  # fmt: skip
    alerts_raise(items)


# ---------------------------------------------------------------------------------------------------------
# The event as the API and the pages show it


def event_body(event: CurtailmentEvent, *, full: bool = True) -> dict:
    """Plain JSON for the API and the pages: money and kW as decimal strings, times in UTC ISO 8601.
    ``full`` adds ``miners_summary`` (counts per state, batches, drifts), ``commands`` ([{id, type, status,
    dedupe_key}]), ``preview`` and ``can_end``."""
    body = {
        "id": event.pk,
        "site": event.site_id,
        "site_name": event.site.name,
        "status": event.status,
        "source": event.source,
        "program": event.program_id,
        "external_id": event.external_id,
        "reason": event.reason,
        "profile": event.profile_id,
        "scope": event.scope,
        "mode": event.mode,
        "target_kw": _dec(event.target_kw),
        "priority": event.priority,
        "starts_at": _iso(event.starts_at),
        "min_end_at": _iso(event.min_end_at),
        "max_end_at": _iso(event.max_end_at),
        "end_requested_at": _iso(event.end_requested_at),
        "ended_at": _iso(event.ended_at),
        "restore_batch_size": event.restore_batch_size,
        "restore_interval_seconds": event.restore_interval_seconds,
        "drift_action": event.drift_action,
        "confirmed_at": _iso(event.confirmed_at),
        "shed_kw": _dec(event.shed_kw),
        "energy_avoided_kwh": _dec(event.energy_avoided_kwh),
        "revenue_forgone_usd": _dec(event.revenue_forgone_usd),
        "created_by": event.created_by_id,
        "created_at": _iso(event.created_at),
    }
    if full:
        states = dict(event.miners.values_list("state").annotate(n=Count("id")).order_by())
        agg = event.miners.aggregate(batches=Count("batch", distinct=True), drifts=Sum("drift_count"))
        body["miners_summary"] = {
            "total": sum(states.values()), "by_state": states, "batches": agg["batches"] or 0,
            "drifts": agg["drifts"] or 0,
        }  # fmt: skip
        body["commands"] = [
            {"id": pk, "type": t, "status": s, "dedupe_key": k}
            for pk, t, s, k in event.commands.order_by("pk").values_list("pk", "command_type", "status", "dedupe_key")
        ]
        body["preview"] = event.preview
        body["can_end"] = event.status in (E.SCHEDULED, E.ACTIVE) and event.end_requested_at is None
    return body


def event_exists_for(program, external_id: str) -> CurtailmentEvent | None:
    return CurtailmentEvent.objects.filter(program=program, external_id=external_id).first()
