"""The "Edge devices" section of a site page: ``{% load edge_devices %}{% edge_devices_section site %}``.

An inclusion tag rather than context from the site view, so the section reads its devices through
``telemetry.devices.device_list`` with the requester's scope wherever it is included."""

from __future__ import annotations

from django import template
from django.db.models import F
from django.utils.dateparse import parse_datetime

from hashinsight.accounts.roles import Access, Module, has_access
from sites.selectors import scope_of, site_is_manageable, zone_list
from telemetry import devices

register = template.Library()


def _health(device) -> dict:
    health = dict(device.health or {})
    for key in (*devices.HEALTH_TIMES, "reported_at"):
        if isinstance(health.get(key), str):
            health[key] = parse_datetime(health[key])
    return health


@register.inclusion_tag("portal/sites/edge_section.html", takes_context=True)
def edge_devices_section(context, site):
    user = context["request"].user
    # Collectors are the operator's equipment: shown to those who operate the site (owners, admins,
    # its site owners), not to hosting clients, whose view of a site is their own miners.
    if scope_of(user).kind not in ("all", "sites"):
        return {"show": False}
    rows = list(
        devices.device_list(user=user).filter(site=site).order_by(F("revoked_at").asc(nulls_first=True), "name", "pk")
    )
    for device in rows:
        device.status = devices.device_status(device)
        device.health_view = _health(device)
    can_manage = has_access(user, Module.HOSTING, Access.FULL) and site_is_manageable(user=user, site_id=site.pk)
    return {
        "show": True,
        "site": site,
        "devices": rows,
        "can_manage": can_manage,
        "zones": list(zone_list(user=user).filter(site=site).order_by("name")) if can_manage else [],
        "csrf_token": context.get("csrf_token"),
        "request": context["request"],
    }
