"""Rollback: the inverse of a finished command, proposed like any other (scored, safety-checked, approved).

What is undone is what the command changed on the targets that succeeded, from the state recorded before it ran:
the edge's own reading just before it acted (``CommandTarget.before_state["edge"]``: ``pool_url``, ``pool_worker``,
``fan_percent`` — a number or ``"auto"`` —, ``power_mode``), falling back, key by key, on the live layer's reading
frozen at proposal (``before_state`` itself). ``commands.risk.inverse`` / ``inverse_groups`` turn that into
commands: disable ↔ enable, the previous pool, fan duty or power mode. Targets that had different states before
need different commands (two fans at 60 % and 80 %): one rollback is then a *group* of commands, one per earlier
state, all proposed in one transaction (all or none) with ``rollback_of`` set, each scored and approved on its own.

The original moves to ROLLED_BACK when its rollback has run, not when it is proposed: when every target that
succeeded has been restored by a rollback command acknowledged ok (``rollback_settle``, called by the
acknowledgement). A rollback that fails, times out, is denied or cancelled leaves the original COMPLETED/PARTIAL,
and a new rollback may be asked for; it leaves out the targets already restored.

Refusals, all 409 with a code: ``no_inverse`` (MINER_RESTART; CURTAIL ends with its window), ``not_finished``
(only COMPLETED or PARTIAL commands), ``already_rolled_back``, ``rollback_pending`` (a rollback of it is still
live), ``nothing_to_roll_back`` (no target left to restore), ``no_previous_state`` / ``invalid_previous_state``
(naming the targets). Who may: whoever may propose on the site (CURTAILMENT FULL and a manage grant); hidden → 404."""

from __future__ import annotations

from django.db import transaction

from commands import risk, services
from commands.models import LIVE_STATUSES, Command, CommandStatus, CommandTarget, TargetResult
from hashinsight.core.errors import DomainError

S = CommandStatus
ROLLBACKABLE = (S.COMPLETED, S.PARTIAL)
# A rollback command that ran (its ok targets are restored).
RAN = (S.COMPLETED, S.PARTIAL)
# The settings an inverse reads (commands.risk.inverse), edge names.
STATE_KEYS = ("pool_url", "pool_worker", "pool_password", "fan_percent", "power_mode")


def _refuse(code: str, message: str, **details) -> DomainError:
    return DomainError(code, message, status=409, details=details or None)


def recorded_state(target: CommandTarget) -> dict:
    """What was recorded on ``target`` before its command ran: the edge's values, else the proposal's."""
    before = target.before_state if isinstance(target.before_state, dict) else {}
    edge = before.get("edge") if isinstance(before.get("edge"), dict) else {}
    state = {key: before[key] for key in STATE_KEYS if before.get(key) is not None}
    state.update({key: edge[key] for key in STATE_KEYS if edge.get(key) is not None})
    return state


def _restored_miner_ids(original: Command) -> set[int]:
    return set(
        CommandTarget.objects.filter(
            command__rollback_of=original, command__status__in=RAN, result_status=TargetResult.OK
        ).values_list("miner_id", flat=True)
    )


def command_rollback(*, command: Command, actor, reason: str = "") -> services.Proposed:
    """Propose the inverse of ``command`` (see the module docstring). Returns the first rollback command with the
    others of its group in ``others`` (``Proposed.commands``: all of them, in group order)."""
    reason = (reason or "").strip()[:500]
    with transaction.atomic():
        original = services._locked(command)
        services._require_visible(actor, original)
        services._require_manager(actor, original.site_id)
        kind = original.command_type
        if kind == risk.MINER_RESTART:
            raise _refuse("no_inverse", "A restart cannot be undone.")
        if kind == risk.CURTAIL:
            raise _refuse("no_inverse", "A curtailment ends with its window; cancel it before it is dispatched.")
        if original.status == S.ROLLED_BACK:
            raise _refuse("already_rolled_back", "This command has already been rolled back.")
        if original.status not in ROLLBACKABLE:
            raise _refuse(
                "not_finished",
                f"Only a completed or partly completed command can be rolled back; this one is {original.status}.",
                status=original.status,
            )
        pending = list(original.rollbacks.filter(status__in=LIVE_STATUSES).values_list("pk", flat=True))
        if pending:
            raise _refuse("rollback_pending", "A rollback of this command is already under way.", rollback_ids=pending)
        restored = _restored_miner_ids(original)
        succeeded = [t for t in original.targets.all() if t.result_status == TargetResult.OK]
        gone = [t.serial for t in succeeded if t.miner_id is None]  # the miner was deleted since: nothing to act on
        targets = [t for t in succeeded if t.miner_id is not None and t.miner_id not in restored]
        if not targets:
            raise _refuse(
                "nothing_to_roll_back",
                "No target of this command is left to restore (none succeeded, or all are restored or deleted).",
            )
        states = {t.miner_id: recorded_state(t) for t in targets}
        problems = []
        for target in targets:
            try:
                risk.inverse(kind, original.params, states[target.miner_id])
            except risk.RiskInputError as exc:
                problems.append({"serial": target.serial, **exc.as_dict()})
        if problems:
            unknown = all(p["code"] == "no_previous_state" for p in problems)
            raise _refuse(
                "no_previous_state" if unknown else "invalid_previous_state",
                "Nothing usable was recorded before execution for some targets: "
                + ", ".join(p["serial"] for p in problems[:10]),
                targets=problems,
            )
        groups = risk.inverse_groups(kind, original.params, states)
        proposed = []
        for inverse_type, inverse_params, miner_ids in groups:
            result = services.command_propose(
                actor=actor,
                type=inverse_type,
                params=inverse_params,
                targets=sorted(miner_ids),
                site_id=original.site_id,
                priority=original.priority,
                rollback_of=original,
            )
            proposed.append(result.command)
        services._audit(
            event_type="command.rollback_proposed",
            command=original,
            actor=actor,
            payload={
                "rollback_ids": [c.pk for c in proposed],
                "reason": reason,
                "targets": [t.miner_id for t in targets],
                "skipped_deleted": gone,
                "skipped_restored": sorted(m for m in restored if m is not None),
            },
        )
        services._publish(original, previous=original.status)  # its detail now lists the rollbacks
    return services.Proposed(proposed[0], created=True, others=tuple(proposed[1:]))


def rollback_settle(*, rollback: Command, actor=None, actor_kind: str = "system") -> bool:
    """After ``rollback`` finished (in the acknowledgement's transaction): move its original to ROLLED_BACK
    when every target of the original that succeeded has been restored. Returns whether it moved."""
    if rollback.rollback_of_id is None or rollback.status not in RAN:
        return False
    original = Command.objects.select_for_update().get(pk=rollback.rollback_of_id)
    if original.status not in ROLLBACKABLE:
        return False
    succeeded = set(
        original.targets.filter(result_status=TargetResult.OK, miner__isnull=False).values_list("miner_id", flat=True)
    )
    if succeeded - _restored_miner_ids(original):
        return False
    ids = sorted(original.rollbacks.filter(status__in=RAN).values_list("pk", flat=True))
    services._move(
        original,
        S.ROLLED_BACK,
        actor=actor,
        actor_kind=actor_kind,
        reason="rolled back by " + ", ".join(f"#{pk}" for pk in ids),
        payload={"rollback_ids": ids},
    )
    return True
