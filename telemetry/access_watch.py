"""The periodic backstop of WebSocket access: one re-check per process for every open alert socket,
for changes made outside the services (which notify at once, see ``hashinsight.core.realtime``).

Each ``interval`` seconds one database hop reads, for all sockets of this process together, which
tokens and sessions still hold, which users are still active, and their scopes (a handful of
queries, however many sockets). A socket whose credential is gone or whose groups should differ is
sent ``access.changed``, and re-checks itself in full. A re-check per socket instead would cost two
hops per socket per interval on the one thread Channels gives database calls, which starved the
handshakes of 1,000 sockets in bench/ws_fanout.py."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

from channels.db import database_sync_to_async

from hashinsight.accounts.ws_auth import live_users
from hashinsight.core.realtime import ACCESS_CHANGED
from sites.selectors import scopes_of
from telemetry.groups import groups_for_scope

logger = logging.getLogger(__name__)


@dataclass
class Socket:
    user_id: int
    token_id: int | None
    session_key: str | None
    groups: frozenset[str]


class AccessWatch:
    def __init__(self, layer, interval):
        self.layer = layer
        self.interval = interval  # callable: read at every tick, so tests can shorten it
        self.sockets: dict[str, Socket] = {}
        self.task: asyncio.Task | None = None

    def add(self, channel: str, socket: Socket) -> None:
        self.sockets[channel] = socket
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def remove(self, channel: str) -> None:
        self.sockets.pop(channel, None)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self):
        while self.sockets:
            await asyncio.sleep(self.interval())
            try:
                stale = await database_sync_to_async(_stale)(dict(self.sockets))
            except Exception:
                logger.warning("websocket access watch failed", exc_info=True)
                continue
            for channel in stale:
                if channel in self.sockets:
                    await self.layer.send(channel, {"type": ACCESS_CHANGED})


def _stale(sockets: dict[str, Socket]) -> list[str]:
    tokens, sessions = live_users(
        token_ids={s.token_id for s in sockets.values() if s.token_id is not None},
        session_keys={s.session_key for s in sockets.values() if s.session_key},
    )
    users = {user.pk: user for user in [*tokens.values(), *sessions.values()]}
    scopes = scopes_of(users.values())
    stale = []
    for channel, socket in sockets.items():
        user = tokens.get(socket.token_id) if socket.token_id is not None else sessions.get(socket.session_key)
        if (
            user is None
            or user.pk != socket.user_id
            or frozenset(groups_for_scope(user.pk, scopes[user.pk])) != socket.groups
        ):
            stale.append(channel)
    return stale


# One watch per event loop (a server has one; tests start a loop per test).
_WATCHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def watch_for(layer, interval) -> AccessWatch:
    loop = asyncio.get_running_loop()
    watch = _WATCHES.get(loop)
    if watch is None or watch.layer is not layer:
        watch = _WATCHES[loop] = AccessWatch(layer, interval)
    return watch
