"""The real-time responder (issue 9, 4b): on each new real-time price interval, curtail or restore miner groups
whose breakeven the price crossed, within the plan's constraints, through the control plane.

Settings (``RealtimeResponder``, one per site): ``responder_get`` / ``responder_update`` (CURTAILMENT module: READ
to read, FULL and a manage grant on the site to write; a hidden site is a 404); ``responder_site_list`` (each
visible site with its settings, last decision and real-time price). Decisions: ``decision_list``.

The job (``respond_all``, Beat every minute through ``intelligence.responder_tasks``), per enabled site:

1. The newest real-time ``PowerPrice`` whose interval has ended (a price is published after its interval) is
   interval L; the decision is for the interval after it, t = L + step. Nothing new (L ≤ ``last_interval_start``)
   → nothing happens, so the job may run every minute and twice; a price whose next interval has already ended
   too is stale and is skipped (acting on it would act on the past). ``ResponderDecision`` is unique per site and
   interval: two workers racing for one interval make one decision.
2. The site's model is the plans' (``curtailment_plans.site_model``: groups of model × zone × hosting client,
   contract priority) with the responder's min on/off and ramp; breakevens from the hashprice the plans use
   (``curtailment_plans.hourly_hashprice``); the price compared is the nowcast of t
   (``algorithms.nowcast.DriftNowcast`` fitted on the site's last 180 days of real-time prices up to L);
   the cap is the hour's cap of a SENT plan covering t (``cap_kw`` or ``curtail_pct``), if any.
3. Each group's state: miners on = the group's miners the live layer shows hashing (or has not seen yet) that
   the responder has not curtailed; the recent switches (for min on/off) are the responder's own, read from its
   decisions of the last hours. ``optimizer.respond_realtime`` decides.
4. Curtail n miners of a group: one ``CURTAIL`` command (``kw`` = n × the model's kW, ``mode`` the responder's
   ``command_mode``) on the group's n least efficient miners that are on, window from now for ``HOLD`` (at
   least min off), dedupe key per site, interval and group. Restore n: the responder's curtailed miners of the
   group, those whose command has not been dispatched yet by cancelling it, the others by ``HASHING_ENABLE``.
   Why a long window ended early rather than a short one extended: the control plane plans a CURTAIL's
   per-miner action from the live draw at proposal, so a second CURTAIL proposed for miners already stopped
   plans "none" for them and the edge would restore them at the first window's end; one window that the
   responder ends when the price falls does not have that gap. When a window ends with the price still high,
   its miners hash again and the next decision curtails them again.
   Commands are proposed by the user who last enabled the responder (``updated_by``) with proposer kind SYSTEM;
   the site's approval policy decides whether they run at once or wait for an approver. That user losing the
   right to command the site stops the responder's actions (the decision records why).
5. The decision is recorded (``ResponderDecision``: price, price used, actions, held reasons, commands) and
   audited. An error on one site is logged and recorded in the job's result; the other sites go on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, F, IntegerField, JSONField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import audit_append
from intelligence import curtailment_plans as plans
from intelligence.algorithms import optimizer
from intelligence.algorithms.nowcast import DriftNowcast, slot_of
from intelligence.models import (
    CurtailmentPlan,
    PowerMarket,
    PowerPrice,
    RealtimeResponder,
    ResponderDecision,
)

log = logging.getLogger("intelligence.responder")

MODULE = Module.CURTAILMENT
HOLD = timedelta(hours=2)  # a curtailment's window: ended early by a restore, re-proposed if it runs out
HISTORY_DAYS = 180  # the nowcast's learning window (chosen on 2024 alone: bench/curtailment_eval.py)
MAX_MINUTES = 24 * 60
MAX_HYSTERESIS = Decimal("1000")
MAX_RAMP_KW_PER_HOUR = Decimal("1000000")
MODES = ("hard", "soft")
FIELDS = ("enabled", "hysteresis_usd_per_mwh", "min_on_minutes", "min_off_minutes", "ramp_kw_per_hour", "command_mode")
KEY_PREFIX = "responder"
CENT = Decimal("0.01")


def _bad(code: str, field_name: str, message: str) -> DomainError:
    return DomainError(code, f"{field_name}: {message}", details={"field": field_name})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------------
# Settings


def _site_for(*, user, site_id, write: bool):
    from sites.selectors import require_site_manageable, site_list

    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise DomainError("not_found", "Not found.", status=404)
    site = site_list(user=user).filter(pk=site_id).first() if has_access(user, MODULE, Access.READ) else None
    if site is None:
        raise DomainError("not_found", "Not found.", status=404)
    if write:
        if not has_access(user, MODULE, Access.FULL):
            raise DomainError("permission_denied", "Your role may not change the real-time responder.", status=403)
        require_site_manageable(user=user, site_id=site.pk)
    return site


def responder_get(*, user, site_id: int) -> RealtimeResponder:
    """The site's responder settings (an unsaved default, disabled, when none were ever saved)."""
    site = _site_for(user=user, site_id=site_id, write=False)
    found = RealtimeResponder.objects.filter(site=site).select_related("site", "updated_by").first()
    return found or RealtimeResponder(site=site)


