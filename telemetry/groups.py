"""WebSocket group names, and which groups a user may join: derived from the user's ``Scope``
(``sites.selectors.scope_of``, the same definition the querysets use), never from a role here."""

from __future__ import annotations

from hashinsight.core.realtime import user_group
from sites.selectors import Scope, scope_of

ALL = "alerts.all"


def site_group(site_id: int) -> str:
    return f"site.{site_id}"


def customer_group(customer_id: int) -> str:
    return f"customer.{customer_id}"


def groups_for_scope(user_id: int, scope: Scope) -> list[str]:
    groups = [user_group(user_id)]
    if scope.kind == "all":
        groups.append(ALL)
    elif scope.kind == "sites":
        groups += [site_group(pk) for pk in scope.ids]
    elif scope.kind == "customers":
        groups += [customer_group(pk) for pk in scope.ids]
    return groups


def groups_for(user) -> list[str]:
    return groups_for_scope(user.pk, scope_of(user))


def groups_for_alert(payload) -> list[str]:
    groups = [ALL, site_group(payload.site_id)]
    if payload.customer_id:
        groups.append(customer_group(payload.customer_id))
    return groups
