"""WebSocket authentication, two ways in:

- an API token in ``Authorization: Bearer …`` (non-browser clients). Browsers cannot set that header
  on a WebSocket, so such a handshake cannot be a cross-site page riding on someone's cookies: no
  Origin check, and the session cookie is ignored. A header with a bad token leaves the connection
  anonymous (the consumer refuses it);
- the portal's session cookie (Channels' AuthMiddlewareStack), only from an allowed Origin: a
  missing or foreign Origin is refused (403) before the session is even read.

``current_user`` re-checks a connection later (revoked token, ended session, deactivated user);
``live_users`` does the same for every open connection of a process at once."""

from __future__ import annotations

from importlib import import_module

from channels.auth import AuthMiddlewareStack, get_user
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import constant_time_compare

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
        token_id = scope["api_token_id"]
        if token_id is None:
            return None
        tokens, _sessions = await database_sync_to_async(live_users)(token_ids=[token_id], session_keys=())
        return tokens.get(token_id)
    session_key = getattr(scope.get("session"), "session_key", None)
    if not session_key:
        return None
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = await get_user({"session": fresh})
    return user if user.is_authenticated and user.is_active else None


def live_users(*, token_ids, session_keys) -> tuple[dict, dict]:
    """Bulk ``current_user``: the active user behind each still-valid token id and session key
    (missing keys are revoked, expired or ended). A few queries whatever the number of sockets."""
    tokens = {
        token.pk: token.user
        for token in ApiToken.objects.active().select_related("user").filter(pk__in=token_ids, user__is_active=True)
    }
    data = _session_data(set(session_keys))
    claimed = {key: d.get(SESSION_KEY) for key, d in data.items()}
    users = get_user_model().objects.filter(pk__in={pk for pk in claimed.values() if pk}, is_active=True).in_bulk()
    sessions = {}
    for key, d in data.items():
        user = users.get(_as_pk(claimed[key]))
        if user is None or d.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            continue
        if constant_time_compare(d.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash()):
            sessions[key] = user
    return tokens, sessions


def _as_pk(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _session_data(keys: set[str]) -> dict[str, dict]:
    if not keys:
        return {}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store, DatabaseSessionStore):  # the database is the truth, also for cached_db
        rows = store.get_model_class().objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        return {row.session_key: store().decode(row.session_data) for row in rows}
    loaded = {key: store(session_key=key).load() for key in keys}
    return {key: data for key, data in loaded.items() if data}