def _clean(data: Mapping, current: RealtimeResponder) -> dict:
    if not isinstance(data, Mapping):
        raise DomainError("invalid", "The body is a JSON object.")
    unknown = set(data) - set(FIELDS)
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise DomainError("unknown_field", f"{name}: is not a setting", details={"field": name, "allowed": FIELDS})
    out = {}
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise _bad("invalid", "enabled", "is true or false")
        out["enabled"] = data["enabled"]
    if "hysteresis_usd_per_mwh" in data:
        out["hysteresis_usd_per_mwh"] = _decimal(data["hysteresis_usd_per_mwh"], "hysteresis_usd_per_mwh",
                                                 MAX_HYSTERESIS)  # fmt: skip
    for name in ("min_on_minutes", "min_off_minutes"):
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINUTES:
                raise _bad("out_of_range", name, f"is a whole number of minutes within 0…{MAX_MINUTES}")
            out[name] = value
    if "ramp_kw_per_hour" in data:
        value = data["ramp_kw_per_hour"]
        out["ramp_kw_per_hour"] = (
            None if value is None else _decimal(value, "ramp_kw_per_hour", MAX_RAMP_KW_PER_HOUR, places=3)
        )
    if "command_mode" in data:
        if data["command_mode"] not in MODES:
            raise _bad("invalid_choice", "command_mode", f"is one of {', '.join(MODES)}")
        out["command_mode"] = data["command_mode"]
    return out


def _decimal(value, name: str, maximum: Decimal, *, places: int = 2) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad("not_a_number", name, "is a number")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise _bad("not_a_number", name, "is a number") from None
    if not out.is_finite():
        raise _bad("not_a_number", name, "is a finite number")
    if not Decimal(0) <= out <= maximum:
        raise _bad("out_of_range", name, f"is within 0…{maximum}")
    return out.quantize(Decimal(1).scaleb(-places))


def responder_update(*, actor, site_id: int, data: Mapping) -> RealtimeResponder:
    """Change the site's responder settings (partial: only the keys given). Enabling makes ``actor`` the user the
    responder's commands are proposed as. Audited. Bad values → 400 naming the field, nothing changed."""
    site = _site_for(user=actor, site_id=site_id, write=True)
    with transaction.atomic():
        responder, _ = RealtimeResponder.objects.select_for_update().get_or_create(site=site)
        changes = _clean(data, responder)
        before = {k: getattr(responder, k) for k in changes}
        for name, value in changes.items():
            setattr(responder, name, value)
        responder.updated_by = actor
        responder.save()
        audit_append(
            event_type="realtime_responder.updated", actor_type="user", actor_id=actor.pk,
            reference=f"realtime_responder:{site.pk}", site=site,
            payload={"changes": {k: {"from": _plain(before[k]), "to": _plain(v)} for k, v in changes.items()}},
        )  # fmt: skip
    return responder


