"""Sending to WebSocket groups from sync code (event handlers, services), and telling a user's open
connections that their access changed.

``group_send_many`` is the one way sync code reaches the channel layer. With channels_redis it runs
the sends on one event loop kept per process: the layer pools its Redis connections per loop, and
``async_to_sync`` would start a fresh loop (a thread, new connections) for every call, which cost
about 20 ms per call against 3 ms here (bench/alert_fanout.py). Other layers (the in-memory ones of
embedded mode and tests) keep ``async_to_sync``, which runs on the caller's loop when there is one.

Every connection of a user joins ``user.{id}``. ``notify_access_changed`` sends ``access.changed``
there after the current transaction commits; a consumer receiving it re-reads the user, its token
or session, and its grants, then leaves the groups it may no longer join or closes (4403) if the
user was deactivated or its credential revoked. Call it from every service that deactivates a user,
revokes a token, changes a role or changes grants. Delivery is best effort: when the channel layer
is down the consumers' periodic re-check is the backstop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ACCESS_CHANGED = "access.changed"
SEND_TIMEOUT_S = 10

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def group_send_many(messages: list[tuple[str, dict]]) -> None:
    """Send each ``(group, message)``, concurrently; raises if the layer fails or takes too long."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    if type(layer).__module__.startswith("channels_redis"):
        asyncio.run_coroutine_threadsafe(send_all(), _sender_loop()).result(timeout=SEND_TIMEOUT_S)
    else:
        async_to_sync(send_all)()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        # A forked child (prefork pool) inherits the variable but not the thread running the loop.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer-sender", daemon=True).start()
        return _loop


def notify_access_changed(*user_ids: int) -> None:
    """After commit (at once outside a transaction), ask these users' open connections to re-check."""
    ids = sorted({int(pk) for pk in user_ids})
    if ids:
        transaction.on_commit(lambda: _send(ids))


def _send(user_ids: list[int]) -> None:
    try:
        group_send_many([(user_group(pk), {"type": ACCESS_CHANGED}) for pk in user_ids])
    except Exception:
        logger.warning("access change not pushed; connections re-check on their own", extra={"users": user_ids[:20]})
