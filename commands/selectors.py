"""Reads of commands, restricted to what a user may see: commands of the sites they operate (CURTAILMENT
READ on the matrix, then the site scope; hosting clients, app customers and guests see none)."""

from __future__ import annotations

from dataclasses import dataclass

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
