"""The collector's command loop: each envelope verified, run once through the adapter and acknowledged; refusals
acknowledged as failed with the reason; a redelivered command acknowledged again with its first results and never
run twice; a lost acknowledgement left to the server's redelivery; the long poll's failures backed off."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest

from edge.collector.client import AuthRefused, Retryable
from edge.collector.credentials import Credentials
from edge.collector.runner import Collector
from edge.collector.spool import Spool
from edge.signing import SIGNED_FIELDS, signature_of
from edge.tests.collector_fakes import FakeAdapter, make_config

KEY = bytes(range(1, 33))
SECRET = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
SITE = 7


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(key: bytes = KEY, **changes) -> dict:
    now = datetime.now(UTC)
    payload = {
        "command_id": 41,
        "site_id": SITE,
        "targets": ["M-001", "M-002"],
        "type": "SET_FAN",
        "params": {"percent": 80},
        "priority": 5,
        "expires_at": iso(now + timedelta(minutes=10)),
        "dedupe_key": "",
        "signed_at": iso(now - timedelta(seconds=1)),
        "nonce": "nonce-41",
        **changes,
    }
    assert set(payload) == set(SIGNED_FIELDS)
    return {**payload, "signature": signature_of(payload, key)}


class FakeClient:
    base_url = "http://fake"

    def __init__(self, polls=(), ack_error: Exception | None = None):
        self.polls = list(polls)
        self.acks: list[tuple] = []
        self.ack_error = ack_error

    async def poll_commands(self, wait):
        if not self.polls:
            await asyncio.sleep(0)
            return []
        item = self.polls.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def ack_command(self, command_id, nonce, results):
        if self.ack_error is not None:
            error, self.ack_error = self.ack_error, None
            raise error
        self.acks.append((command_id, nonce, results))
        return {"status": "COMPLETED"}


@pytest.fixture
def setup(tmp_path):
    config = make_config(tmp_path)
    spool = Spool(config.spool_path)
    adapter = FakeAdapter()
    client = FakeClient()
    collector = Collector(
        config,
        client=client,
        spool=spool,
        adapters={"cgminer": adapter},
        credentials=Credentials(token="t", hmac_secret=SECRET, device_id=1, site_id=SITE),
    )

    async def load():
        await collector.load_inventory()

    asyncio.run(load())
    yield collector, client, adapter
    spool.close()


def handle(collector, env):
    verifier = collector._verifier = getattr(collector, "_verifier", None) or collector.command_verifier()
    return asyncio.run(collector.handle_command(verifier, env))


def test_a_good_command_runs_once_and_is_acknowledged_per_miner(setup):
    collector, client, adapter = setup
    results = handle(collector, envelope())
    assert [(s, c, p) for s, c, p in adapter.executed] == [
        ("M-001", "SET_FAN", {"speed_pct": 80}),
        ("M-002", "SET_FAN", {"speed_pct": 80}),
    ]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["before_state"]["status"] == "hashing"
    assert client.acks == [(41, "nonce-41", results)]


def test_a_redelivered_command_is_acknowledged_again_without_running(setup):
    collector, client, adapter = setup
    env = envelope()
    first = handle(collector, env)
    again = handle(collector, env)
    assert len(adapter.executed) == 2  # the two targets, once
    assert again == first and client.acks[1] == (41, "nonce-41", first)


def test_a_lost_acknowledgement_is_left_to_the_redelivery(setup):
    collector, client, adapter = setup
    client.ack_error = Retryable("no answer")
    env = envelope()
    assert handle(collector, env) is None and client.acks == []
    results = handle(collector, env)  # the server sends it again
    assert client.acks == [(41, "nonce-41", results)] and len(adapter.executed) == 2


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (lambda: {**envelope(), "params": {"percent": 5}}, "bad_signature"),
        (lambda: envelope(key=bytes(32)), "bad_signature"),
        (lambda: envelope(expires_at=iso(datetime.now(UTC) - timedelta(seconds=1)),
                          signed_at=iso(datetime.now(UTC) - timedelta(minutes=1))), "expired"),
        (lambda: envelope(site_id=8), "wrong_site"),
    ],
)  # fmt: skip
def test_a_refused_command_is_not_run_and_is_acknowledged_failed_with_the_reason(setup, env, reason):
    collector, client, adapter = setup
    results = handle(collector, env())
    assert adapter.executed == []
    assert [r["miner"] for r in results] == ["M-001", "M-002"]
    assert all(r["status"] == "failed" and f"refused by the edge: {reason}" in r["message"] for r in results)
    assert client.acks[0][0] == 41


def test_an_interrupted_command_is_not_run_again(setup):
    collector, _client, adapter = setup
    env = envelope()
    verifier = collector._verifier = collector.command_verifier()
    verifier.verify(env)  # accepted (nonce recorded), then the collector "stopped" before running it
    results = handle(collector, env)
    assert adapter.executed == []
    assert all(r["status"] == "failed" and r["message"].startswith("interrupted") for r in results)


def test_an_envelope_without_a_numeric_id_is_not_acknowledged(setup):
    collector, client, adapter = setup
    env = envelope()
    env["command_id"] = "../../register"
    assert handle(collector, env) is None
    assert client.acks == [] and adapter.executed == []


def test_no_credentials_no_command_polling(tmp_path):
    config = make_config(tmp_path)
    spool = Spool(config.spool_path)
    try:
        collector = Collector(config, client=FakeClient(), spool=spool)
        assert collector.command_verifier() is None  # no creds.json in tmp_path
        collector.credentials = Credentials(token="t", hmac_secret="", site_id=SITE)
        assert collector.command_verifier() is None
    finally:
        spool.close()


def test_the_loop_polls_runs_and_backs_off_on_errors(setup):
    collector, client, adapter = setup
    delays = []

    async def sleep(seconds):
        delays.append(seconds)

    collector._sleep = sleep
    client.polls = [Retryable("down"), [envelope()], AuthRefused("revoked", status=401)]

    async def scenario():
        with pytest.raises(AuthRefused):
            await collector._command_loop()

    asyncio.run(scenario())
    assert len(delays) == 1 and len(client.acks) == 1 and len(adapter.executed) == 2


def test_a_long_poll_in_flight_does_not_hold_up_stopping(tmp_path):
    """The server answers nothing (a long poll in flight): cancelling the poll ends asyncio.run at once instead
    of joining the request's thread (deadline far below the request's 30 s timeout)."""
    import socket
    import time

    from edge.collector.client import ServerClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = ServerClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", timeout=30)

    async def scenario():
        task = asyncio.create_task(client.poll_commands(25))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    try:
        asyncio.run(scenario())
        assert time.monotonic() - started < 10
    finally:
        listener.close()
