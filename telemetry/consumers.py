"""``/ws/alerts/``: live alert events for the groups the user's grants allow, nothing else.

``?after=<event id>`` replays what a reconnecting client missed (``telemetry.replay``) before the
live frames. Access is re-checked when ``access.changed`` arrives: sent to the user's group by the
services (``hashinsight.core.realtime.notify_access_changed``), or to the socket by the process's
watch every ``recheck_s`` seconds when it finds a change made outside them (``telemetry.access_watch``).
Groups no longer allowed are left (the client gets ``{"type": "access", "groups": n}``), frames
outside the current scope are dropped, and a deactivated user or a revoked token or ended session
closes with 4403.

Frames: ``hello`` (``groups``, ``replayed``, ``truncated``), then one ``alert`` frame per alert
(``id`` = outbox event id, ``event_type``, ``alert``), ``heartbeat`` every 30 s, ``pong``, ``access``.
``command`` frames (``id``, ``event_type``, ``command``: commands.handlers) reach only users whose role
reads CURTAILMENT and whose scope holds the command's site; they are not replayed (pages re-read on reconnect)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.accounts.ws_auth import current_user
from hashinsight.observability.metrics import WEBSOCKET_CONNECTIONS
from sites.selectors import Scope, scope_of
from telemetry.access_watch import Socket, watch_for
from telemetry.groups import groups_for_scope
from telemetry.replay import missed_alert_frames

logger = logging.getLogger(__name__)

HEARTBEAT_S = 30
RECHECK_S = 15
REVOKED = 4403


def _scope_and_groups(user) -> tuple[Scope, list[str]]:
    scope = scope_of(user)
    return scope, groups_for_scope(user.pk, scope)


def _reads_commands(user) -> bool:
    return has_access(user, Module.CURTAILMENT, Access.READ)


class AlertConsumer(AsyncJsonWebsocketConsumer):
    heartbeat_s = HEARTBEAT_S
    recheck_s = RECHECK_S

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)  # refused before accept: nothing is ever sent
            return
        self.user_id = user.pk
        self.groups_joined: set[str] = set()
        self.closing = False
        self.access, groups = await database_sync_to_async(_scope_and_groups)(user)
        self.reads_commands = _reads_commands(user)
        await self._join(groups)
        await self.accept()
        WEBSOCKET_CONNECTIONS.inc()
        self._counted = True
        # Replayed before any live frame: live messages wait in the channel until connect returns.
        after = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("after", [None])[0]
        frames, truncated = [], False
        if after:
            try:
                frames, truncated = await database_sync_to_async(missed_alert_frames)(scope=self.access, after=after)
            except Exception:  # a failed replay must not cost the live feed
                logger.warning("alert replay failed", exc_info=True, extra={"user_id": self.user_id})
        await self.send_json({"type": "hello", "groups": len(self.groups_joined), "replayed": len(frames),
                              "truncated": truncated})  # fmt: skip
        # Ids replayed here may also arrive live (their handler was still running): send them once.
        self._replayed_ids = {frame["id"] for frame in frames}
        for frame in frames:
            await self.send_json(frame)
        self._tasks = [asyncio.ensure_future(self._beat())]
        self._watch = watch_for(self.channel_layer, lambda: AlertConsumer.recheck_s)
        session_key = None if "api_token_id" in self.scope else getattr(self.scope.get("session"), "session_key", None)
        self._watch.add(
            self.channel_name,
            Socket(self.user_id, self.scope.get("api_token_id"), session_key, frozenset(self.groups_joined)),
        )

    async def _join(self, groups) -> None:
        wanted = set(groups)
        for group in sorted(self.groups_joined - wanted):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in sorted(wanted - self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = wanted
        watched = getattr(self, "_watch", None) and self._watch.sockets.get(self.channel_name)
        if watched:
            watched.groups = frozenset(wanted)

    async def _beat(self):
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.send_json({"type": "heartbeat"})

    async def access_changed(self, message):
        if self.closing:
            return
        try:
            user = await current_user(self.scope)
            if user is None or user.pk != self.user_id:
                await self._revoke()
                return
            self.access, groups = await database_sync_to_async(_scope_and_groups)(user)
            self.reads_commands = _reads_commands(user)
        except Exception:
            # The database is unreachable, not the grant revoked: keep the connection, try again later.
            logger.warning("websocket access re-check failed", exc_info=True, extra={"user_id": self.user_id})
            return
        if set(groups) != self.groups_joined:
            await self._join(groups)
            # Tells the page its view changed (it may reload); frames outside the new scope stop here.
            await self.send_json({"type": "access", "groups": len(self.groups_joined)})

    async def _revoke(self):
        self.closing = True
        for task in self._tasks:
            task.cancel()
        self._watch.remove(self.channel_name)
        await self._join([])
        await self.close(code=REVOKED)

    async def disconnect(self, code):
        for task in getattr(self, "_tasks", []):
            task.cancel()
        if getattr(self, "_watch", None):
            self._watch.remove(self.channel_name)
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()
        if getattr(self, "_counted", False):
            WEBSOCKET_CONNECTIONS.dec()
            self._counted = False

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def alert_batch(self, message):
        for frame in message["frames"]:
            await self._push(frame)

    async def alert_message(self, message):
        # The one-alert message of workers from before batching; kept while they drain.
        await self._push({"type": "alert", **message["event"]})

    async def _push(self, frame):
        if self.closing:
            return
        if frame["id"] in self._replayed_ids:
            return
        alert = frame["alert"]
        # Sent before a re-check shrank the groups, or to a group left since: not ours to see now.
        if not self.access.allows(site_id=alert.get("site_id"), customer_id=alert.get("customer_id")):
            return
        await self.send_json(frame)

    async def command_batch(self, message):
        for frame in message["frames"]:
            await self._push_command(frame)

    async def _push_command(self, frame):
        if self.closing or not getattr(self, "reads_commands", False):
            return
        # Sent to the site's group and the ALL group only; checked again here, as for alerts.
        if not self.access.allows(site_id=frame["command"].get("site_id"), customer_id=None):
            return
        await self.send_json(frame)
