"""Command lifecycle writes: propose, approve, deny, cancel, expire.

Every function runs in one transaction that changes the rows, appends the outbox event
(``command.created`` / ``command.updated``) and the audit event together. Commands belong to the
CURTAILMENT module (the matrix's "execution" column): owners, admins and site owners have FULL, hosting
clients, app customers and guests none, so they neither see nor propose commands. Which sites: the scope
selectors (hidden → 404, read-only grant → 403 ``site_read_only``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from commands import risk
from commands.models import (
    LIVE_STATUSES,
    Approval,
    Command,
    CommandStatus,
    CommandTarget,
    Decision,
    ProposerKind,
    SiteApprovalPolicy,
)
from commands.state import transition
from hashinsight.accounts.roles import GLOBAL_ROLES, Access, Module, has_access, role_of
from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from hashinsight.events.audit import audit_append

S = CommandStatus
MODULE = Module.CURTAILMENT
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(days=7)
MAX_TARGETS = 10_000
# Used when the market history cannot be read: about USD 0.05 per TH/s per day (the 2025 level).
FALLBACK_HASHPRICE_USD_PER_TH_DAY = Decimal("0.05")
# With no auto-approval rule of its own, a site runs LOW commands without approval (DESIGN: "LOW auto").
# A site that wants every command approved sets ``min_tiers = {"*": "MEDIUM"}`` in its policy.
DEFAULT_AUTO_RULES = (risk.AutoApproveRule(name="default: LOW runs without approval"),)
# Commands the expiry job times out: not yet approved, approved but never sent, or sent and never acknowledged.
EXPIRABLE = (S.PENDING_APPROVAL, S.APPROVED, S.DISPATCHED)


def _not_found() -> DomainError:
    return DomainError("not_found", "Not found.", status=404)


# ---------------------------------------------------------------------------------------------------
# Audit


def _audit(*, event_type: str, command: Command, actor=None, actor_kind: str | None = None, payload=None) -> None:
    """Append the change to the audit chain (hashinsight.events.audit), in the caller's transaction."""
    if actor_kind is None:
        actor_kind = "user" if actor is not None else "system"
    audit_append(
        event_type=event_type,
        actor_type=actor_kind,
        actor_id=getattr(actor, "pk", None),
        reference=f"command:{command.pk}",
        payload={"command_id": command.pk, "status": command.status, "type": command.command_type, **(payload or {})},
        site=command.site_id,
    )


def _approval_count(command: Command) -> int:
    return command.approvals.filter(decision=Decision.APPROVE).count()


def _publish(command: Command, *, created: bool = False, previous: str | None = None) -> None:
    outbox.publish(
        "command.created" if created else "command.updated",
        aggregate=f"command:{command.pk}",
        payload={
            "command_id": command.pk,
            "site_id": command.site_id,
            "status": command.status,
            "command_type": command.command_type,
            "previous_status": previous,
            "risk_tier": command.risk_tier,
            "approvals": _approval_count(command),
            "approvals_required": command.approvals_required,
            "verification": command.verification,
        },
    )


def _move(command: Command, to: str, *, actor=None, actor_kind=None, reason: str = "", payload=None) -> None:
    previous = transition(command, to, reason=reason)
    _publish(command, previous=previous)
    _audit(
        event_type=f"command.{str(to).lower()}",
        command=command,
        actor=actor,
        actor_kind=actor_kind,
        payload={"from": previous, "to": str(to), "reason": reason, **(payload or {})},
    )


# ---------------------------------------------------------------------------------------------------
# Who may do what


def can_see_site(user, site_id: int) -> bool:
    from sites.selectors import site_list

    return has_access(user, MODULE, Access.READ) and site_list(user=user).filter(pk=site_id).exists()


def _require_visible(user, command: Command) -> None:
    if not can_see_site(user, command.site_id):
        raise _not_found()


def _require_manager(user, site_id: int) -> None:
    """FULL on CURTAILMENT and a manage grant on the site (the site is already known to be visible)."""
    from sites.selectors import require_site_manageable

    if not has_access(user, MODULE, Access.FULL):
        raise DomainError("permission_denied", "Your role may not act on commands.", status=403)
    require_site_manageable(user=user, site_id=site_id)


# ---------------------------------------------------------------------------------------------------
# Targets and figures


@dataclass(frozen=True)
class Resolved:
    site: Any
    miners: list