def _plain(value):
    return str(value) if isinstance(value, Decimal) else value


def _visible_sites(user):
    from sites.selectors import site_list

    return site_list(user=user) if has_access(user, MODULE, Access.READ) else None


def responder_list(*, user) -> QuerySet[RealtimeResponder]:
    """The saved responders of the sites ``user`` sees (admin)."""
    sites = _visible_sites(user)
    if sites is None:
        return RealtimeResponder.objects.none()
    return RealtimeResponder.objects.filter(site__in=sites).select_related("site", "updated_by")


def responder_site_list(*, user, now: datetime | None = None) -> QuerySet:
    """The sites ``user`` sees (CURTAILMENT READ; else none), each annotated with its responder's settings (the
    defaults, disabled, where none was ever saved), who last changed them, its last decision (interval and moves)
    and its latest real-time price whose interval has started by ``now``. One query: correlated subqueries on
    the (site, interval_start) unique indexes, so the cost grows with the sites shown, not their history."""
    from sites.models import Site

    sites = _visible_sites(user)
    if sites is None:
        return Site.objects.none()
    now = now or timezone.now()
    decisions = ResponderDecision.objects.filter(site=OuterRef("pk")).order_by("-interval_start")
    prices = PowerPrice.objects.filter(
        site=OuterRef("pk"), market=PowerMarket.REAL_TIME, interval_start__lte=now
    ).order_by("-interval_start")
    default = {f: RealtimeResponder._meta.get_field(f).default for f in FIELDS if f != "ramp_kw_per_hour"}
    return sites.annotate(
        r_enabled=Coalesce("realtime_responder__enabled", Value(default["enabled"])),
        r_mode=Coalesce("realtime_responder__command_mode", Value(default["command_mode"])),
        r_hysteresis=Coalesce(
            "realtime_responder__hysteresis_usd_per_mwh", Value(Decimal(default["hysteresis_usd_per_mwh"])),
            output_field=DecimalField(max_digits=8, decimal_places=2),
        ),
        r_min_on=Coalesce(
            "realtime_responder__min_on_minutes", Value(default["min_on_minutes"]), output_field=IntegerField()
        ),
        r_min_off=Coalesce(
            "realtime_responder__min_off_minutes", Value(default["min_off_minutes"]), output_field=IntegerField()
        ),
        r_ramp=F("realtime_responder__ramp_kw_per_hour"),
        r_last_interval=F("realtime_responder__last_interval_start"),
        r_changed_by=F("realtime_responder__updated_by__username"),
        last_decision_at=Subquery(decisions.values("interval_start")[:1]),
        last_decision=Subquery(decisions.values("decision")[:1], output_field=JSONField()),
        price_usd_per_mwh=Subquery(prices.values("usd_per_mwh")[:1]),
        price_at=Subquery(prices.values("interval_start")[:1]),
    )  # fmt: skip


def decisions_visible(*, user) -> QuerySet[ResponderDecision]:
    """Every decision of the sites ``user`` sees (admin)."""
    sites = _visible_sites(user)
    if sites is None:
        return ResponderDecision.objects.none()
    return ResponderDecision.objects.filter(site__in=sites).select_related("site")


def decision_list(*, user, site_id: int) -> QuerySet[ResponderDecision]:
    site = _site_for(user=user, site_id=site_id, write=False)
    return ResponderDecision.objects.filter(site=site).prefetch_related("commands")


# ---------------------------------------------------------------------------------------------------------
# The job


@dataclass
class Outcome:
    site_id: int
    result: str  # decided | unchanged | no_price | stale | no_miners | error
    interval_start: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"site": self.site_id, "result": self.result, "interval_start": self.interval_start, **self.details}


