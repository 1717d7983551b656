"""The command state machine as data: which status may follow which. ``transition`` is the only writer of
``Command.status`` (services call it inside their transaction, with the row locked)."""

from __future__ import annotations

from django.utils import timezone

from commands.models import Command, CommandStatus
from hashinsight.core.errors import DomainError

S = CommandStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.CANCELLED, S.FAILED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.DENIED, S.CANCELLED, S.TIMEOUT}),
    S.APPROVED: frozenset({S.DISPATCHED, S.CANCELLED, S.TIMEOUT}),
    S.DISPATCHED: frozenset({S.ACKED, S.COMPLETED, S.PARTIAL, S.FAILED, S.TIMEOUT}),
    S.ACKED: frozenset({S.COMPLETED, S.PARTIAL, S.FAILED, S.TIMEOUT}),
    S.COMPLETED: frozenset({S.ROLLED_BACK}),
    S.PARTIAL: frozenset({S.ROLLED_BACK}),
    S.DENIED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMEOUT: frozenset(),
    S.ROLLED_BACK: frozenset(),
}
FINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)
# States after which the command has run (or was at least handed to the edge): no cancel any more.
FINISHED = frozenset({S.COMPLETED, S.PARTIAL, S.FAILED, S.TIMEOUT, S.ROLLED_BACK, S.DENIED, S.CANCELLED})


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(command: Command, to: str, *, reason: str = "", save: bool = True) -> str:
    """Move ``command`` to ``to`` or refuse (409 ``illegal_transition`` naming both states). Returns the
    previous status. Stamps ``dispatched_at`` / ``finished_at``; the caller holds the row lock."""
    previous = command.status
    if not can_transition(previous, to):
        raise DomainError(
            "illegal_transition",
            f"A command cannot go from {previous} to {to}.",
            status=409,
            details={"from": previous, "to": str(to), "allowed": sorted(TRANSITIONS.get(previous, ()))},
        )
    command.status = to
    now = timezone.now()
    fields = ["status", "updated_at"]
    if reason:
        command.status_reason = reason[:500]
        fields.append("status_reason")
    if to == S.DISPATCHED:
        command.dispatched_at = now
        fields.append("dispatched_at")
    if to in FINISHED:
        command.finished_at = now
        fields.append("finished_at")
    if save:
        command.save(update_fields=fields)
    return previous