def resolve_targets(*, actor, targets, site_id: int | None = None) -> Resolved:
    """Miners named by ids, serials, a zone or a site, within ``actor``'s scope, all of one site."""
    from miners.models import Miner
    from sites.selectors import miner_scope_q, site_list, zone_list

    qs = Miner.objects.select_related("model", "site")
    scope = miner_scope_q(actor)
    if scope is not None:
        qs = qs.filter(scope)
    if isinstance(targets, list):
        ids = [t for t in targets if isinstance(t, int) and not isinstance(t, bool)]
        serials = [t for t in targets if isinstance(t, str)]
        if len(ids) + len(serials) != len(targets):
            raise DomainError("invalid_targets", "Targets are miner ids (numbers) or serials (text).")
        targets = {"miner_ids": ids, "serials": serials}
    if not isinstance(targets, dict) or not targets:
        raise DomainError(
            "invalid_targets", "Give targets as a list of miner ids or serials, or as {zone: id} or {site: id}."
        )
    unknown = set(targets) - {"miner_ids", "serials", "zone", "site"}
    if unknown:
        raise DomainError("invalid_targets", f"Unknown target keys: {', '.join(sorted(map(str, unknown)))}.")
    miners: dict[int, Any] = {}
    ids = targets.get("miner_ids") or []
    serials = targets.get("serials") or []
    if not isinstance(ids, list) or not isinstance(serials, list) or len(ids) + len(serials) > MAX_TARGETS:
        raise DomainError("invalid_targets", f"At most {MAX_TARGETS:,} miner ids and serials, as lists.")
    if ids:
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise DomainError("invalid_targets", "miner_ids are numbers.")
        found = {m.pk: m for m in qs.filter(pk__in=ids)}
        if len(found) != len(set(ids)):
            raise DomainError("miner_not_found", "Some target miners were not found.", status=404)
        miners.update(found)
    if serials:
        if not all(isinstance(s, str) for s in serials):
            raise DomainError("invalid_targets", "serials are text.")
        found = {m.pk: m for m in qs.filter(serial__in=serials)}
        if len(found) != len(set(serials)):
            raise DomainError("miner_not_found", "Some target miners were not found.", status=404)
        miners.update(found)
    for key, selector, field in (("zone", zone_list, "zone_id"), ("site", site_list, "site_id")):
        if key in targets:
            value = targets[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise DomainError("invalid_targets", f"{key} is an id (a number).")
            if not selector(user=actor).filter(pk=value).exists():
                raise DomainError(f"{key}_not_found", "Not found.", status=404)
            group = list(qs.filter(**{field: value}).exclude(status="retired")[: MAX_TARGETS + 1])
            if len(group) > MAX_TARGETS:
                raise DomainError("too_many_targets", f"A command has at most {MAX_TARGETS:,} targets.")
            miners.update({m.pk: m for m in group})
    if not miners:
        raise DomainError("no_targets", "The targets name no miner.")
    site_ids = {m.site_id for m in miners.values()}
    if len(site_ids) > 1:
        raise DomainError(
            "targets_span_sites",
            "A command acts on one site; its targets stand on several.",
            details={"site_ids": sorted(site_ids)},
        )
    (target_site_id,) = site_ids
    if site_id is not None and target_site_id != site_id:
        raise DomainError("targets_outside_site", "The targets do not stand on the given site.")
    ordered = sorted(miners.values(), key=lambda m: m.pk)
    return Resolved(site=ordered[0].site, miners=ordered)


def hashprice_usd_per_th_day() -> Decimal:
    """USD one TH/s earns per day at the latest market figures (intelligence.market), before pool fees."""
    from intelligence.algorithms import hashprice
    from intelligence.market import latest_snapshot

    try:
        snap = latest_snapshot()
    except (OSError, RuntimeError, ValueError):
        return FALLBACK_HASHPRICE_USD_PER_TH_DAY
    per_th = hashprice.hashprice_usd_per_th_day(
        snap.btc_price_usd, snap.difficulty, snap.block_subsidy_btc, snap.fees_btc_per_block
    )
    return Decimal(per_th).quantize(Decimal("0.000001"))


def success_rate(*, site_id: int, command_type: str) -> Decimal | None:
    """Share of this type's dispatched commands at this site that completed (None with no history)."""
    done = Command.objects.filter(site_id=site_id, command_type=command_type, dispatched_at__isnull=False).filter(
        status__in=(S.COMPLETED, S.PARTIAL, S.FAILED, S.TIMEOUT, S.ROLLED_BACK)
    )
    # One query for both counts: two separate counts raced with commands finishing in between (ok > total).
    counts = done.aggregate(total=Count("pk"), ok=Count("pk", filter=Q(status__in=(S.COMPLETED, S.ROLLED_BACK))))
    if not counts["total"]:
        return None
    return (Decimal(counts["ok"]) / Decimal(counts["total"])).quantize(Decimal("0.0001"))


def _policy(site_id: int) -> SiteApprovalPolicy | None:
    return SiteApprovalPolicy.objects.filter(site_id=site_id).first()


def _parse_time(value, where: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise DomainError("invalid_policy", f"{where}: a time is HH:MM.", status=500) from None


def auto_rules(policy: SiteApprovalPolicy | None, site_tz: str) -> tuple[risk.AutoApproveRule, ...]:
    if policy is None or not policy.auto_approve_rules:
        return DEFAULT_AUTO_RULES
    rules = []
    for raw in policy.auto_approve_rules:
        windows = tuple(
            risk.TimeWindow(_parse_time(w.get("start"), "start"), _parse_time(w.get("end"), "end"))
            for w in raw.get("windows") or ()
        )
        types = raw.get("action_types")
        rules.append(
            risk.AutoApproveRule(
                name=raw.get("name", ""),
                action_types=frozenset(types) if types is not None else None,
                max_targets=raw.get("max_targets"),
                max_kw=raw.get("max_kw"),
                min_confidence=raw.get("min_confidence"),
                windows=windows,
                tz=raw.get("tz") or site_tz,
            )
        )
    return tuple(rules)


def _open_safety_miner_ids(miner_ids) -> set[int]:
    from telemetry.alert_types import SAFETY_PREFIX
    from telemetry.models import Alert, AlertStatus

    return set(
        Alert.objects.filter(miner_id__in=miner_ids, alert_type__startswith=SAFETY_PREFIX)
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("miner_id", flat=True)
    )


def _live_by_miner(miner_ids) -> dict[int, Any]:
    from telemetry.models import LiveStatus

    return {row.miner_id: row for row in LiveStatus.objects.filter(miner_id__in=miner_ids)}


def _kw(watts) -> Decimal:
    return (Decimal(str(watts)) / 1000).quantize(Decimal("0.001"))


def _before_state(live) -> dict:
    """The live layer's reading at proposal, frozen on the target. The settings use the edge's before_state
    names (``pool_url``, ``fan_percent``, ``power_mode``; absent when unknown), so a rollback falls back on them
    when the edge recorded nothing (``commands.rollback``)."""
    if live is None:
        return {}
    state = {
        "status": live.status,
        "hashrate_ghs": live.hashrate_ghs,
        "power_w": live.power_w,
        "temp_chip_max_c": live.temp_chip_max_c,
        "last_seen": live.last_seen.isoformat() if live.last_seen else None,
    }
    if getattr(live, "pool_url", ""):
        state["pool_url"] = live.pool_url
    if getattr(live, "fan_pct", None) is not None:
        state["fan_percent"] = live.fan_pct
    if getattr(live, "power_mode", ""):
        state["power_mode"] = live.power_mode
    return state


@dataclass
class Assessment:
    """What ``assess`` found: the engine's answer, its inputs and the refusals of the safety guards."""

    site: Any
    miners: list
    command_type: str
    params: dict
    risk_input: risk.RiskInput
    assessment: risk.RiskAssessment
    refusals: list
    live: dict
    policy: SiteApprovalPolicy | None
    # CURTAIL only: the engine's plan (soft power targets before hard stops) and each target's frozen part of it.
    plan: risk.CurtailPlan | None = None
    actions: dict = dataclass_field(default_factory=dict)  # miner id → {"action", "power_w"}

    def preview(self) -> dict:
        a = self.assessment
        who = "nobody (auto-approved)" if a.tier == risk.LOW else (
            f"{a.approvals_required} distinct approver(s)" + (", owners or admins only" if a.owner_admin_only else "")
        )  # fmt: skip
        return {
            "site_id": self.site.pk,
            "command_type": self.command_type,
            "params": _public_params(self.params),
            "target_count": len(self.miners),
            "power_kw": str(self.risk_input.power_kw),
            "revenue_usd_per_day": str(self.risk_input.revenue_usd_per_day),
            "score": str(a.score),
            "tier": a.tier,
            "approvals_required": a.approvals_required,
            "owner_admin_only": a.owner_admin_only,
            "who_must_approve": who,
            "breakdown": a.as_dict(),
            "refusals": [r.as_dict() for r in self.refusals],
            **({"curtail_plan": self.curtail_plan()} if self.plan is not None else {}),
        }

    def curtail_plan(self) -> dict:
        """The plan as the preview shows it: totals, then one row per target (``none``: left running)."""
        by_id = {a.miner_id: a for a in self.plan.actions}
        rows = []
        for miner in self.miners:
            action, found = self.actions[miner.pk], by_id.get(miner.pk)
            rows.append(
                {
                    "miner_id": miner.pk,
                    "serial": miner.serial,
                    **action,
                    "power_kw_before": str(found.power_kw_before) if found else None,
                    "saved_kw": str(found.saved_kw) if found else "0.000",
                }
            )
        counts = {kind: sum(1 for r in rows if r["action"] == kind) for kind in CURTAIL_ACTIONS}
        return {
            "mode": self.params.get("mode", "soft"),
            "requested_kw": str(self.plan.requested_kw.quantize(Decimal("0.001"))),
            "planned_kw": str(self.plan.planned_kw),
            "shortfall_kw": str(self.plan.shortfall_kw.quantize(Decimal("0.001"))),
            "counts": counts,
            "targets": rows,
        }


def _public_params(params: dict) -> dict:
    return {k: ("********" if k == "password" else v) for k, v in params.items()}


def assess(
    *,
    actor,
    command_type,
    params,
    targets,
    site_id: int | None = None,
    proposer_kind: str = ProposerKind.USER,
    ai_confidence=None,
    now: datetime | None = None,
) -> Assessment:
    """Everything a proposal is checked against, without writing: the preview and ``command_propose`` share it."""
    now = now or timezone.now()
    if not has_access(actor, MODULE, Access.FULL):
        raise DomainError("permission_denied", "Your role may not propose commands.", status=403)
    if proposer_kind not in ProposerKind.values:
        raise DomainError("invalid_choice", f"proposer_kind is one of {', '.join(ProposerKind.values)}.")
    try:
        kind = risk.canonical_type(command_type)
        clean = risk.validate_params(kind, params, now=now)
    except risk.RiskInputError as exc:
        raise DomainError(exc.code, exc.message, details=exc.as_dict()) from None
    if site_id is not None and not can_see_site(actor, site_id):
        raise _not_found()
    resolved = resolve_targets(actor=actor, targets=targets, site_id=site_id)
    _require_manager(actor, resolved.site.pk)
    miner_ids = [m.pk for m in resolved.miners]
    live = _live_by_miner(miner_ids)
    power_kw = sum((_kw(m.model.power_w) for m in resolved.miners), Decimal(0))
    ths = sum((m.model.hashrate_ths for m in resolved.miners), Decimal(0))
    policy = _policy(resolved.site.pk)
    risk_input = risk.RiskInput(
        command_type=kind,
        target_count=len(resolved.miners),
        power_kw=power_kw,
        proposer=proposer_kind,
        ai_confidence=ai_confidence,
        revenue_usd_per_day=(ths * hashprice_usd_per_th_day()).quantize(Decimal("0.01")),
        success_rate=success_rate(site_id=resolved.site.pk, command_type=kind),
        policy=policy.min_tiers if policy else None,
        params=clean,
    )
    try:
        assessment = risk.score(risk_input)
    except risk.RiskInputError as exc:
        raise DomainError(exc.code, exc.message, details=exc.as_dict()) from None
    shut = _open_safety_miner_ids(miner_ids)
    states = [
        risk.TargetState(
            miner_id=m.pk,
            chip_temp_c=getattr(live.get(m.pk), "temp_chip_max_c", None),
            safety_shutdown_open=m.pk in shut,
            power_kw=_kw(live[m.pk].power_w) if m.pk in live and live[m.pk].power_w is not None else None,
            nominal_power_kw=_kw(m.model.power_w),
        )
        for m in resolved.miners
    ]
    limits = risk.SiteLimits()
    if policy is not None:
        site_kw = None
        if policy.contracted_min_kw is not None:
            from telemetry.models import LiveStatus

            watts = LiveStatus.objects.filter(site_id=resolved.site.pk).aggregate(w=Sum("power_w"))["w"]
            site_kw = None if watts is None else _kw(watts)
        limits = risk.SiteLimits(
            fan_floor_pct=policy.fan_floor_pct,
            chip_temp_limit_c=policy.chip_limit_c,
            contracted_min_kw=policy.contracted_min_kw,
            current_site_kw=site_kw,
        )
    refusals = risk.safety_check(risk.CommandSpec(kind, clean), states, limits)
    found = Assessment(resolved.site, resolved.miners, kind, clean, risk_input, assessment, refusals, live, policy)
    if kind == risk.CURTAIL:
        found.plan, found.actions = _curtail_plan(resolved.miners, live, clean)
    return found


CURTAIL_ACTIONS = ("power_target", "stop", "none")
SOFT_FLOOR_OF_NAMEPLATE = Decimal("0.5")


def _curtail_plan(miners, live, params) -> tuple[risk.CurtailPlan, dict]:
    """Per target: a soft power target, a hard stop or nothing (``commands.risk.curtail_plan``), from the live
    draw (nameplate when unknown) and the model's efficiency (J/TH: least efficient first). Every miner is
    assumed to accept a power target; where its adapter cannot, the edge falls back to a hard stop and says so."""
    states = []
    for m in miners:
        row = live.get(m.pk)
        states.append(
            risk.TargetState(
                miner_id=m.pk,
                power_kw=_kw(row.power_w) if row is not None and row.power_w is not None else None,
                nominal_power_kw=_kw(m.model.power_w),
                supports_power_target=True,
                # Half the nameplate, not half the current draw: a miner already in low power mode would be
                # planned below what firmware accepts (the simulator refuses under 40 % of nameplate).
                soft_min_power_kw=_kw(m.model.power_w) * SOFT_FLOOR_OF_NAMEPLATE,
                efficiency_j_per_th=(m.model.power_w / m.model.hashrate_ths) if m.model.hashrate_ths else None,
            )
        )
    try:
        plan = risk.curtail_plan(states, risk.curtail_kw(params, states), params.get("mode", "soft"))
    except risk.RiskInputError as exc:  # a percent of targets that draw nothing now
        raise DomainError("nothing_to_curtail", f"Nothing to curtail: {exc.message}.", details=exc.as_dict()) from None
    actions = {m.pk: {"action": "none", "power_w": None} for m in miners}
    for step in plan.actions:
        watts = int((step.power_kw_after * 1000).to_integral_value()) if step.action == "power_target" else None
        actions[step.miner_id] = {"action": step.action, "power_w": watts}
    return plan, actions


# ---------------------------------------------------------------------------------------------------
# Lifecycle


@dataclass(frozen=True)
class Proposed:
    command: Command
    created: bool  # False: an existing live command with the same dedupe key was returned
    # A rollback needing several inverse commands (one per earlier state): the others, after ``command``.
    others: tuple = ()

    @property
    def commands(self) -> list:
        return [self.command, *self.others]


def command_propose(
    *,
    actor,
    type,  # the API's own word
    params=None,
    targets,
    site_id: int | None = None,
    priority: int = 5,
    dedupe_key: str = "",
    proposer_kind: str = ProposerKind.USER,
    ai_confidence=None,
    expires_at: datetime | None = None,
    rollback_of: Command | None = None,
) -> Proposed:
    now = timezone.now()
    dedupe_key = (dedupe_key or "").strip()
    if len(dedupe_key) > 128:
        raise DomainError("invalid_dedupe_key", "A dedupe key has at most 128 characters.")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise DomainError("invalid_priority", "Priority is a whole number from 0 (lowest) to 9.")
    explicit_expiry = expires_at is not None
    if expires_at is None:
        expires_at = now + DEFAULT_TTL
    elif expires_at <= now or expires_at > now + MAX_TTL:
        raise DomainError("invalid_expiry", "A command expires after now and within 7 days.")
    found = assess(
        actor=actor,
        command_type=type,
        params=params,
        targets=targets,
        site_id=site_id,
        proposer_kind=proposer_kind,
        ai_confidence=ai_confidence,
        now=now,
    )
    not_before = None
    if found.command_type == risk.CURTAIL:
        not_before, expires_at = _curtail_timing(found.params, now, expires_at if explicit_expiry else None)
    if dedupe_key:
        existing = _live_duplicate(found.site.pk, dedupe_key)
        if existing is not None:
            return Proposed(_same_intent(existing, found), created=False)
    if found.refusals:
        raise DomainError(
            "unsafe_command",
            "The safety guards refuse this command whatever its approvals.",
            details={"refusals": [r.as_dict() for r in found.refusals]},
        )
    try:
        with transaction.atomic():
            command = _create(
                found, actor, now, priority, dedupe_key, proposer_kind, ai_confidence, expires_at, rollback_of,
                not_before,
            )  # fmt: skip
    except IntegrityError:
        # Another request with the same dedupe key committed first: its command is the answer.
        existing = _live_duplicate(found.site.pk, dedupe_key) if dedupe_key else None
        if existing is None:
            raise
        return Proposed(_same_intent(existing, found), created=False)
    return Proposed(command, created=True)


def _curtail_timing(params: dict, now: datetime, expires_at: datetime | None) -> tuple[datetime, datetime]:
    """A CURTAIL is not sent before its window starts (``not_before``), and must be taken and acknowledged
    after that: by default within an hour of the start (never sooner than an hour from now, never after the
    window's end unless that is within the hour, at most ``MAX_TTL`` from now). A given expiry must fall after
    the start; a window starting further away than ``MAX_TTL`` is refused (propose it later)."""
    start = datetime.fromisoformat(params["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(params["end"].replace("Z", "+00:00"))
    if start >= now + MAX_TTL:
        raise DomainError("window_too_far", "A curtailment starts within 7 days of its proposal; propose it later.")
    if expires_at is not None:
        if expires_at <= max(start, now):
            raise DomainError("invalid_expiry", "A curtailment expires after its window starts.")
        return start, expires_at
    default = max(now + DEFAULT_TTL, min(start + DEFAULT_TTL, end))
    return start, min(default, now + MAX_TTL)


def _live_duplicate(site_id: int, dedupe_key: str) -> Command | None:
    return Command.objects.filter(site_id=site_id, dedupe_key=dedupe_key, status__in=LIVE_STATUSES).first()


def _same_intent(existing: Command, found: Assessment) -> Command:
    if existing.command_type != found.command_type or existing.params != found.params:
        raise DomainError(
            "dedupe_conflict",
            "A live command with this dedupe key has another type or parameters.",
            status=409,
            details={"command_id": existing.pk},
        )
    return existing


def _create(
    found, actor, now, priority, dedupe_key, proposer_kind, ai_confidence, expires_at, rollback_of, not_before=None
) -> Command:
    a = found.assessment
    command = Command.objects.create(
        site=found.site,
        command_type=found.command_type,
        params=found.params,
        dedupe_key=dedupe_key,
        proposer=actor,
        proposer_kind=proposer_kind,
        ai_confidence=Decimal(str(ai_confidence)) if proposer_kind == ProposerKind.AI else None,
        risk_score=a.score,
        risk_tier=a.tier,
        risk_breakdown={
            **a.as_dict(),
            "inputs": {
                "target_count": found.risk_input.target_count,
                "power_kw": str(found.risk_input.power_kw),
                "revenue_usd_per_day": str(found.risk_input.revenue_usd_per_day),
                "success_rate": None if found.risk_input.success_rate is None else str(found.risk_input.success_rate),
            },
            **(
                {"curtail_plan": {k: v for k, v in found.curtail_plan().items() if k != "targets"}}
                if found.plan
                else {}
            ),
        },
        approvals_required=a.approvals_required,
        owner_admin_only=a.owner_admin_only,
        priority=priority,
        expires_at=expires_at,
        not_before=not_before,
        rollback_of=rollback_of,
    )
    CommandTarget.objects.bulk_create(
        CommandTarget(
            command=command,
            miner=m,
            serial=m.serial,
            before_state=_before_state(found.live.get(m.pk)),
            action=found.actions.get(m.pk, {}),
        )
        for m in found.miners
    )
    _publish(command, created=True)
    kind_of_actor = "ai" if proposer_kind == ProposerKind.AI else ("user" if actor is not None else "system")
    _audit(
        event_type="command.proposed",
        command=command,
        actor=actor,
        actor_kind=kind_of_actor,
        payload={
            "params": _public_params(found.params),
            "targets": [m.pk for m in found.miners],
            "score": str(a.score),
            "tier": a.tier,
            "dedupe_key": dedupe_key,
            **({"curtail_plan": found.curtail_plan()["counts"]} if found.plan is not None else {}),
        },
    )
    allowed, why = (False, "")
    if a.tier == risk.LOW:
        rules = auto_rules(found.policy, getattr(found.site, "timezone", "UTC") or "UTC")
        try:
            allowed, why = risk.auto_approve(a, rules, now, found.risk_input)
        except risk.RiskInputError as exc:
            message = f"The site's auto-approval rules are broken: {exc.message}"
            raise DomainError("invalid_policy", message, status=500) from None
    if allowed:
        Approval.objects.create(command=command, approver=None, decision=Decision.APPROVE, reason=why[:500])
        _move(command, S.APPROVED, actor_kind="system", reason=why)
    else:
        _move(command, S.PENDING_APPROVAL, actor_kind="system", reason=why)
    return command


def _locked(command: Command) -> Command:
    # Lock the command row only: with the site row locked too, a concurrent writer committing a command of the
    # same site (its foreign-key check needs that row) while this one waits for the audit chain's lock
    # deadlocked (bench/commands_concurrency.py: 155–532 deadlocks per 1,000 proposals before).
    return Command.objects.select_for_update(of=("self",)).select_related("site").get(pk=command.pk)


def _require_approver(actor, command: Command) -> None:
    _require_visible(actor, command)
    _require_manager(actor, command.site_id)
    if command.proposer_id is not None and command.proposer_id == getattr(actor, "pk", None):
        raise DomainError("self_approval", "Nobody decides on their own command.", status=403)


def _require_pending(command: Command, to: str, now) -> None:
    if command.status != S.PENDING_APPROVAL:
        raise DomainError(
            "illegal_transition",
            f"A command cannot go from {command.status} to {to}: only commands pending approval take decisions.",
            status=409,
            details={"from": command.status, "to": to},
        )
    if command.expires_at <= now:
        raise DomainError("command_expired", "This command has expired; propose it again.", status=409)


def command_approve(*, command: Command, actor, reason: str = "") -> Command:
    now = timezone.now()
    with transaction.atomic():
        command = _locked(command)
        _require_approver(actor, command)
        if command.owner_admin_only and role_of(actor) not in GLOBAL_ROLES:
            raise DomainError(
                "owner_admin_only", "Only an owner or an administrator approves a CRITICAL command.", status=403
            )
        if command.approvals.filter(approver=actor).exists():
            raise DomainError("already_approved", "You have already decided on this command.", status=409)
        _require_pending(command, S.APPROVED, now)
        Approval.objects.create(command=command, approver=actor, decision=Decision.APPROVE, reason=(reason or "")[:500])
        count = command.approvals.filter(decision=Decision.APPROVE, approver__isnull=False).count()
        _audit(
            event_type="command.approval",
            command=command,
            actor=actor,
            payload={"approvals": count, "approvals_required": command.approvals_required},
        )
        if count >= max(1, command.approvals_required):
            _move(command, S.APPROVED, actor=actor, payload={"approvals": count})
        else:
            _publish(command, previous=command.status)
    return command


def command_deny(*, command: Command, actor, reason: str) -> Command:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "Say why the command is denied.")
    now = timezone.now()
    with transaction.atomic():
        command = _locked(command)
        _require_approver(actor, command)
        if command.approvals.filter(approver=actor).exists():
            raise DomainError("already_approved", "You have already decided on this command.", status=409)
        _require_pending(command, S.DENIED, now)
        Approval.objects.create(command=command, approver=actor, decision=Decision.DENY, reason=reason[:500])
        _move(command, S.DENIED, actor=actor, reason=reason)
    return command


def command_cancel(*, command: Command, actor, reason: str = "") -> Command:
    """The proposer, or anyone managing the site, cancels a command that has not been dispatched."""
    with transaction.atomic():
        command = _locked(command)
        _require_visible(actor, command)
        if command.proposer_id is None or command.proposer_id != getattr(actor, "pk", None):
            _require_manager(actor, command.site_id)
        _move(command, S.CANCELLED, actor=actor, reason=(reason or "").strip() or "cancelled")
    return command


def commands_expire(now: datetime | None = None) -> int:
    """Time out the commands past ``expires_at`` still waiting (approval, dispatch or acknowledgement).
    One short transaction per command; rows another transaction holds are left for the next run."""
    now = now or timezone.now()
    due = Command.objects.filter(status__in=EXPIRABLE, expires_at__lte=now).order_by("expires_at")
    ids = list(due.values_list("pk", flat=True)[:1000])
    expired = 0
    for pk in ids:
        with transaction.atomic():
            command = (
                Command.objects.select_for_update(skip_locked=True)
                .filter(Q(pk=pk), Q(status__in=EXPIRABLE), Q(expires_at__lte=now))
                .first()
            )
            if command is None:
                continue
            _move(command, S.TIMEOUT, actor_kind="system", reason="expired before it was done")
            expired += 1
    return expired


# ---------------------------------------------------------------------------------------------------
# Dispatch to the edge and acknowledgement (commands.dispatch builds the envelopes; the edge API calls these)

# What an edge device reports per miner → what the target records.
_EDGE_RESULT = {"ok": "ok", "failed": "failed", "unsupported": "failed"}
ACK_FINAL = (S.COMPLETED, S.PARTIAL, S.FAILED)


def command_mark_dispatched(*, command: Command, device) -> Command:
    """APPROVED → DISPATCHED for ``device``, recorded in ``dispatched_to`` (only it receives it again and
    acknowledges it). The caller's transaction holds the row lock; a command already dispatched is left as it
    is, for redelivery."""
    with transaction.atomic():
        command = _locked(command)
        if command.status == S.DISPATCHED:
            return command
        if command.expires_at <= timezone.now():
            raise DomainError("command_expired", "This command has expired.", status=409)
        command.dispatched_to = device
        _move(
            command,
            S.DISPATCHED,
            actor=device,
            actor_kind="device",
            payload={"device_id": device.pk, "targets": command.targets.count()},
        )
        command.save(update_fields=["dispatched_to"])
    return command


def _clean_results(command: Command, results) -> dict[str, dict]:
    """The edge's per-miner results keyed by serial (each target once, only this command's targets)."""
    if not isinstance(results, list):
        raise DomainError("invalid_results", "results is a list of {miner, status, message}.")
    serials = set(command.targets.values_list("serial", flat=True))
    out: dict[str, dict] = {}
    for item in results:
        if not isinstance(item, dict):
            raise DomainError("invalid_results", "Each result is an object {miner, status, message}.")
        serial, status = item.get("miner"), item.get("status")
        if not isinstance(serial, str) or serial not in serials:
            raise DomainError("invalid_results", "A result names a miner that is not a target of this command.")
        if serial in out:
            raise DomainError("invalid_results", f"Two results for miner {serial}.")
        if status not in _EDGE_RESULT:
            raise DomainError("invalid_results", "A result's status is ok, failed or unsupported.")
        message = item.get("message") or ""
        if not isinstance(message, str):
            raise DomainError("invalid_results", "A result's message is text.")
        before = item.get("before_state")
        if before is not None and not isinstance(before, dict):
            raise DomainError("invalid_results", "before_state is an object.")
        if status == "unsupported":
            message = f"unsupported: {message}"
        out[serial] = {"status": _EDGE_RESULT[status], "message": message[:500], "before_state": before}
    for serial in serials - set(out):
        out[serial] = {"status": "failed", "message": "no result reported by the edge", "before_state": None}
    return out


def command_acknowledge(*, command_id: int, device, nonce: str, results, visible) -> tuple[Command, bool]:
    """Record the edge's results and finish the command: COMPLETED (every target ok), PARTIAL, or FAILED (none).

    ``visible`` is the queryset of commands this device may know (commands.dispatch.device_commands): anything
    else, or a command never dispatched, is 404. The nonce must be the dispatch's. A repeated identical
    acknowledgement answers the command unchanged (``changed`` False); a different one after the end is 409."""
    from commands.dispatch import dispatch_nonce  # the nonce is derived from the dispatch, not stored

    now = timezone.now()
    with transaction.atomic():
        command = visible.select_for_update(of=("self",)).filter(pk=command_id).first()
        if command is None or command.dispatched_at is None:
            raise _not_found()
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), dispatch_nonce(command).encode()):
            raise DomainError("nonce_mismatch", "This nonce is not the one this command was sent with.", status=409)
        clean = _clean_results(command, results)
        targets = list(command.targets.all())
        if command.status in ACK_FINAL:
            same = all(
                t.result_status == clean[t.serial]["status"] and t.result_message == clean[t.serial]["message"]
                for t in targets
            )
            if same:
                return command, False
            raise DomainError(
                "already_acknowledged", "This command was already acknowledged with other results.", status=409
            )
        if command.status not in (S.DISPATCHED, S.ACKED):
            raise DomainError(
                "illegal_transition",
                f"A command in {command.status} takes no acknowledgement.",
                status=409,
                details={"from": command.status},
            )
        for target in targets:
            found = clean[target.serial]
            target.result_status = found["status"]
            target.result_message = found["message"]
            target.acked_at = now
            if found["before_state"] is not None:
                # The edge's own reading just before it acted, next to the telemetry frozen at proposal.
                target.before_state = {**(target.before_state or {}), "edge": found["before_state"]}
        CommandTarget.objects.bulk_update(targets, ["result_status", "result_message", "acked_at", "before_state"])
        ok = sum(1 for t in targets if t.result_status == "ok")
        to = S.COMPLETED if ok == len(targets) else (S.FAILED if ok == 0 else S.PARTIAL)
        summary = {"device_id": device.pk, "ok": ok, "failed": len(targets) - ok}
        _move(command, to, actor=device, actor_kind="device", reason=f"{ok}/{len(targets)} targets ok", payload=summary)
        if command.rollback_of_id is not None:
            from commands.rollback import rollback_settle  # rollback builds on this module

            rollback_settle(rollback=command, actor=device, actor_kind="device")
    return command, True


def command_acknowledge_restore(*, command_id: int, device, nonce: str, results, visible) -> tuple[Command, bool]:
    """The edge's report that it restored, at the window's end, what a CURTAIL changed (power targets cleared,
    hashing re-enabled). Accepted once, for a CURTAIL in COMPLETED or PARTIAL, from the device that took it
    (``visible``, as for ``command_acknowledge``) with the dispatch's nonce; recorded per target under
    ``CommandTarget.action["restore"]`` (``{"status", "message", "at"}``). A target without a result is
    ``skipped`` when there was nothing to restore (its part was ``none`` or it failed), else ``failed``.
    An identical resend answers the command unchanged (``changed`` False); any other later one is 409."""
    from commands.dispatch import dispatch_nonce

    now = timezone.now()
    with transaction.atomic():
        command = visible.select_for_update(of=("self",)).filter(pk=command_id).first()
        if command is None or command.dispatched_at is None:
            raise _not_found()
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), dispatch_nonce(command).encode()):
            raise DomainError("nonce_mismatch", "This nonce is not the one this command was sent with.", status=409)
        if command.command_type != risk.CURTAIL:
            raise DomainError("restore_not_applicable", "Only a curtailment reports a restore.", status=409)
        if command.status not in (S.COMPLETED, S.PARTIAL):
            raise DomainError(
                "restore_not_expected",
                f"A curtailment in {command.status} takes no restore report (only COMPLETED or PARTIAL).",
                status=409,
                details={"status": command.status},
            )
        reported = (
            {item.get("miner") for item in results if isinstance(item, dict)} if isinstance(results, list) else set()
        )
        clean = _clean_results(command, results)
        targets = list(command.targets.all())
        for target in targets:
            if target.serial not in reported:
                nothing = (target.action or {}).get("action", "none") == "none" or target.result_status != "ok"
                clean[target.serial] = (
                    {"status": "skipped", "message": "nothing to restore"}
                    if nothing
                    else {"status": "failed", "message": "no restore reported by the edge"}
                )
        done = [t for t in targets if isinstance((t.action or {}).get("restore"), dict)]
        if done:
            same = len(done) == len(targets) and all(
                t.action["restore"].get("status") == clean[t.serial]["status"]
                and t.action["restore"].get("message") == clean[t.serial]["message"]
                for t in targets
            )
            if same:
                return command, False
            raise DomainError(
                "already_restored", "This curtailment's restore was already reported with other results.", status=409
            )
        for target in targets:
            found = clean[target.serial]
            target.action = {
                **(target.action or {}),
                "restore": {"status": found["status"], "message": found["message"], "at": now.isoformat()},
            }
        CommandTarget.objects.bulk_update(targets, ["action"])
        counts = {
            key: sum(1 for t in targets if clean[t.serial]["status"] == key) for key in ("ok", "failed", "skipped")
        }
        _audit(
            event_type="command.curtail_restored",
            command=command,
            actor=device,
            actor_kind="device",
            payload={"device_id": device.pk, **counts},
        )
        _publish(command, previous=command.status)
    return command, True
