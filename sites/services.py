"""Writes for sites, zones, customers and their grants. Scope is checked by the caller's selector
(objects outside it are never found); these functions enforce the domain rules, and each one
publishes its outbox event in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import models, transaction

from hashinsight.accounts.roles import Access, Module, Role, has_access
from hashinsight.core.errors import DomainError
from hashinsight.core.realtime import notify_access_changed
from hashinsight.events import audit, outbox
from sites.models import Customer, CustomerUserObjectPermission, Site, SiteUserObjectPermission, Zone

# The codenames the selectors read (sites.selectors), and who may hold them.
SITE_CODENAMES = ("view_site", "change_site")
CUSTOMER_CODENAMES = ("view_customer",)


def _save(instance, fields: dict):
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance


def _changed(event_type: str, *, object_id: int, site_id: int | None, action: str) -> None:
    outbox.publish(
        event_type,
        aggregate=f"{event_type.split('.')[0]}:{object_id}",
        payload={"object_id": object_id, "site_id": site_id, "action": action},
    )


# ---------------------------------------------------------------------------------------------
# Grants


@dataclass(frozen=True)
class AccessDiff:
    added: list[tuple[int, str]]  # (user id, codename)
    removed: list[tuple[int, str]]

    @property
    def user_ids(self) -> list[int]:
        return sorted({u for u, _ in self.added} | {u for u, _ in self.removed})


@dataclass(frozen=True)
class _AccessKind:
    model: type[models.Model]  # the object's class (Site or Customer)
    table: type[models.Model]  # its direct-foreign-key user grant table
    codenames: tuple[str, ...]
    grantee_role: str
    event_type: str


SITE_ACCESS = _AccessKind(Site, SiteUserObjectPermission, SITE_CODENAMES, Role.MINING_SITE_OWNER, "site.access_changed")
CUSTOMER_ACCESS = _AccessKind(
    Customer, CustomerUserObjectPermission, CUSTOMER_CODENAMES, Role.CLIENT, "customer.access_changed"
)


def _normalise(kind: _AccessKind, grants: dict) -> dict[int, set[str]]:
    wanted: dict[int, set[str]] = {}
    for user_id, codenames in grants.items():
        codenames = set(codenames)
        unknown = codenames - set(kind.codenames)
        if unknown:
            raise DomainError(
                "unknown_permission", "Unknown permission.", details={"permissions": sorted(unknown)}
            )  # fmt: skip
        if "change_site" in codenames:
            codenames.add("view_site")  # a manager who cannot see the site would be a contradiction
        wanted[int(user_id)] = codenames
    return wanted


def _set_access(kind: _AccessKind, *, obj, grants: dict, actor) -> AccessDiff:
    """Make each listed user's direct grants on ``obj`` exactly ``grants[user_id]``; users not
    listed keep theirs (so two owners editing different users do not undo each other)."""
    wanted = _normalise(kind, grants)
    # Lock the object first: concurrent edits of one object's grants queue here, and always in
    # the same order (object, then its grant rows), so they cannot deadlock.
    obj = kind.model.objects.select_for_update().get(pk=obj.pk)
    users = get_user_model().objects.in_bulk(list(wanted))
    missing = sorted(set(wanted) - set(users))
    if missing:
        raise DomainError("unknown_user", "Unknown user.", details={"users": missing})
    rows = kind.table.objects.select_for_update(of=("self",)).filter(
        content_object=obj, user_id__in=list(wanted), permission__codename__in=kind.codenames
    )
    current = {
        (user_id, codename): pk for pk, user_id, codename in rows.values_list("pk", "user_id", "permission__codename")
    }
    target = {(user_id, codename) for user_id, codenames in wanted.items() for codename in codenames}
    added = sorted(target - set(current))
    removed = sorted(set(current) - target)
    wrong_role = sorted({u for u, _ in added if users[u].role != kind.grantee_role})
    if wrong_role:
        raise DomainError(
            "grant_role",
            f"Only users with the {Role(kind.grantee_role).label} role can be granted this access.",
            details={"users": wrong_role},
        )
    if not added and not removed:
        return AccessDiff([], [])  # a repeated save changes nothing and publishes nothing
    if removed:
        kind.table.objects.filter(pk__in=[current[key] for key in removed]).delete()
    if added:
        perms = dict(
            Permission.objects.filter(
                content_type__app_label="sites", codename__in=kind.codenames
            ).values_list("codename", "pk")
        )  # fmt: skip
        kind.table.objects.bulk_create(
            [kind.table(content_object=obj, user_id=u, permission_id=perms[c]) for u, c in added]
        )
    diff = AccessDiff(added, removed)
    actor_type, actor_id = audit.actor_of(actor)
    audit.audit_append(
        event_type=kind.event_type, actor_type=actor_type, actor_id=actor_id,
        reference=f"{kind.model._meta.model_name}:{obj.pk}", site=obj if kind.model is Site else None,
        payload={"added": [{"user_id": u, "codename": c} for u, c in added],
                 "removed": [{"user_id": u, "codename": c} for u, c in removed]},
    )  # fmt: skip
    outbox.publish(
        kind.event_type,
        aggregate=f"{kind.model._meta.model_name}:{obj.pk}",
        payload={
            "object_id": obj.pk,
            "actor_id": getattr(actor, "pk", None),
            "added": [{"user_id": u, "codename": c} for u, c in added],
            "removed": [{"user_id": u, "codename": c} for u, c in removed],
            "user_ids": diff.user_ids,
        },
    )
    notify_access_changed(*diff.user_ids)  # after commit: their open WebSockets re-check their groups
    return diff


def _require_grant_manager(actor) -> None:
    # README: grants are managed by owners and admins (USER module FULL), not by site owners.
    if not has_access(actor, Module.USER, Access.FULL):
        raise DomainError("forbidden", "Only owners and administrators manage access.", status=403)


@transaction.atomic
def site_set_access(*, site: Site, grants: dict[int, set[str]], actor) -> AccessDiff:
    """Set who may see (``view_site``) and manage (``change_site``) ``site``: ``grants`` maps a user
    id to the complete set of codenames that user should hold. Only site owners can be granted."""
    _require_grant_manager(actor)
    return _set_access(SITE_ACCESS, obj=site, grants=grants, actor=actor)


@transaction.atomic
def customer_set_access(*, customer: Customer, grants: dict[int, set[str]], actor) -> AccessDiff:
    """Set the contacts of a hosting client (``view_customer``: they see its miners). Only users with
    the hosting client role can be contacts."""
    _require_grant_manager(actor)
    return _set_access(CUSTOMER_ACCESS, obj=customer, grants=grants, actor=actor)


@transaction.atomic
def site_grant(*, user, site: Site, manage: bool = True, actor=None) -> AccessDiff:
    """Let ``user`` (a site owner) see ``site`` and, with ``manage``, change it and its contents.
    Used where the system grants by rule (a site owner's own new site, seeding), not by a person."""
    codenames = {"view_site", "change_site"} if manage else {"view_site"}
    return _set_access(SITE_ACCESS, obj=site, grants={user.pk: codenames}, actor=actor)


@transaction.atomic
def customer_add_contact(*, user, customer: Customer, actor=None) -> AccessDiff:
    """Make ``user`` (a hosting client) a contact of ``customer``: they then see its miners."""
    if user.role != Role.CLIENT:
        raise DomainError("contact_role", "Only users with the hosting client role can be customer contacts.")
    return _set_access(CUSTOMER_ACCESS, obj=customer, grants={user.pk: {"view_customer"}}, actor=actor)


# ---------------------------------------------------------------------------------------------
# Sites, zones and hosting clients


@transaction.atomic
def site_create(*, actor, **fields) -> Site:
    site = _save(Site(), fields)
    _changed("site.changed", object_id=site.pk, site_id=site.pk, action="created")
    if actor.role == Role.MINING_SITE_OWNER:
        site_grant(user=actor, site=site, manage=True, actor=actor)
    return site


@transaction.atomic
def site_update(*, site: Site, actor=None, **fields) -> Site:
    site = _save(Site.objects.select_for_update().get(pk=site.pk), fields)
    _changed("site.changed", object_id=site.pk, site_id=site.pk, action="updated")
    return site


@transaction.atomic
def site_delete(*, site: Site, actor=None) -> None:
    site = Site.objects.select_for_update().get(pk=site.pk)
    if site.miners.exists():
        raise DomainError("site_not_empty", "Move or retire this site's miners before deleting it.", status=409)
    site_id = site.pk
    site.delete()
    _changed("site.changed", object_id=site_id, site_id=site_id, action="deleted")


@transaction.atomic
def zone_create(*, site: Site, actor=None, **fields) -> Zone:
    zone = _save(Zone(site=site), fields)
    _changed("zone.changed", object_id=zone.pk, site_id=zone.site_id, action="created")
    return zone


@transaction.atomic
def zone_update(*, zone: Zone, actor=None, **fields) -> Zone:
    zone = Zone.objects.select_for_update().get(pk=zone.pk)
    if "site" in fields and fields["site"].pk != zone.site_id and zone.miners.exists():
        raise DomainError("zone_not_empty", "A zone with miners cannot move to another site.", status=409)
    zone = _save(zone, fields)
    _changed("zone.changed", object_id=zone.pk, site_id=zone.site_id, action="updated")
    return zone


@transaction.atomic
def zone_delete(*, zone: Zone, actor=None) -> None:
    zone = Zone.objects.select_for_update().get(pk=zone.pk)
    if zone.miners.exists():
        raise DomainError("zone_not_empty", "Move this zone's miners before deleting it.", status=409)
    zone_id, site_id = zone.pk, zone.site_id
    zone.delete()
    _changed("zone.changed", object_id=zone_id, site_id=site_id, action="deleted")


@transaction.atomic
def customer_create(*, actor=None, **fields) -> Customer:
    customer = _save(Customer(), fields)
    _changed("customer.changed", object_id=customer.pk, site_id=None, action="created")
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, actor=None, **fields) -> Customer:
    customer = _save(Customer.objects.select_for_update().get(pk=customer.pk), fields)
    _changed("customer.changed", object_id=customer.pk, site_id=None, action="updated")
    return customer


@transaction.atomic
def customer_delete(*, customer: Customer, actor=None) -> None:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.miners.exists():
        raise DomainError("customer_has_miners", "This client still has miners hosted.", status=409)
    customer_id = customer.pk
    customer.delete()
    _changed("customer.changed", object_id=customer_id, site_id=None, action="deleted")
