"""Edge device authentication: ``Authorization: Bearer hie_<prefix>_<secret>``.

Used only by the /api/edge/v1/ views; a device is not a user, so ``request.user`` stays anonymous and
``request.auth`` is the ``EdgeDevice``. A revoked device is refused on its next request: the lookup
is one indexed read per request, with no cache that could keep a revoked token alive."""

from __future__ import annotations

import hmac
from datetime import timedelta

from axes.helpers import get_client_ip_address
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions

from hashinsight.accounts.authentication import bearer_credentials
from hashinsight.accounts.models import hash_secret
from telemetry.models import EdgeDevice

DEVICE_TOKEN_PREFIX = "hie"  # noqa: S105 (a prefix, not a secret)
# last_seen_at and last_seen_ip are written at most this often per device, so ingest stays one write.
LAST_SEEN_RESOLUTION = timedelta(seconds=30)


def parse_device_token(raw: str) -> tuple[str, str] | None:
    if "\x00" in raw:
        return None
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != DEVICE_TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def device_of_token(raw: str) -> EdgeDevice | None:
    """The active device whose token is ``raw``, or None; a pure read (nothing is recorded)."""
    parsed = parse_device_token(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    device = EdgeDevice.objects.filter(token_prefix=prefix, revoked_at__isnull=True).first()
    if device is None or not hmac.compare_digest(device.token_hash, hash_secret(secret)):
        return None
    return device


def authenticate_device(raw: str, *, ip: str | None = None) -> EdgeDevice | None:
    """The active device whose token is ``raw``, or None; records when and from where it was seen."""
    device = device_of_token(raw)
    if device is None:
        return None
    now = timezone.now()
    if device.last_seen_at is None or now - device.last_seen_at > LAST_SEEN_RESOLUTION or device.last_seen_ip != ip:
        EdgeDevice.objects.filter(pk=device.pk).update(last_seen_at=now, last_seen_ip=ip)
        device.last_seen_at, device.last_seen_ip = now, ip
    return device


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer",)

    def authenticate(self, request):
        raw = bearer_credentials(request, self.keywords)
        if raw is None:
            return None
        # The same reading of X-Forwarded-For as login throttling (TRUSTED_PROXY_COUNT).
        ip = get_client_ip_address(request._request)
        device = authenticate_device(raw, ip=ip)
        if device is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked device token."))
        return AnonymousUser(), device

    def authenticate_header(self, request):
        return 'Bearer realm="edge"'


class IsEdgeDevice(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, EdgeDevice)


class EdgeDeviceView:
    """Mixin for the /api/edge/v1/ views: device token only, never a user's session or API token."""

    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsEdgeDevice]

    @property
    def device(self) -> EdgeDevice:
        return self.request.auth
