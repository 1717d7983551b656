"""Writes for sites, zones, customers and their grants. Scope is checked by the caller's selector
(objects outside it are never found); these functions enforce the domain rules."""

from __future__ import annotations

from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from hashinsight.accounts.roles import Role
from hashinsight.core.errors import DomainError
from sites.models import CUSTOMER_VIEW, SITE_MANAGE, SITE_VIEW, Customer, Site, Zone


def _save(instance, fields: dict):
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def site_grant(*, user, site: Site, manage: bool = True) -> None:
    """Let ``user`` (a site owner) see ``site`` and, with ``manage``, change it and its contents."""
    assign_perm(SITE_VIEW, user, site)
    if manage:
        assign_perm(SITE_MANAGE, user, site)
    else:
        remove_perm(SITE_MANAGE, user, site)


@transaction.atomic
def site_revoke(*, user, site: Site) -> None:
    remove_perm(SITE_VIEW, user, site)
    remove_perm(SITE_MANAGE, user, site)


@transaction.atomic
def customer_add_contact(*, user, customer: Customer) -> None:
    """Make ``user`` (a hosting client) a contact of ``customer``: they then see its miners."""
    if user.role != Role.CLIENT:
        raise DomainError("contact_role", "Only users with the hosting client role can be customer contacts.")
    assign_perm(CUSTOMER_VIEW, user, customer)


@transaction.atomic
def customer_remove_contact(*, user, customer: Customer) -> None:
    remove_perm(CUSTOMER_VIEW, user, customer)


@transaction.atomic
def site_create(*, actor, **fields) -> Site:
    site = _save(Site(), fields)
    if actor.role == Role.MINING_SITE_OWNER:
        site_grant(user=actor, site=site, manage=True)
    return site


@transaction.atomic
def site_update(*, site: Site, **fields) -> Site:
    return _save(site, fields)


@transaction.atomic
def site_delete(*, site: Site) -> None:
    if site.miners.exists():
        raise DomainError("site_not_empty", "Move or retire this site's miners before deleting it.", status=409)
    site.delete()


@transaction.atomic
def zone_create(*, site: Site, **fields) -> Zone:
    return _save(Zone(site=site), fields)


@transaction.atomic
def zone_update(*, zone: Zone, **fields) -> Zone:
    if "site" in fields and fields["site"].pk != zone.site_id and zone.miners.exists():
        raise DomainError("zone_not_empty", "A zone with miners cannot move to another site.", status=409)
    return _save(zone, fields)


@transaction.atomic
def zone_delete(*, zone: Zone) -> None:
    if zone.miners.exists():
        raise DomainError("zone_not_empty", "Move this zone's miners before deleting it.", status=409)
    zone.delete()


@transaction.atomic
def customer_create(**fields) -> Customer:
    return _save(Customer(), fields)


@transaction.atomic
def customer_update(*, customer: Customer, **fields) -> Customer:
    return _save(customer, fields)


@transaction.atomic
def customer_delete(*, customer: Customer) -> None:
    if customer.miners.exists():
        raise DomainError("customer_has_miners", "This client still has miners hosted.", status=409)
    customer.delete()
