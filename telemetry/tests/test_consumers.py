"""/ws/alerts/: authentication, group isolation, heartbeat, and alert events pushed after commit."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from hashinsight.accounts.services import api_token_create
from telemetry import services
from telemetry.consumers import AlertConsumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def application():
    from hashinsight.asgi import application as app

    return app


async def connect(token: str | None = None):
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    comm = WebsocketCommunicator(application(), "/ws/alerts/", headers=headers)
    connected, code = await comm.connect()
    return comm, connected, code


async def raise_alert(farm, miner_key, message="fan failure"):
    miner = farm.miners[miner_key]

    def go():
        return services.alert_raise(
            site=miner.site, miner=miner, alert_type="fan", severity="critical", message=message
        )

    return await sync_to_async(go)()


async def token_for(user):
    return (await sync_to_async(api_token_create)(user=user, name="ws"))[1]


@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_anonymous_connections_are_refused():
    _, connected, code = await connect()
    assert not connected
    assert code == 4401


@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_client_a_never_receives_client_b_alerts(farm):
    comm_x, ok_x, _ = await connect(await token_for(farm.users["client_x"]))
    comm_y, ok_y, _ = await connect(await token_for(farm.users["client_y"]))
    comm_site_a, ok_a, _ = await connect(await token_for(farm.users["siteowner_a"]))
    assert ok_x and ok_y and ok_a
    for comm in (comm_x, comm_y, comm_site_a):
        assert (await comm.receive_json_from())["type"] == "hello"

    alert = await raise_alert(farm, ("site-a", "client-x"))  # transaction=True: commits, hand-off runs
    got_x = await comm_x.receive_json_from(timeout=3)
    assert got_x["type"] == "alert" and got_x["alert"]["alert_id"] == alert.pk
    got_site = await comm_site_a.receive_json_from(timeout=3)
    assert got_site["alert"]["alert_id"] == alert.pk

    # No waiting for silence: frames arrive in order, so the next frame each socket receives shows
    # that nothing it may not see came before it.
    hidden = await raise_alert(farm, ("site-b", "client-y"), message="B only")
    got_y = await comm_y.receive_json_from(timeout=3)
    assert got_y["alert"]["alert_id"] == hidden.pk  # not client X's alert raised before it
    marker = await raise_alert(farm, ("site-a", "client-x"), message="marker")  # a repeat: alert.updated
    for comm in (comm_x, comm_site_a):
        nxt = await comm.receive_json_from(timeout=3)
        assert (nxt["alert"]["alert_id"], nxt["alert"]["message"]) == (marker.pk, "marker")  # not B's
    for comm in (comm_x, comm_y, comm_site_a):
        await comm.disconnect()


@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_heartbeat(farm, monkeypatch):
    monkeypatch.setattr(AlertConsumer, "heartbeat_s", 0.1)
    comm, ok, _ = await connect(await token_for(farm.users["owner"]))
    assert ok
    assert (await comm.receive_json_from())["type"] == "hello"
    assert (await comm.receive_json_from(timeout=2))["type"] == "heartbeat"
    await comm.send_json_to({"type": "ping"})
    replies = [(await comm.receive_json_from(timeout=2))["type"] for _ in range(2)]
    assert "pong" in replies
    await comm.disconnect()


@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_repeats_update_the_same_alert_and_resolve_is_pushed(farm):
    comm, ok, _ = await connect(await token_for(farm.users["owner"]))
    assert ok
    await comm.receive_json_from()
    first = await raise_alert(farm, ("site-a", "own"))
    again = await raise_alert(farm, ("site-a", "own"))
    assert first.pk == again.pk and again.count == 2
    types = [(await comm.receive_json_from(timeout=3))["alert"]["count"] for _ in range(2)]
    assert types == [1, 2]
    await sync_to_async(services.alert_resolve)(alert=again)
    resolved = await comm.receive_json_from(timeout=3)
    assert resolved["alert"]["status"] == "resolved"
    await comm.disconnect()


@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_disconnect_leaves_every_group(farm):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    comm, ok, _ = await connect(await token_for(farm.users["siteowner_a"]))
    assert ok
    hello = await comm.receive_json_from()
    members = {group: set(channels) for group, channels in layer.groups.items() if channels}
    assert len(members) == hello["groups"] >= 2  # the user's own group and site A's
    (channel,) = set().union(*members.values())
    await comm.disconnect()
    assert [group for group, channels in layer.groups.items() if channel in channels] == []
