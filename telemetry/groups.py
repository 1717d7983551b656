"""WebSocket group names, and which groups a user may join (derived only from server-side grants)."""

from __future__ import annotations

from hashinsight.accounts.roles import Role, role_of
from sites.selectors import granted_customer_ids, granted_site_ids

ALL = "alerts.all"


def site_group(site_id: int) -> str:
    return f"site.{site_id}"


def customer_group(customer_id: int) -> str:
    return f"customer.{customer_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def groups_for(user) -> list[str]:
    role = role_of(user)
    groups = [user_group(user.pk)]
    if role in (Role.OWNER, Role.ADMIN):
        groups.append(ALL)
    elif role == Role.MINING_SITE_OWNER:
        groups += [site_group(pk) for pk in granted_site_ids(user)]
    elif role == Role.CLIENT:
        groups += [customer_group(pk) for pk in granted_customer_ids(user)]
    return groups


def groups_for_alert(payload) -> list[str]:
    groups = [ALL, site_group(payload.site_id)]
    if payload.customer_id:
        groups.append(customer_group(payload.customer_id))
    return groups
