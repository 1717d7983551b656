"""API token authentication: ``Authorization: Bearer hi_<prefix>_<secret>`` (or ``Token …``)."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, status
from rest_framework.permissions import SAFE_METHODS

from hashinsight.accounts.models import TOKEN_PREFIX, ApiToken, hash_secret

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def parse_token(raw: str) -> tuple[str, str] | None:
    if "\x00" in raw:  # never a token of ours, and PostgreSQL would refuse it in the lookup (a 500)
        return None
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate_token(raw: str):
    """Return the user owning the active token ``raw``, or None. Shared by HTTP and WebSocket auth."""
    parsed = parse_token(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    token = ApiToken.objects.active().select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def bearer_credentials(request, keywords: tuple[str, ...]) -> str | None:
    """The credentials of an ``Authorization: <keyword> <credentials>`` header whose keyword (any case)
    is one of ``keywords``; None when there is no such header (another authentication may apply).
    A header with that keyword but not exactly one ASCII credential is refused (401)."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower().decode(errors="replace") not in keywords:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed(_("Malformed Authorization header.")) from None


class TokenReadOnly(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "token_read_only"
    default_detail = _("This API token is read-only; use a read-write token for this request.")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Also enforces the token's scope: authentication is the one step every API view runs, whatever
    its permission classes, so a read-only token cannot write through a view that forgot to check."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        raw = bearer_credentials(request, self.keywords)
        if raw is None:
            return None
        result = authenticate_token(raw)
        if result is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked API token."))
        if result[1].scope == ApiToken.Scope.READ and request.method not in SAFE_METHODS:
            raise TokenReadOnly()
        return result

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
