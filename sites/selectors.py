"""Reads of sites, zones and customers, already restricted to what a user may see.

The scope rules, in one place (``scope_of``; the querysets here, ``miner_scope_q`` and the
WebSocket groups in ``telemetry.groups`` are all derived from the ``Scope`` it returns):
- OWNER and ADMIN see everything;
- a MINING_SITE_OWNER sees the sites granted to them (``view_site``, directly or through a group),
  everything inside those sites, and the customers with miners there;
- a CLIENT sees the customers granted to them (``view_customer``), their miners, and the sites and
  zones those miners stand in;
- a CUSTOMER or GUEST sees no site or customer (a customer has only a portfolio).

Each function costs a constant number of queries: the grant ids are read once per request (a short
list) and everything else is a single filtered queryset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db.models import Exists, OuterRef, Q, QuerySet

from hashinsight.accounts.roles import Role, role_of
from hashinsight.core.errors import DomainError
from sites.models import (
    Customer,
    CustomerGroupObjectPermission,
    CustomerUserObjectPermission,
    Site,
    SiteGroupObjectPermission,
    SiteUserObjectPermission,
    Zone,
)


def _granted_ids(user, user_table, group_table, codename: str) -> list[int]:
    cache_attr = f"_hi_granted_{user_table.__name__}_{codename}"
    cached = getattr(user, cache_attr, None)
    if cached is not None:
        return cached
    perm = Q(permission__codename=codename, permission__content_type__app_label="sites")
    direct = user_table.objects.filter(perm, user=user).values_list("content_object_id", flat=True)
    via_group = group_table.objects.filter(perm, group__user=user).values_list("content_object_id", flat=True)
    ids = sorted(set(direct.union(via_group)))
    setattr(user, cache_attr, ids)
    return ids


def granted_site_ids(user, *, manage: bool = False) -> list[int]:
    codename = "change_site" if manage else "view_site"
    return _granted_ids(user, SiteUserObjectPermission, SiteGroupObjectPermission, codename)


def granted_customer_ids(user) -> list[int]:
    return _granted_ids(user, CustomerUserObjectPermission, CustomerGroupObjectPermission, "view_customer")


@dataclass(frozen=True)
class Scope:
    """What a user sees: every row (``all``), rows of some sites, rows of some hosting clients, or
    nothing. A role's scope is decided in ``SCOPE_KIND_OF_ROLE`` only; callers turn it into a filter or into
    WebSocket groups, never back into a role switch of their own."""

    kind: Literal["all", "sites", "customers", "none"]
    ids: tuple[int, ...] = ()

    def q(self, *, prefix: str = "", customer_prefix: str | None = None) -> Q | None:
        """A filter on rows carrying ``site_id``/``customer_id``; None for every row. ``customer_prefix``
        (default ``prefix``) is the path to ``customer_id`` for rows that carry their site themselves but
        reach their client through a relation (a safety event's ``miner__``)."""
        if self.kind == "all":
            return None
        if self.kind == "sites":
            return Q(**{f"{prefix}site_id__in": self.ids})
        if self.kind == "customers":
            return Q(**{f"{prefix if customer_prefix is None else customer_prefix}customer_id__in": self.ids})
        return Q(**{f"{prefix}pk__in": []})

    def site_infrastructure(self) -> Scope:
        """The scope over a site's own equipment (edge devices, their enrollment codes): the sites a user
        operates. A hosting client's scope is its miners, not the site's infrastructure, so it covers none."""
        return self if self.kind in ("all", "sites") else Scope("none")

    def allows(self, *, site_id: int | None, customer_id: int | None) -> bool:
        """The same rule for one row already in memory (e.g. an alert about to be pushed)."""
        if self.kind == "all":
            return True
        if self.kind == "sites":
            return site_id in self.ids
        if self.kind == "customers":
            return customer_id is not None and customer_id in self.ids
        return False


# The one role switch of scoping: which kind of scope each role has. Roles not named see nothing.
SCOPE_KIND_OF_ROLE = {
    Role.OWNER: "all",
    Role.ADMIN: "all",
    Role.MINING_SITE_OWNER: "sites",
    Role.CLIENT: "customers",
}
# Where the ids of a kind of scope come from: the grant tables and the permission that grants them.
_GRANTS = {
    "sites": (SiteUserObjectPermission, SiteGroupObjectPermission, "view_site"),
    "customers": (CustomerUserObjectPermission, CustomerGroupObjectPermission, "view_customer"),
}


def scope_of(user) -> Scope:
    """The user's scope; one query at most (the grant ids, cached on the user object)."""
    kind = SCOPE_KIND_OF_ROLE.get(role_of(user), "none")
    if kind not in _GRANTS:
        return Scope(kind)
    return Scope(kind, tuple(_granted_ids(user, *_GRANTS[kind])))


def scopes_of(users) -> dict[int, Scope]:
    """``scope_of`` for many users at once (open WebSockets are re-checked per process, not per
    socket): at most four queries, whatever the number of users."""
    kinds = {user.pk: SCOPE_KIND_OF_ROLE.get(role_of(user), "none") for user in users}
    granted = {
        kind: _granted_ids_many([pk for pk, k in kinds.items() if k == kind], *tables)
        for kind, tables in _GRANTS.items()
    }
    return {
        pk: Scope(kind, tuple(sorted(granted[kind].get(pk, ())))) if kind in _GRANTS else Scope(kind)
        for pk, kind in kinds.items()
    }


def _granted_ids_many(user_ids, user_table, group_table, codename: str) -> dict[int, set[int]]:
    granted: dict[int, set[int]] = {}
    if not user_ids:
        return granted
    perm = Q(permission__codename=codename, permission__content_type__app_label="sites")
    direct = user_table.objects.filter(perm, user_id__in=user_ids).values_list("user_id", "content_object_id")
    via_group = group_table.objects.filter(perm, group__user__in=user_ids).values_list(
        "group__user", "content_object_id"
    )
    for user_id, object_id in [*direct, *via_group]:
        granted.setdefault(user_id, set()).add(object_id)
    return granted


def miner_scope_q(user, *, prefix: str = "") -> Q | None:
    """A Q restricting rows that carry ``site_id``/``customer_id`` (miners, telemetry, alerts…).

    Returns None when the user sees every row, and ``Q(pk__in=[])`` when they see none."""
    return scope_of(user).q(prefix=prefix)


def site_list(*, user) -> QuerySet[Site]:
    scope = scope_of(user)
    qs = Site.objects.all()
    if scope.kind == "all":
        return qs
    if scope.kind == "sites":
        return qs.filter(pk__in=scope.ids)
    if scope.kind == "customers":
        from miners.models import Miner

        hosted = Miner.objects.filter(site_id=OuterRef("pk"), customer_id__in=scope.ids)
        return qs.filter(Exists(hosted))
    return qs.none()


def zone_list(*, user) -> QuerySet[Zone]:
    scope = scope_of(user)
    qs = Zone.objects.select_related("site")
    if scope.kind == "all":
        return qs
    if scope.kind == "sites":
        return qs.filter(site_id__in=scope.ids)
    if scope.kind == "customers":
        from miners.models import Miner

        hosted = Miner.objects.filter(zone_id=OuterRef("pk"), customer_id__in=scope.ids)
        return qs.filter(Exists(hosted))
    return qs.none()


def customer_list(*, user) -> QuerySet[Customer]:
    scope = scope_of(user)
    qs = Customer.objects.all()
    if scope.kind == "all":
        return qs
    if scope.kind == "sites":
        from miners.models import Miner

        hosted = Miner.objects.filter(customer_id=OuterRef("pk"), site_id__in=scope.ids)
        return qs.filter(Exists(hosted))
    if scope.kind == "customers":
        return qs.filter(pk__in=scope.ids)
    return qs.none()


def site_is_manageable(*, user, site_id: int) -> bool:
    """May ``user`` change this site and what is in it (zones, miners)?"""
    ids = manageable_site_ids(user=user)
    return ids is None or site_id in ids


def require_site_manageable(*, user, site_id: int) -> None:
    """Refuse (403) a change to a site the user sees only through a read-only grant."""
    if not site_is_manageable(user=user, site_id=site_id):
        raise DomainError("site_read_only", "You may view this site but not change it or what is in it.", status=403)


def manageable_site_ids(*, user) -> list[int] | None:
    """Sites whose contents ``user`` may change; None means all of them."""
    role = role_of(user)
    if role in (Role.OWNER, Role.ADMIN):
        return None
    if role == Role.MINING_SITE_OWNER:
        return granted_site_ids(user, manage=True)
    return []


def manageable_site_list(*, user) -> QuerySet[Site]:
    """The sites ``user`` sees and may change (e.g. the choices where a zone or miner is placed)."""
    ids = manageable_site_ids(user=user)
    qs = site_list(user=user)
    return qs if ids is None else qs.filter(pk__in=ids)
