"""The embedded mode's channel layer: Channels' in-memory layer, made safe to call from the Celery
worker threads that ``run_embedded`` runs beside uvicorn.

The in-memory layer keeps asyncio queues bound to the server's event loop. A handler in a worker
thread runs ``async_to_sync(group_send)`` on a loop of its own, and waking a waiter of another loop
that way is not thread-safe (messages can sit unseen until the next heartbeat). Sends from a foreign
loop are therefore handed to the server's loop."""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    _home_loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, channel):
        self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def _on_home_loop(self, coro):
        home = self._home_loop
        if home is None or home is asyncio.get_running_loop() or home.is_closed():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

    async def send(self, channel, message):
        return await self._on_home_loop(super().send(channel, message))

    async def group_send(self, group, message):
        return await self._on_home_loop(super().group_send(group, message))
