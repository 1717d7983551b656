"""Reads of commands, restricted to what a user may see: commands of the sites they operate (CURTAILMENT
READ on the matrix, then the site scope; hosting clients, app customers and guests see none)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import QuerySet

from commands.models import Command
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError

MAX_PAGE = 200


def command_list(*, user) -> QuerySet[Command]:
    from sites.selectors import scope_of

    qs = Command.objects.select_related("site", "proposer")
    if not has_access(user, Module.CURTAILMENT, Access.READ):
        return qs.none()
    q = scope_of(user).site_infrastructure().q()
    return qs if q is None else qs.filter(q)


def command_get(*, user, command_id) -> Command:
    """One visible command, or 404 (hidden and missing look the same)."""
    try:
        return command_list(user=user).get(pk=int(command_id))
    except (Command.DoesNotExist, TypeError, ValueError):
        raise DomainError("not_found", "Not found.", status=404) from None


@dataclass
class Page:
    rows: list[Command]
    next_cursor: str | None


def command_page(qs: QuerySet[Command], *, cursor: str | None = None, limit: int = 50) -> Page:
    """Newest first, in keyset pages on the id (ids grow with creation): ``cursor`` is the last id seen,
    the next page holds the older commands. As fast at depth as on the first page, stable under inserts."""
    limit = max(1, min(int(limit), MAX_PAGE))
    if cursor:
        if not cursor.isdigit() or len(cursor) > 19:
            raise DomainError("bad_cursor", "The cursor is not valid for this list; start again from the first page.")
        qs = qs.filter(pk__lt=int(cursor))
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_cursor=str(rows[-1].pk) if more and rows else None)


# ---------------------------------------------------------------------------------------------------
# Verification from telemetry (commands.verification writes it; the portal and the API show it)

TARGET_VERIFICATION_FIELDS = (
    "id", "miner_id", "serial", "result_status", "result_message", "acked_at", "verification", "verified_at",
    "verification_detail",
)  # fmt: skip


def command_verification(*, user, command_id) -> dict:
    """One visible command's verification, per target (404 outside ``user``'s scope, like ``command_get``).

    ``window_s`` and ``window_ends_at`` say until when a pending target is waited for (None before the
    acknowledgement); ``counts`` sums the targets per verification ("" before the job has seen them). Three
    queries at most (the command, its targets, its device's reported poll interval), whatever the targets."""
    from commands.verification import window_for
    from telemetry.models import EdgeDevice

    command = command_get(user=user, command_id=command_id)
    targets = list(command.targets.order_by("pk").values(*TARGET_VERIFICATION_FIELDS))
    acked = [t["acked_at"] for t in targets if t["acked_at"] is not None]
    window = ends = None
    if acked:
        health = None
        if command.dispatched_to_id:
            health = EdgeDevice.objects.filter(pk=command.dispatched_to_id).values_list("health", flat=True).first()
        window = window_for(command.command_type, health)
        ends = max(acked) + timedelta(seconds=window)
    counts: dict[str, int] = {}
    for target in targets:
        counts[target["verification"]] = counts.get(target["verification"], 0) + 1
    return {
        "command_id": command.pk,
        "verification": command.verification,
        "window_s": window,
        "window_ends_at": ends,
        "counts": counts,
        "targets": targets,
    }


def command_verification_counts(command_ids) -> dict[int, dict[str, int]]:
    """Per command, its targets counted per verification (one aggregate query, for list pages). The ids come
    from an already scoped list (``command_list``); unknown ids are simply absent."""
    from django.db.models import Count

    from commands.models import CommandTarget

    out: dict[int, dict[str, int]] = {}
    rows = (
        CommandTarget.objects.filter(command_id__in=list(command_ids))
        .values("command_id", "verification")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        out.setdefault(row["command_id"], {})[row["verification"]] = row["n"]
    return out
