"""/ws/alerts/ beyond the handshake: revocation reaching open sockets, the Origin rule for token vs
cookie authentication, resuming missed alerts, and the batched fan-out.

Run against the in-memory layer always and against Redis (channels_redis, the production layer)
when REDIS_URL is set."""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio
import redis
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone
from guardian.shortcuts import remove_perm

from conftest import need_service
from hashinsight.accounts.models import ApiToken
from hashinsight.accounts.services import api_token_create, api_token_revoke, user_deactivate
from hashinsight.core.realtime import notify_access_changed
from hashinsight.events import outbox
from sites.models import SITE_VIEW
from sites.services import site_grant
from telemetry import services
from telemetry.consumers import AlertConsumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _channel_layer_url(url: str) -> str:
    parsed = urlsplit(url)  # the layer's own database, as settings derive it: REDIS_URL's + 2
    return urlunsplit(parsed._replace(path=f"/{int(parsed.path.strip('/') or 0) + 2}"))


@pytest_asyncio.fixture(params=["memory", "redis"])
async def layer(request, settings):
    prefix = None
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        need_service("redis", url, 6379)
        layer_url = _channel_layer_url(url)
        # A prefix of its own, not a FLUSHDB: tests in other processes may share this database.
        prefix = f"asgi-test-{uuid.uuid4().hex[:12]}"
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [layer_url], "prefix": prefix},
            }
        }
    else:
        settings.CHANNEL_LAYERS = MEMORY
    yield channel_layers["default"]
    if prefix:
        client = redis.Redis.from_url(layer_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def application():
    from hashinsight.asgi import application as app

    return app


async def connect(*, token=None, session=None, origin=b"http://testserver", path="/ws/alerts/"):
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    comm = WebsocketCommunicator(application(), path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def token_for(user):
    return (await sync_to_async(api_token_create)(user=user, name="ws"))[1]


async def session_for(user):
    def login():
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return await sync_to_async(login)()


async def next_frame(comm, *, timeout=5.0, skip=("heartbeat",)):
    """The next frame that is not a heartbeat; a close arrives as ``{"closed": code}``."""
    deadline = time.monotonic() + timeout
    while True:
        output = await comm.receive_output(timeout=max(0.01, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return {"closed": output.get("code")}
        frame = json.loads(output["text"])
        if frame["type"] not in skip:
            return frame


async def raise_alert(farm, miner_key, message="fan failure", alert_type="fan"):
    miner = farm.miners[miner_key]

    def go():
        return services.alert_raise(
            site=miner.site, miner=miner, alert_type=alert_type, severity="critical", message=message
        )

    return await sync_to_async(go)()


# --- revocation -----------------------------------------------------------------------------------


async def test_revoked_token_closes_its_socket_within_seconds(farm, layer):
    user = farm.users["client_x"]
    token = await token_for(user)
    comm, ok, _ = await connect(token=token)
    assert ok and (await next_frame(comm))["type"] == "hello"
    token_row = await sync_to_async(ApiToken.objects.get)(user=user)
    started = time.monotonic()
    await sync_to_async(api_token_revoke)(token=token_row)
    assert await next_frame(comm, timeout=3) == {"closed": 4403}
    assert time.monotonic() - started < 3
    await comm.disconnect()


async def test_deactivated_user_is_closed_and_gets_no_more_alerts(farm, layer):
    comm, ok, _ = await connect(token=await token_for(farm.users["siteowner_a"]))
    assert ok and (await next_frame(comm))["type"] == "hello"
    await sync_to_async(user_deactivate)(actor=farm.users["owner"], user=farm.users["siteowner_a"])
    assert await next_frame(comm, timeout=3) == {"closed": 4403}
    await raise_alert(farm, ("site-a", "own"))
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_a_revocation_outside_the_services_is_caught_by_the_periodic_recheck(farm, layer, monkeypatch):
    monkeypatch.setattr(AlertConsumer, "recheck_s", 0.2)
    user = farm.users["client_x"]
    comm, ok, _ = await connect(token=await token_for(user))
    assert ok and (await next_frame(comm))["type"] == "hello"
    # A raw UPDATE: no service, no notification; only the consumer's own re-check can notice.
    await sync_to_async(ApiToken.objects.filter(user=user).update)(revoked_at=timezone.now())
    assert await next_frame(comm, timeout=5) == {"closed": 4403}
    await comm.disconnect()


async def test_a_removed_site_grant_stops_that_sites_alerts(farm, layer):
    siteowner = farm.users["siteowner_a"]
    await sync_to_async(site_grant)(user=siteowner, site=farm.site_b, manage=False)
    comm, ok, _ = await connect(token=await token_for(siteowner))
    assert ok and (await next_frame(comm))["type"] == "hello"
    seen = await raise_alert(farm, ("site-a", "own"), alert_type="before")
    assert (await next_frame(comm))["alert"]["alert_id"] == seen.pk

    def remove_site_a():
        with transaction.atomic():
            remove_perm(SITE_VIEW, siteowner, farm.site_a)  # how an admin edit outside the services looks
            notify_access_changed(siteowner.pk)

    await sync_to_async(remove_site_a)()
    assert await next_frame(comm, timeout=3) == {"type": "access", "groups": 2}  # user.N and site.B
    await raise_alert(farm, ("site-a", "own"), alert_type="hidden")
    still = await raise_alert(farm, ("site-b", "own"), alert_type="still visible")
    frame = await next_frame(comm)
    assert frame["alert"]["alert_id"] == still.pk  # site A's alert never came
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_a_grant_removed_without_notice_is_left_at_the_next_recheck(farm, layer, monkeypatch):
    monkeypatch.setattr(AlertConsumer, "recheck_s", 0.2)
    client = farm.users["client_x"]
    comm, ok, _ = await connect(token=await token_for(client))
    assert ok and (await next_frame(comm))["type"] == "hello"
    await sync_to_async(remove_perm)("sites.view_customer", client, farm.client_x)
    assert await next_frame(comm, timeout=5) == {"type": "access", "groups": 1}
    await raise_alert(farm, ("site-a", "client-x"))
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_an_ended_session_closes_its_socket(farm, layer):
    session = await session_for(farm.users["owner"])
    comm, ok, _ = await connect(session=session)
    assert ok and (await next_frame(comm))["type"] == "hello"

    def log_out():
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key=session).delete()
        notify_access_changed(farm.users["owner"].pk)

    await sync_to_async(log_out)()
    assert await next_frame(comm, timeout=3) == {"closed": 4403}
    await comm.disconnect()


# --- Origin: checked for cookie sessions, not for Bearer tokens -------------------------------------


@pytest.mark.parametrize(
    ("auth", "origin", "accepted"),
    [
        ("token", None, True),
        ("token", b"https://elsewhere.example", True),
        ("token", b"http://testserver", True),
        ("cookie", b"http://testserver", True),
        ("cookie", None, False),
        ("cookie", b"https://elsewhere.example", False),
    ],
)
async def test_origin_is_checked_for_cookies_only(farm, layer, auth, origin, accepted):
    owner = farm.users["owner"]
    if auth == "token":
        comm, connected, _ = await connect(token=await token_for(owner), origin=origin)
    else:
        comm, connected, _ = await connect(session=await session_for(owner), origin=origin)
    assert connected is accepted
    if accepted:
        assert (await next_frame(comm))["type"] == "hello"
        await comm.disconnect()


async def test_a_bad_token_is_refused_even_beside_a_valid_session_cookie(farm, layer):
    _, connected, code = await connect(token="hi_nope_nope", session=await session_for(farm.users["owner"]))
    assert not connected and code == 4401


# --- resuming missed alerts ---------------------------------------------------------------------


async def test_reconnect_with_after_gets_exactly_the_missed_alerts_in_scope(farm, layer):
    token_x, token_y = await token_for(farm.users["client_x"]), await token_for(farm.users["client_y"])
    comm, ok, _ = await connect(token=token_x)
    assert ok and (await next_frame(comm))["type"] == "hello"
    await raise_alert(farm, ("site-a", "client-x"), alert_type="seen")
    last_seen = (await next_frame(comm))["id"]
    await comm.disconnect()

    missed = [
        await raise_alert(farm, ("site-a", "client-x"), alert_type="missed-1"),
        await raise_alert(farm, ("site-b", "client-x"), alert_type="missed-2"),
    ]
    other = await raise_alert(farm, ("site-a", "client-y"), alert_type="not yours")
    await raise_alert(farm, ("site-a", "own"), alert_type="operator only")
    missed.append(await raise_alert(farm, ("site-a", "client-x"), alert_type="missed-1"))  # an update

    comm, ok, _ = await connect(token=token_x, path=f"/ws/alerts/?after={last_seen}")
    assert ok
    assert await next_frame(comm) == {"type": "hello", "groups": 2, "replayed": 3, "truncated": False}
    frames = [await next_frame(comm) for _ in range(3)]
    assert [f["alert"]["alert_id"] for f in frames] == [a.pk for a in missed]
    assert [f["event_type"] for f in frames] == ["alert.raised", "alert.raised", "alert.updated"]
    assert frames[0].keys() == {"type", "id", "event_type", "alert"}  # the live frame's shape
    assert await comm.receive_nothing(timeout=0.3)
    # New alerts keep coming live after the replay.
    live = await raise_alert(farm, ("site-b", "client-x"), alert_type="live")
    assert (await next_frame(comm))["alert"]["alert_id"] == live.pk
    await comm.disconnect()

    comm_y, ok, _ = await connect(token=token_y, path=f"/ws/alerts/?after={last_seen}")
    assert ok and (await next_frame(comm_y))["replayed"] == 1
    assert (await next_frame(comm_y))["alert"]["alert_id"] == other.pk
    await comm_y.disconnect()


@pytest.mark.parametrize("after", ["garbage", str(uuid.UUID(int=1)), "", "%00%ff"])  # ids fixed: xdist, mutmut
async def test_unknown_or_malformed_after_replays_nothing(farm, layer, after):
    await raise_alert(farm, ("site-a", "own"))
    comm, ok, _ = await connect(token=await token_for(farm.users["owner"]), path=f"/ws/alerts/?after={after}")
    assert ok
    assert (await next_frame(comm))["replayed"] == 0
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_replay_is_capped_to_the_newest(farm, layer, monkeypatch):
    import telemetry.consumers as consumers_module
    from telemetry import replay

    monkeypatch.setattr(
        consumers_module,
        "missed_alert_frames",
        lambda *, scope, after: replay.missed_alert_frames(scope=scope, after=after, limit=2),
    )
    first = await raise_alert(farm, ("site-a", "own"), alert_type="a")
    cursor = await sync_to_async(lambda: str(outbox_event_for(first).pk))()
    for name in ("b", "c", "d"):
        await raise_alert(farm, ("site-a", "own"), alert_type=name)
    comm, ok, _ = await connect(token=await token_for(farm.users["owner"]), path=f"/ws/alerts/?after={cursor}")
    assert ok
    assert await next_frame(comm) == {"type": "hello", "groups": 2, "replayed": 2, "truncated": True}
    types = [(await next_frame(comm))["alert"]["alert_type"] for _ in range(2)]
    assert types == ["c", "d"]
    await comm.disconnect()


def outbox_event_for(alert):
    from hashinsight.events.models import OutboxEvent

    return OutboxEvent.objects.filter(payload__alert_id=alert.pk).order_by("created_at").first()


# --- batched fan-out ------------------------------------------------------------------------------


async def test_a_batch_of_alerts_is_one_group_send_per_group_and_one_frame_per_alert(farm, layer, monkeypatch):
    comm, ok, _ = await connect(token=await token_for(farm.users["owner"]))
    assert ok and (await next_frame(comm))["type"] == "hello"
    sends = []
    real = layer.group_send

    async def counting(group, message):
        sends.append((group, len(message.get("frames", []))))
        return await real(group, message)

    monkeypatch.setattr(layer, "group_send", counting)
    keys = [("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own"), ("site-b", "client-x")]

    def publish():
        with transaction.atomic():
            items = []
            for n, key in enumerate(keys):
                miner = farm.miners[key]
                items.append(
                    (f"alert:{900 + n}", {
                        "alert_id": 900 + n, "site_id": miner.site_id, "customer_id": miner.customer_id,
                        "miner_id": miner.pk, "alert_type": f"t{n}", "severity": "warning", "status": "open",
                        "count": 1, "message": "batch",
                    })
                )  # fmt: skip
            outbox.publish_many("alert.raised", items)

    await sync_to_async(publish)()
    frames = [await next_frame(comm) for _ in keys]
    assert [f["alert"]["alert_type"] for f in frames] == ["t0", "t1", "t2", "t3"]
    site_a, site_b = farm.site_a.pk, farm.site_b.pk
    x, y = farm.client_x.pk, farm.client_y.pk
    assert sorted(sends) == sorted(
        [("alerts.all", 4), (f"site.{site_a}", 3), (f"site.{site_b}", 1), (f"customer.{x}", 2), (f"customer.{y}", 1)]
    )
    await comm.disconnect()


async def test_live_copy_of_a_replayed_event_is_not_sent_twice(farm, layer):
    first = await raise_alert(farm, ("site-a", "own"), alert_type="a")
    second = await raise_alert(farm, ("site-a", "own"), alert_type="b")
    cursor, replayed = await sync_to_async(lambda: (outbox_event_for(first).pk, outbox_event_for(second)))()
    comm, ok, _ = await connect(token=await token_for(farm.users["owner"]), path=f"/ws/alerts/?after={cursor}")
    assert ok and (await next_frame(comm))["replayed"] == 1
    assert (await next_frame(comm))["id"] == str(replayed.pk)
    # A redelivery of the replayed event (its handler ran again) must not reach the client twice.
    await layer.group_send("alerts.all", {"type": "alert.batch", "frames": [
        {"type": "alert", "id": str(replayed.pk), "event_type": "alert.raised", "alert": replayed.payload}
    ]})  # fmt: skip
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_the_watch_flags_only_sockets_whose_access_changed_in_constant_queries(farm):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from telemetry.access_watch import Socket, _stale
    from telemetry.groups import groups_for

    def socket_for(name, *, session=False):
        user = farm.users[name]
        if session:
            client = Client()
            client.force_login(user)
            key, token_id = client.cookies["sessionid"].value, None
        else:
            key, token_id = None, api_token_create(user=user, name="watch")[0].pk
        return Socket(user.pk, token_id, key, frozenset(groups_for(user)))

    def check():
        from sites.selectors import scope_of, scopes_of

        everyone = list(farm.users.values())
        assert scopes_of(everyone) == {user.pk: scope_of(user) for user in everyone}  # the bulk form agrees
        sockets = {
            f"{name}-{session}": socket_for(name, session=session)
            for name in ("owner", "siteowner_a", "client_x", "client_y", "customer")
            for session in (False, True)
        }
        with CaptureQueriesContext(connection) as unchanged:
            assert _stale(sockets) == []
        ApiToken.objects.filter(user=farm.users["client_y"]).update(revoked_at=timezone.now())
        remove_perm(SITE_VIEW, farm.users["siteowner_a"], farm.site_a)
        farm.users["owner"].set_password("changed-password-1")  # ends its sessions (hash differs)
        farm.users["owner"].save()
        assert sorted(_stale(sockets)) == ["client_y-False", "owner-True", "siteowner_a-False", "siteowner_a-True"]
        return len(unchanged)

    queries = await sync_to_async(check)()
    assert queries <= 8  # tokens, sessions, users, and grants: not per socket


async def test_replay_includes_events_pushed_after_the_cursor_though_created_before_it(farm):
    # Handlers run out of creation order under a backlog: an event created before the client's last
    # one but pushed after it was never seen, and must come back; one pushed before it must not.
    from datetime import timedelta

    from hashinsight.events.models import OutboxEvent
    from sites.selectors import Scope
    from telemetry.replay import missed_alert_frames

    def scenario():
        t = timezone.now() - timedelta(hours=1)
        site = farm.site_a.pk

        def event(name, created_min, finished_min):
            payload = {
                "alert_id": 1, "site_id": site, "customer_id": None, "miner_id": None, "alert_type": name,
                "severity": "info", "status": "open", "count": 1, "message": name,
            }  # fmt: skip
            row = OutboxEvent.objects.create(event_type="alert.raised", aggregate="alert:1", payload=payload)
            finished = None if finished_min is None else t + timedelta(minutes=finished_min)
            OutboxEvent.objects.filter(pk=row.pk).update(
                created_at=t + timedelta(minutes=created_min), finished_at=finished,
                status="done" if finished else "dispatched",
            )  # fmt: skip
            return row

        cursor = event("cursor", 10, 11)
        event("seen before", 5, 6)
        event("long ago", -20, 12)  # outside the look-back window
        event("overtaken", 8, 12)
        event("still running", 9, None)
        event("after", 12, 13)
        frames, truncated = missed_alert_frames(scope=Scope("all"), after=str(cursor.pk))
        hidden, _ = missed_alert_frames(scope=Scope("sites", (farm.site_b.pk,)), after=str(cursor.pk))
        # A cursor from days ago replays only the last day.
        ancient = event("ancient cursor", -60 * 30, -60 * 30 + 1)
        event("day old", -60 * 25, -60 * 25 + 1)
        old, _ = missed_alert_frames(scope=Scope("all"), after=str(ancient.pk))
        return [f["alert"]["alert_type"] for f in frames], truncated, hidden, [f["alert"]["alert_type"] for f in old]

    names, truncated, hidden, old = await sync_to_async(scenario)()
    assert names == ["overtaken", "still running", "after"] and not truncated
    assert hidden == []
    assert "day old" not in old and "after" in old
