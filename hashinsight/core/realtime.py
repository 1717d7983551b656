"""Telling a user's open WebSocket connections that their access changed, so they re-check it now
instead of at their next periodic re-check.

Every connection of a user joins ``user.{id}``. ``notify_access_changed`` sends ``access.changed``
there after the current transaction commits; a consumer receiving it re-reads the user, its token
or session, and its grants, then leaves the groups it may no longer join or closes (4403) if the
user was deactivated or its credential revoked. Call it from every service that deactivates a user,
revokes a token, changes a role or changes grants. Delivery is best effort: when the channel layer
is down the consumers' periodic re-check is the backstop."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ACCESS_CHANGED = "access.changed"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def notify_access_changed(*user_ids: int) -> None:
    """After commit (at once outside a transaction), ask these users' open connections to re-check."""
    ids = sorted({int(pk) for pk in user_ids})
    if ids:
        transaction.on_commit(lambda: _send(ids))


def _send(user_ids: list[int]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send_all)(layer, user_ids)
    except Exception:
        logger.warning("access change not pushed; connections re-check on their own", extra={"users": user_ids[:20]})


async def _send_all(layer, user_ids: list[int]) -> None:
    await asyncio.gather(*(layer.group_send(user_group(pk), {"type": ACCESS_CHANGED}) for pk in user_ids))
