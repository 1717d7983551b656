"""WebSocket authentication: the portal's session (via Channels' AuthMiddlewareStack), or an API
token in the ``Authorization: Bearer …`` header for non-browser clients."""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from hashinsight.accounts.authentication import authenticate_token


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        raw = headers.get(b"authorization", b"").decode("latin-1")
        if raw.lower().startswith("bearer "):
            result = await database_sync_to_async(authenticate_token)(raw[7:].strip())
            if result is not None:
                scope = {**scope, "user": result[0]}
        return await super().__call__(scope, receive, send)
