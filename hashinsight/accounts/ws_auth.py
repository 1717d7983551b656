"""WebSocket authentication, two ways in:

- an API token in ``Authorization: Bearer …`` (non-browser clients). Browsers cannot set that header
  on a WebSocket, so such a handshake cannot be a cross-site page riding on someone's cookies: no
  Origin check, and the session cookie is ignored. A header with a bad token leaves the connection
  anonymous (the consumer refuses it);
- the portal's session cookie (Channels' AuthMiddlewareStack), only from an allowed Origin: a
  missing or foreign Origin is refused (403) before the session is even read.

``current_user`` re-checks a connection later (revoked token, ended session, deactivated user)."""

from __future__ import annotations

from importlib import import_module

from channels.auth import AuthMiddlewareStack, get_user
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from hashinsight.accounts.authentication import authenticate_token
from hashinsight.accounts.models import ApiToken


def bearer_token(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            raw = value.decode("latin-1")
            return raw[7:].strip() if raw.lower().startswith("bearer ") else None
    return None


class WebSocketAuth:
    """ASGI middleware choosing the token path or the origin-checked session path per handshake."""

    def __init__(self, inner):
        self.token_path = inner
        self.session_path = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        raw = bearer_token(scope)
        if raw is None:
            return await self.session_path(scope, receive, send)
        result = await database_sync_to_async(authenticate_token)(raw)
        user, token = result if result is not None else (AnonymousUser(), None)
        scope = {**scope, "user": user, "api_token_id": token.pk if token else None}
        return await self.token_path(scope, receive, send)


async def current_user(scope):
    """The connection's user if its credential still holds (token not revoked or expired, session
    not ended or invalidated by a password change) and the user is active; else None."""
    if "api_token_id" in scope:
        return await database_sync_to_async(_token_user)(scope["api_token_id"])
    session_key = getattr(scope.get("session"), "session_key", None)
    if not session_key:
        return None
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = await get_user({"session": fresh})
    return user if user.is_authenticated and user.is_active else None


def _token_user(token_id: int | None):
    if token_id is None:
        return None
    token = ApiToken.objects.active().select_related("user").filter(pk=token_id).first()
    return token.user if token is not None and token.user.is_active else None
