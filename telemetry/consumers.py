"""``/ws/alerts/``: live alert events for the groups the user's grants allow, nothing else."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from hashinsight.observability.metrics import WEBSOCKET_CONNECTIONS
from telemetry.groups import groups_for

HEARTBEAT_S = 30


class AlertConsumer(AsyncJsonWebsocketConsumer):
    heartbeat_s = HEARTBEAT_S

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)  # refused before accept: nothing is ever sent
            return
        self.groups_joined = await database_sync_to_async(groups_for)(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        WEBSOCKET_CONNECTIONS.inc()
        self._counted = True
        await self.send_json({"type": "hello", "groups": len(self.groups_joined)})
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self):
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.send_json({"type": "heartbeat"})

    async def disconnect(self, code):
        if getattr(self, "_heartbeat", None):
            self._heartbeat.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "_counted", False):
            WEBSOCKET_CONNECTIONS.dec()
            self._counted = False

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def alert_message(self, message):
        await self.send_json({"type": "alert", **message["event"]})