def respond_all(now: datetime | None = None) -> list[Outcome]:
    """One pass over every enabled responder; an error on one site never stops the others."""
    now = now or timezone.now()
    out = []
    for site_id in RealtimeResponder.objects.filter(enabled=True).order_by("site_id").values_list("site_id", flat=True):
        try:
            out.append(respond_site(site_id, now=now))
        except Exception as exc:  # one site's failure is logged and reported, never the job's
            log.exception("responder failed for site %s", site_id)
            code = getattr(exc, "code", type(exc).__name__)
            out.append(Outcome(site_id, "error", details={"error_code": code, "message": str(exc)[:300]}))
    return out


def _latest_published(site_id: int, now: datetime) -> PowerPrice | None:
    """The newest real-time price whose interval has ended by ``now`` (5, 15 or 60 minutes)."""
    rows = PowerPrice.objects.filter(
        site_id=site_id, market=PowerMarket.REAL_TIME, interval_start__lte=now - timedelta(minutes=5)
    ).order_by("-interval_start")[:2]
    for row in rows:
        if row.interval_start + timedelta(minutes=row.interval_minutes) <= now:
            return row
    return None


def respond_site(site_id: int, *, now: datetime | None = None) -> Outcome:
    """Decide and act for the site's next interval, once (see the module docstring)."""
    now = now or timezone.now()
    latest = _latest_published(site_id, now)
    if latest is None:
        return Outcome(site_id, "no_price")
    step = timedelta(minutes=latest.interval_minutes)
    target = latest.interval_start + step
    with transaction.atomic():
        responder = (
            RealtimeResponder.objects.select_for_update(of=("self",))
            .select_related("site", "updated_by")
            .get(site_id=site_id)
        )
        if not responder.enabled:
            return Outcome(site_id, "disabled")
        if responder.last_interval_start is not None and latest.interval_start <= responder.last_interval_start:
            return Outcome(site_id, "unchanged", _iso(target))
        responder.last_interval_start = latest.interval_start
        responder.save(update_fields=["last_interval_start"])
        if target + step <= now:
            return Outcome(site_id, "stale", _iso(target), {"price_interval": _iso(latest.interval_start)})
        if ResponderDecision.objects.filter(site_id=site_id, interval_start=target).exists():
            return Outcome(site_id, "unchanged", _iso(target))
        return _decide(responder, latest, target, step, now)


@dataclass
class _Group:
    info: plans.GroupInfo
    model: optimizer.MinerGroup
    miner_ids: list[int]  # least efficient first
    on_ids: list[int]  # hashing (or not seen yet) and not curtailed by the responder
    ours: dict[int, object]  # miner → the responder's curtail command covering it now


