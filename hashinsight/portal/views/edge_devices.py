"""A site's edge devices on its page: new enrollment codes, credential rotation and revocation.

Writes need HOSTING FULL and a manage grant on the site: a hidden site or device answers 404, a site
seen through a read-only grant 403. New secrets (an enrollment code, or a rotated token and HMAC
secret) go from the POST to the page that shows them through the session, removed as they are shown,
as for API tokens: a reload or the back button never shows them again, and no cache keeps the page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from hashinsight.accounts.roles import Access, Module
from hashinsight.portal.views.common import module_required
from sites import selectors as site_selectors
from telemetry import devices

# Session key holding the one-time secret between the POST and the page that shows it.
SHOWN_ONCE_KEY = "edge_credentials_once"


def _site(request, slug):
    return get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)


def _managed_site(request, slug):
    site = _site(request, slug)
    if not site_selectors.site_is_manageable(user=request.user, site_id=site.pk):
        raise PermissionDenied
    return site


def _device(request, site, pk):
    return get_object_or_404(devices.device_list(user=request.user).filter(site=site), pk=pk)


def _site_page(site):
    return redirect(reverse("portal:site-detail", args=[site.slug]) + "#edge-devices")


def _show_once(request, site, payload: dict):
    request.session[SHOWN_ONCE_KEY] = {"site_id": site.pk, **payload}
    return redirect("portal:edge-credentials", slug=site.slug)


@require_POST
@module_required(Module.HOSTING, Access.FULL)
def edge_enroll(request, slug):
    site = _managed_site(request, slug)
    zone = None
    raw_zone = request.POST.get("zone", "")
    if raw_zone:
        zones = site_selectors.zone_list(user=request.user).filter(site=site)
        zone = zones.filter(pk=int(raw_zone)).first() if raw_zone.isdigit() and len(raw_zone) < 12 else None
        if zone is None:
            messages.error(request, _("Choose a zone of this site, or the whole site; no code was created."))
            return _site_page(site)
    enrollment, code = devices.enrollment_code_create(site=site, zone=zone, actor=request.user)
    payload = {"kind": "enrollment", "code": code, "zone": zone.name if zone else ""}
    return _show_once(request, site, {**payload, "expires_at": enrollment.expires_at.isoformat()})


@require_POST
@module_required(Module.HOSTING, Access.FULL)
def edge_device_rotate(request, slug, pk):
    site = _site(request, slug)
    device = _device(request, site, pk)
    if not site_selectors.site_is_manageable(user=request.user, site_id=site.pk):
        raise PermissionDenied
    if device.revoked_at is not None:
        messages.error(request, _("“%(name)s” is revoked; enroll a new device instead.") % {"name": device.name})
        return _site_page(site)
    device, token, hmac_secret = devices.device_rotate(device=device, actor=request.user)
    return _show_once(
        request, site, {"kind": "rotation", "device": device.name, "token": token, "hmac_secret": hmac_secret}
    )


@require_POST
@module_required(Module.HOSTING, Access.FULL)
def edge_device_revoke(request, slug, pk):
    site = _site(request, slug)
    device = _device(request, site, pk)
    if not site_selectors.site_is_manageable(user=request.user, site_id=site.pk):
        raise PermissionDenied
    if device.revoked_at is None:
        devices.device_revoke(device=device, actor=request.user)
        messages.success(request, _("“%(name)s” revoked; it is refused from its next request.") % {"name": device.name})
    return _site_page(site)


@never_cache  # the page carries a one-time secret: never kept by a browser or proxy cache
@require_http_methods(["GET", "HEAD"])
@module_required(Module.HOSTING, Access.FULL)
def edge_credentials(request, slug):
    site = _managed_site(request, slug)
    shown = request.session.get(SHOWN_ONCE_KEY)
    if not shown or shown.get("site_id") != site.pk:
        shown = None
    elif request.method == "GET":  # a HEAD (a link checker) must not consume it
        del request.session[SHOWN_ONCE_KEY]
    if shown and shown.get("expires_at"):
        shown["expires_at"] = parse_datetime(shown["expires_at"])
    return render(request, "portal/sites/edge_credentials.html", {"site": site, "shown": shown})
