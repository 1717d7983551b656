"""Commands on the edge (edge/collector/commands.py): the signature, site, expiry, clock skew and nonce checks
before anything runs, the durable nonce store, and execution on the project's simulator. Standard library and
the edge's own code only; time is a settable clock (nothing sleeps)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from edge.collector import commands
from edge.collector.adapters.base import Adapter, AdapterError, UnsupportedCommand
from edge.collector.adapters.cgminer import CGMinerAdapter
from edge.collector.commands import CommandVerifier, NonceStore, Refusal, VerifiedCommand, execute
from edge.collector.sample import MinerSpec, Sample
from edge.signing import SIGNED_FIELDS, signature_of
from edge.tests.test_collector_adapters import _simulator

KEY = bytes(range(100, 132))
SECRET = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()  # as credentials.json holds it
NOW = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_counter = iter(range(1_000_000))


def envelope(key: bytes = KEY, **changes) -> dict:
    payload = {
        "command_id": f"cmd_{next(_counter)}",
        "site_id": 7,
        "targets": ["SIM-0001"],
        "type": "SET_FAN",
        "params": {"percent": 80},
        "priority": 5,
        "expires_at": iso(NOW + timedelta(minutes=10)),
        "dedupe_key": "fan:80",
        "signed_at": iso(NOW - timedelta(seconds=2)),
        "nonce": f"nonce-{next(_counter)}",
    }
    payload.update(changes)
    return {**payload, "signature": signature_of(payload, key)}


@pytest.fixture
def store(tmp_path):
    s = NonceStore(tmp_path / "spool.sqlite3")
    yield s
    s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(store, clock):
    return CommandVerifier(SECRET, store, clock, site_id=7)


def test_a_good_command_is_accepted(verifier, store):
    env = envelope(params={"percent": 80, "note": "ünï"}, site_id="7")  # "7" and 7 are the same site
    result = verifier.verify(env)
    assert isinstance(result, VerifiedCommand), result
    assert result.command_id == env["command_id"] and result.type == "SET_FAN"
    assert result.targets == ("SIM-0001",) and result.params == {"percent": 80, "note": "ünï"}
    assert result.expires_at == NOW + timedelta(minutes=10) and result.expires_at.tzinfo is not None
    assert store.knows(env["nonce"])


TAMPERED = {
    "command_id": "cmd_evil",
    "site_id": 8,
    "targets": ["SIM-0001", "SIM-0002"],
    "type": "HASHING_DISABLE",
    "params": {"percent": 0},
    "priority": 9,
    "expires_at": iso(NOW + timedelta(hours=5)),
    "dedupe_key": "other",
    "signed_at": iso(NOW - timedelta(seconds=1)),
    "nonce": "fresh-nonce",
}


@pytest.mark.parametrize("name", SIGNED_FIELDS)
def test_each_field_tampered_is_refused(verifier, store, name):
    assert set(TAMPERED) == set(SIGNED_FIELDS)
    env = envelope()
    env[name] = TAMPERED[name]
    result = verifier.verify(env)
    assert isinstance(result, Refusal) and result.reason == "bad_signature", result
    assert not result
    assert len(store) == 0  # nothing remembered for a refused command


def test_signature_tampered_or_from_another_key_is_refused(verifier):
    env = envelope()
    sig = bytearray(base64.b64decode(env["signature"]))
    sig[0] ^= 1
    env["signature"] = base64.b64encode(bytes(sig)).decode()
    assert verifier.verify(env).reason == "bad_signature"
    assert verifier.verify(envelope(key=bytes(32))).reason == "bad_signature"
    assert verifier.verify({**envelope(), "signature": 12}).reason == "malformed"


def test_missing_or_unsigned_fields_are_malformed(verifier):
    env = envelope()
    del env["nonce"]
    refusal = verifier.verify(env)
    assert refusal.reason == "malformed" and "missing nonce" in refusal.message
    refusal = verifier.verify({**envelope(), "run_as": "root"})
    assert refusal.reason == "malformed" and "unsigned fields run_as" in refusal.message
    assert verifier.verify(["not", "an", "object"]).reason == "malformed"


def test_signed_but_unusable_commands_are_malformed(verifier):
    assert verifier.verify(envelope(expires_at="tomorrow")).reason == "malformed"
    assert verifier.verify(envelope(expires_at="2026-11-26T02:00:00")).reason == "malformed"  # no zone
    assert verifier.verify(envelope(targets="SIM-0001")).reason == "malformed"
    assert verifier.verify(envelope(params=[1])).reason == "malformed"
    assert verifier.verify(envelope(signed_at=iso(NOW + timedelta(hours=1)))).reason == "malformed"  # after expiry
    assert verifier.verify(envelope(expires_at=iso(NOW + timedelta(days=3)))).reason == "malformed"  # lifetime


def test_expired_command_is_refused(verifier, clock):
    assert verifier.verify(envelope(expires_at=iso(NOW - timedelta(seconds=1)))).reason == "expired"
    env = envelope(expires_at=iso(NOW + timedelta(seconds=30)))
    clock.advance(30)  # exactly at expiry: too late
    assert verifier.verify(env).reason == "expired"


def test_wrong_site_is_refused(verifier, store):
    refusal = verifier.verify(envelope(site_id=8))
    assert refusal.reason == "wrong_site" and len(store) == 0


def test_signed_too_far_in_the_future_is_clock_skew(verifier):
    refusal = verifier.verify(envelope(signed_at=iso(NOW + timedelta(seconds=301))))
    assert refusal.reason == "clock_skew"
    assert isinstance(verifier.verify(envelope(signed_at=iso(NOW + timedelta(seconds=299)))), VerifiedCommand)


def test_replayed_nonce_is_refused_even_with_another_command_id(verifier):
    env = envelope()
    assert isinstance(verifier.verify(env), VerifiedCommand)
    assert verifier.verify(env).reason == "replayed"
    again = envelope(nonce=env["nonce"])  # a new, validly signed command reusing the nonce
    assert verifier.verify(again).reason == "replayed"


def test_nonces_survive_a_restart(tmp_path, clock):
    path = tmp_path / "spool.sqlite3"
    env = envelope()
    first = NonceStore(path)
    assert isinstance(CommandVerifier(SECRET, first, clock, site_id=7).verify(env), VerifiedCommand)
    first.record_result(env["nonce"], [{"miner": "SIM-0001", "status": "ok", "message": "done"}])
    first.close()
    second = NonceStore(path)
    try:
        refusal = CommandVerifier(SECRET, second, clock, site_id=7).verify(env)
        assert refusal.reason == "replayed"
        assert refusal.previous_result == [{"miner": "SIM-0001", "status": "ok", "message": "done"}]
    finally:
        second.close()


def test_nonces_are_pruned_after_their_commands_expiry(verifier, store, clock):
    short = envelope(expires_at=iso(NOW + timedelta(seconds=60)))
    long = envelope(expires_at=iso(NOW + timedelta(hours=2)))
    assert isinstance(verifier.verify(short), VerifiedCommand) and isinstance(verifier.verify(long), VerifiedCommand)
    clock.advance(60 + 299)  # expired, but still within the skew tolerance: kept
    assert store.prune(clock(), keep_s=verifier.max_skew_s) == 0 and store.knows(short["nonce"])
    clock.advance(2)
    assert store.prune(clock(), keep_s=verifier.max_skew_s) == 1
    assert not store.knows(short["nonce"]) and store.knows(long["nonce"])
    assert verifier.verify(short).reason == "expired"  # a late replay is still refused, by its expiry


def test_accepting_a_command_prunes_old_nonces(verifier, store, clock):
    old = envelope(expires_at=iso(NOW + timedelta(seconds=10)))
    verifier.verify(old)
    clock.advance(3600)
    fresh = envelope(expires_at=iso(clock() + timedelta(minutes=5)), signed_at=iso(clock()))
    assert isinstance(verifier.verify(fresh), VerifiedCommand)
    assert not store.knows(old["nonce"]) and len(store) == 1


def test_the_store_can_share_the_spools_connection(tmp_path):
    db = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    store = NonceStore(db)
    assert store.remember("n1", command_id="c1", expires_at=NOW, now=NOW, keep_s=0)
    assert not store.remember("n1", command_id="c1", expires_at=NOW, now=NOW, keep_s=0)
    store.close()  # not its connection: stays open
    assert db.execute("SELECT command_id FROM command_nonces").fetchall() == [("c1",)]
    db.close()


# --- execution ---------------------------------------------------------------------------------------------------


class FakeAdapter(Adapter):
    name = "fake"

    def __init__(self):
        self.calls = []

    async def poll(self, miner, *, ts):
        return Sample(miner=miner.serial, ts=ts, status="hashing", hashrate_ths=200.0, fan_rpm=[5000])

    async def execute(self, miner, command, params):
        self.calls.append((miner.serial, command, params))
        if miner.serial == "UNSUP":
            raise UnsupportedCommand("no fan control here")
        if miner.serial == "FAIL":
            raise AdapterError("refused: busy")
        if miner.serial == "BUG":
            raise RuntimeError("boom")
        return {"STATUS": [{"STATUS": "S", "Msg": "Fan duty fixed at 80 %"}]}


def verified(command_type: str, targets, params=None) -> VerifiedCommand:
    return VerifiedCommand(
        command_id="cmd_x", site_id=7, type=command_type, targets=tuple(targets), params=params or {},
        priority=None, expires_at=NOW, signed_at=NOW, dedupe_key=None, nonce="n-exec", payload={},
    )  # fmt: skip


def test_execute_reports_each_target_and_translates_parameters():
    adapter = FakeAdapter()
    miners = {s: MinerSpec(s, "127.0.0.1", 4028) for s in ("OK", "UNSUP", "FAIL", "BUG")}
    results = asyncio.run(
        execute(verified("SET_FAN", ["OK", "UNSUP", "FAIL", "BUG", "GHOST"], {"percent": 80}), adapter, miners)
    )
    assert [(r["miner"], r["status"]) for r in results] == [
        ("OK", "ok"), ("UNSUP", "unsupported"), ("FAIL", "failed"), ("BUG", "failed"), ("GHOST", "failed"),
    ]  # fmt: skip
    assert results[0]["message"] == "Fan duty fixed at 80 %"
    assert results[0]["before_state"]["hashrate_ths"] == 200.0 and results[0]["before_state"]["fan_rpm"] == [5000]
    assert "busy" in results[2]["message"] and "RuntimeError" in results[3]["message"]
    assert "unknown miner" in results[4]["message"] and "before_state" not in results[4]
    assert ("OK", "SET_FAN", {"speed_pct": 80}) in adapter.calls  # the server's percent, the adapter's speed_pct
    assert commands.adapter_params("POOL_SET", {"url": "u", "worker": "w"}) == {"url": "u", "user": "w"}


def test_execute_refuses_unknown_types_and_maps_legacy_names():
    adapter = FakeAdapter()
    miners = {"OK": MinerSpec("OK", "127.0.0.1", 4028)}
    (result,) = asyncio.run(execute(verified("SELF_DESTRUCT", ["OK"]), adapter, miners))
    assert result["status"] == "unsupported" and adapter.calls == []
    asyncio.run(execute(verified("reboot", ["OK"]), adapter, miners, read_before=False))
    assert adapter.calls == [("OK", "MINER_RESTART", {})]


def test_verified_commands_run_on_the_simulator(tmp_path):
    sim, sim_clock, _base = _simulator(1, [{"serial": "SIM-CMD", "model": "antminer-s21-200t"}])
    m = sim.miners[0]
    miners = {m.serial: MinerSpec(m.serial, "127.0.0.1", m.port)}
    store = NonceStore(tmp_path / "spool.sqlite3")
    verifier = CommandVerifier(SECRET, store, Clock(), site_id=7)
    adapter = CGMinerAdapter(timeout=2)
    seen = {}

    async def run(command_type: str, params: dict) -> dict:
        env = envelope(type=command_type, targets=[m.serial], params=params)
        command = verifier.verify(env)
        assert isinstance(command, VerifiedCommand), command
        (result,) = await execute(command, adapter, miners, nonce_store=store)
        seen[command_type] = env["nonce"]
        return result

    async def scenario():
        await sim.start()
        try:
            sim_clock.advance(600)
            assert m.mining
            disabled = await run("HASHING_DISABLE", {})
            assert disabled["status"] == "ok", disabled
            assert disabled["before_state"]["status"] == "hashing" and disabled["before_state"]["hashrate_ths"] > 100
            assert not m.mining  # the simulator stopped hashing
            sim_clock.advance(60)
            enabled = await run("HASHING_ENABLE", {})
            assert enabled["status"] == "ok" and enabled["before_state"]["status"] == "idle", enabled
            assert m.mining
            assert m.fan_override_pct is None
            fan = await run("SET_FAN", {"percent": 85})
            assert fan["status"] == "ok" and m.fan_override_pct == 85
            power = await run("POWER_MODE", {"mode": "low"})
            assert power["status"] == "ok" and m.power_mode == "low"
            pool = await run("POOL_SET", {"url": "stratum+tcp://pool.example:3333", "worker": "acct.w9"})
            assert pool["status"] == "ok" and m.pools[0]["url"] == "stratum+tcp://pool.example:3333"
            assert m.pools[0]["user"] == "acct.w9"
            bad = await run("SET_FAN", {"percent": 101})
            assert bad["status"] == "failed" and m.fan_override_pct == 85
        finally:
            await adapter.close()
            await sim.stop()

    try:
        asyncio.run(scenario())
        assert store.result_of(seen["HASHING_DISABLE"])[0]["status"] == "ok"  # kept for a re-delivery's ack
    finally:
        store.close()


def test_a_verifier_needs_the_devices_site(store):
    with pytest.raises(ValueError, match="site is unknown"):
        CommandVerifier(SECRET, store, site_id=None)