def _decide(responder: RealtimeResponder, latest: PowerPrice, target: datetime, step: timedelta, now) -> Outcome:
    site = responder.site
    constraints = {
        "min_on_hours": responder.min_on_minutes / 60,
        "min_off_hours": responder.min_off_minutes / 60,
        "ramp_kw_per_hour": None if responder.ramp_kw_per_hour is None else float(responder.ramp_kw_per_hour),
    }
    try:
        model, infos = plans.site_model(site, constraints=constraints)
    except DomainError as exc:
        return Outcome(site.pk, "no_miners", _iso(target), {"error_code": exc.code})
    hashprice, hp_source = plans.hourly_hashprice(target, 1)
    breakeven = {g.id: g.breakeven_usd_per_mwh(hashprice[0]) for g in model.groups}
    used, nowcast_info = nowcast_for(site, latest, step)
    groups = _groups(site.pk, model, infos, now)
    state = {g.model.id: _state(g, _recent_switches(site.pk, g.model.id, target)) for g in groups.values()}
    cap, cap_source = plan_cap(site.pk, target, model)
    held: list[str] = []
    try:
        decision = optimizer.respond_realtime(
            model, state=state, price_usd_per_mwh=used, breakeven_usd_per_mwh=breakeven, cap_kw=cap,
            interval_hours=step.total_seconds() / 3600,
            hysteresis_usd_per_mwh=float(responder.hysteresis_usd_per_mwh),
        )  # fmt: skip
    except optimizer.PlanError as exc:
        raise DomainError(exc.code, str(exc), details={"constraint": exc.constraint}) from None
    held.extend(decision.held)
    record = ResponderDecision(
        site=site, interval_start=target, price_usd_per_mwh=Decimal(str(latest.usd_per_mwh)).quantize(CENT),
        decided_price_usd_per_mwh=Decimal(str(round(used, 2))).quantize(CENT),
    )  # fmt: skip
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        return Outcome(site.pk, "unchanged", _iso(target))
    actions, commands = [], []
    for action in decision.actions:
        g = groups[action.group_id]
        done, made, why = _carry_out(responder, g, action, target, step, now)
        commands.extend(made)
        if why:
            held.append(why)
        actions.append({
            "group": action.group_id, "from_on": action.from_on, "to_on": action.to_on, "done": done,
            "reason": action.reason, "forced": action.forced, "commands": [c.pk for c in made],
        })  # fmt: skip
    record.decision = {
        "price_interval_start": _iso(latest.interval_start),
        "nowcast": nowcast_info,
        "hashprice_usd_per_th_day": round(hashprice[0], 6),
        "hashprice_source": hp_source,
        "groups": [
            {"group": g.model.id, "label": g.info.label, "count": g.model.count, "kw_each": g.model.kw_each,
             "on_before": state[g.model.id].on_count, "on_after": decision.on_counts[g.model.id],
             "breakeven_usd_per_mwh": round(breakeven[g.model.id], 2)}
            for g in groups.values()
        ],
        "actions": actions,
        "held": held,
        "power_kw": round(decision.power_kw, 3),
        "cap_kw": None if math.isinf(decision.cap_kw) else round(decision.cap_kw, 3),
        "cap_source": cap_source,
        "unmet_cap_kw": round(decision.unmet_cap_kw, 3),
    }  # fmt: skip
    record.save(update_fields=["decision"])
    if commands:
        record.commands.add(*commands)
    audit_append(
        event_type="realtime_responder.decided", actor_type="system", actor_id=None,
        reference=f"responder_decision:{record.pk}", site=site,
        payload={"interval_start": _iso(target), "price_usd_per_mwh": str(record.price_usd_per_mwh),
                 "decided_price_usd_per_mwh": str(record.decided_price_usd_per_mwh),
                 "actions": [{k: a[k] for k in ("group", "from_on", "to_on", "done")} for a in actions],
                 "commands": [c.pk for c in commands]},
    )  # fmt: skip
    return Outcome(site.pk, "decided", _iso(target), {"decision": record.pk, "commands": [c.pk for c in commands]})


def _state(g: _Group, switches: tuple[tuple, tuple]) -> optimizer.GroupState:
    started, stopped = switches
    return optimizer.GroupState(on_count=len(g.on_ids), started=started, stopped=stopped)


def _recent_switches(site_id: int, group: str, target: datetime) -> tuple[tuple, tuple]:
    """(hours ago, miners) started and stopped by the responder in this group during the last day, from the
    moves it carried out (``done``), timed by the interval each was decided for."""
    started, stopped = [], []
    since = target - timedelta(days=1)
    rows = ResponderDecision.objects.filter(site_id=site_id, interval_start__gte=since, interval_start__lt=target)
    for at, decision in rows.values_list("interval_start", "decision"):
        for a in (decision or {}).get("actions", []):
            if a.get("group") != group or not a.get("done"):
                continue
            ago = (target - at).total_seconds() / 3600
            (started if a["done"] > 0 else stopped).append((ago, abs(int(a["done"]))))
    return tuple(started), tuple(stopped)


def _responder_commands(site_id: int, now: datetime) -> dict[int, object]:
    """Miner → the responder's CURTAIL that keeps it off now (proposed, approved or carried out, window not
    over), unless a later responder restore of that miner is in force."""
    from commands.models import Command, CommandStatus

    dead = (CommandStatus.DENIED, CommandStatus.CANCELLED, CommandStatus.FAILED, CommandStatus.TIMEOUT,
            CommandStatus.ROLLED_BACK)  # fmt: skip
    rows = (
        Command.objects.filter(site_id=site_id, dedupe_key__startswith=f"{KEY_PREFIX}:{site_id}:",
                               created_at__gte=now - HOLD - timedelta(days=1))
        .exclude(status__in=dead).order_by("created_at", "pk").prefetch_related("targets")
    )  # fmt: skip
    off: dict[int, object] = {}
    for c in rows:
        ids = [t.miner_id for t in c.targets.all() if t.miner_id is not None]
        if c.command_type == "CURTAIL":
            end = datetime.fromisoformat(c.params["end"].replace("Z", "+00:00"))
            for m in ids:
                if end > now:
                    off[m] = c
                else:
                    off.pop(m, None)
        else:  # HASHING_ENABLE: the responder restored these
            for m in ids:
                off.pop(m, None)
    return off


def _groups(site_id: int, model: optimizer.SiteModel, infos, now) -> dict[str, _Group]:
    from telemetry.models import LiveStatus, SampleStatus

    ours = _responder_commands(site_id, now)
    out = {}
    for info, g in zip(infos, model.groups, strict=True):
        spec = {"model_id": info.model_id, "zone_id": info.zone_id, "customer_id": info.customer_id,
                "kw_each": g.kw_each, "ths_each": g.ths_each}  # fmt: skip
        ids = plans._least_efficient(spec, site_id, g.count)
        status = dict(LiveStatus.objects.filter(miner_id__in=ids).values_list("miner_id", "status"))
        on = [m for m in ids if m not in ours and status.get(m, SampleStatus.HASHING) == SampleStatus.HASHING]
        out[g.id] = _Group(info, g, ids, on, {m: c for m, c in ours.items() if m in set(ids)})
    return out


def _carry_out(responder, g: _Group, action, target: datetime, step: timedelta, now) -> tuple[int, list, str]:
    """Propose what one group's move needs; (miners moved, commands, why something was not done)."""
    from commands.models import CommandStatus, ProposerKind
    from commands.services import command_cancel, command_propose

    actor = responder.updated_by
    if actor is None:
        return 0, [], f"{g.model.id}: nobody enabled the responder (no user to propose as)"
    stamp = target.astimezone(UTC).strftime("%Y%m%dT%H%M")
    key = f"{KEY_PREFIX}:{responder.site_id}:{stamp}:{g.model.id}"
    try:
        if action.change < 0:
            picked = g.on_ids[: -action.change]  # least efficient first
            if not picked:
                return 0, [], f"{g.model.id}: no miner of the group is hashing to curtail"
            end = now + max(HOLD, timedelta(minutes=responder.min_off_minutes) + step)
            kw = round(len(picked) * g.model.kw_each, 3)
            proposed = command_propose(
                actor=actor, type="CURTAIL", targets=picked, site_id=responder.site_id, dedupe_key=f"{key}:off"[:128],
                params={"kw": kw, "start": _iso(now), "end": _iso(end), "mode": responder.command_mode},
                proposer_kind=ProposerKind.SYSTEM,
            )  # fmt: skip
            why = "" if len(picked) == -action.change else f"{g.model.id}: only {len(picked)} hashing to curtail"
            return -len(picked), [proposed.command], why
        # Restore: the responder's own curtailed miners only (an event's or an operator's are not ours to undo),
        # the most efficient first. A command not sent yet is cancelled whole (its miners never stopped), and
        # only when all of it fits in the move: restoring more than decided would break the ramp limit.
        wanted = action.change
        rank = {m: i for i, m in enumerate(g.miner_ids)}
        waiting: dict[int, list[int]] = {}
        running: list[int] = []
        for m, c in sorted(g.ours.items(), key=lambda kv: -rank.get(kv[0], -1)):
            if c.status in (CommandStatus.PENDING, CommandStatus.PENDING_APPROVAL, CommandStatus.APPROVED):
                waiting.setdefault(c.pk, []).append(m)
            else:
                running.append(m)
        commands = {c.pk: c for c in g.ours.values()}
        made, moved = [], 0
        for pk, miners in sorted(waiting.items(), key=lambda kv: -len(kv[1])):
            if moved + len(miners) <= wanted:
                command_cancel(command=commands[pk], actor=actor, reason=f"responder: restore for {stamp}")
                moved += len(miners)
        enable = running[: wanted - moved]
        if enable:
            proposed = command_propose(
                actor=actor, type="HASHING_ENABLE", targets=enable, site_id=responder.site_id,
                dedupe_key=f"{key}:on"[:128], proposer_kind=ProposerKind.SYSTEM,
            )  # fmt: skip
            made.append(proposed.command)
            moved += len(enable)
        if not moved and not g.ours:
            return 0, [], f"{g.model.id}: none of the miners off was curtailed by the responder"
        return moved, made, "" if moved == wanted else f"{g.model.id}: restored {moved} of {wanted}"
    except DomainError as exc:
        log.warning("responder %s %s: %s", responder.site_id, g.model.id, exc.code)
        return 0, [], f"{g.model.id}: the control plane refused ({exc.code}: {exc.message})"


# ---------------------------------------------------------------------------------------------------------
# Inputs: nowcast and the plan's cap


def nowcast_for(site, latest: PowerPrice, step: timedelta) -> tuple[float, dict]:
    """The estimate of the interval after ``latest`` from the site's real-time prices up to ``latest`` only."""
    since = latest.interval_start - timedelta(days=HISTORY_DAYS)
    rows = list(
        PowerPrice.objects.filter(site=site, market=PowerMarket.REAL_TIME, interval_start__gt=since,
                                  interval_start__lte=latest.interval_start,
                                  interval_minutes=latest.interval_minutes)
        .order_by("interval_start").values_list("interval_start", "usd_per_mwh")
    )  # fmt: skip
    tz = getattr(site, "timezone", "") or "UTC"
    minutes = latest.interval_minutes
    model = DriftNowcast(slots_per_day=MAX_MINUTES // minutes)
    times = [r[0] for r in rows]
    prices = np.array([float(r[1]) for r in rows])
    slots = [slot_of(t, step_minutes=minutes, tz=tz) for t in times]
    # Learn only from runs of consecutive intervals (a gap would pair prices an hour or a day apart).
    for i in range(2, len(rows)):
        if times[i] - times[i - 2] == 2 * step:
            model.observe(slot=slots[i], last=prices[i - 1], previous=prices[i - 2], actual=prices[i])
    last = float(latest.usd_per_mwh)
    previous = float(prices[-2]) if len(rows) >= 2 and times[-1] - times[-2] == step else last
    slot = slot_of(latest.interval_start + step, step_minutes=minutes, tz=tz)
    estimate = model.predict(slot=slot, last=last, previous=previous)
    return estimate, {"last_usd_per_mwh": round(last, 2), "previous_usd_per_mwh": round(previous, 2),
                      "drift_usd_per_mwh": round(estimate - last, 2), "history_intervals": len(rows)}  # fmt: skip


def plan_cap(site_id: int, at: datetime, model: optimizer.SiteModel) -> tuple[float | None, str | None]:
    """The kW cap of the SENT plan covering ``at`` (``cap_kw``, or ``curtail_pct`` of the full load), if any."""
    plan = (
        CurtailmentPlan.objects.filter(site_id=site_id, status=CurtailmentPlan.Status.SENT, starts_at__lte=at)
        .order_by("-starts_at").first()
    )  # fmt: skip
    if plan is None:
        return None, None
    hour = int((at - plan.starts_at).total_seconds() // 3600)
    if hour >= plan.hours:
        return None, None
    c = (plan.inputs or {}).get("constraints") or {}
    caps = []
    for key in ("cap_kw", "curtail_pct"):
        value = c.get(key)
        if isinstance(value, list):
            value = value[hour] if hour < len(value) else None
        if value is None:
            continue
        caps.append(float(value) if key == "cap_kw" else model.full_kw * (1 - float(value) / 100))
    if not caps:
        return None, None
    return min(caps), f"plan #{plan.pk}"
