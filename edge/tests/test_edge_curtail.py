"""What rollback and CURTAIL need on the edge: the settings read before a command (pool, fan duty and mode, power
mode and limit) from canned replies, the simulator and pyasic; the samples' optional settings keys; the simulator's
soft power target; CURTAIL's per-target actions (power target, its fallback to a stop, stop, none); the restore at
the window's end on a settable clock, after a restart too; the restore report retried, and kept when refused.
Standard library and the edge's own code only (pyasic where installed); nothing sleeps."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest

from edge.collector.adapters.base import Adapter, AdapterError, UnsupportedCommand
from edge.collector.adapters.cgminer import CGMinerAdapter, map_reply
from edge.collector.client import Misconfigured, Retryable
from edge.collector.commands import VerifiedCommand, before_state, execute
from edge.collector.credentials import Credentials
from edge.collector.curtail import RESTORE_ATTEMPTS, RESTORE_RETRY_S, RestoreStore
from edge.collector.runner import Collector
from edge.collector.sample import MinerSpec, Sample
from edge.collector.spool import Spool
from edge.signing import signature_of
from edge.simulator import api
from edge.simulator.catalog import load_catalog
from edge.simulator.miner import SimMiner
from edge.tests.test_collector_adapters import _simulator

TS = "2026-11-26T01:00:00Z"
NOW = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
END = NOW + timedelta(hours=1)
KEY = bytes(range(7, 39))
SECRET = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
SITE = 3
BEFORE_KEYS = {"status", "hashrate_ths", "power_w", "fan_rpm", "temp_chip_max_c", "errors"}
SETTINGS_KEYS = {"pool_url", "pool_worker", "fan_percent", "power_mode", "power_limit_w"}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- settings read before a command ------------------------------------------------------------------------------

SIM_SUMMARY = {"MHS 1m": 200_100_000.0, "Accepted": 10, "Rejected": 0, "Mining": True, "Errors": [],
               "Power Mode": "low", "Power Target": 0, "Power Limit": 4270}  # fmt: skip
SIM_STATS = {"SN": "S-1", "fan_num": 2, "fan1": 4000, "fan2": 4100, "temp_chip1": "60-59-70-69",
             "chain_power": "2450 W", "Fan Percent": 62, "Fan Mode": "manual"}  # fmt: skip
SIM_POOLS = [
    {"POOL": 0, "URL": "stratum+tcp://a.example:3333", "User": "acct.a", "Status": "Alive", "Priority": 1,
     "Stratum Active": False},
    {"POOL": 1, "URL": "stratum+tcp://b.example:443", "User": "acct.b", "Status": "Alive", "Priority": 0,
     "Stratum Active": True},
]  # fmt: skip


def test_the_settings_come_from_the_reply_and_go_into_before_state():
    sample = map_reply("S-1", TS, SIM_SUMMARY, SIM_STATS, SIM_POOLS)
    assert (sample.pool_url, sample.pool_worker) == ("stratum+tcp://b.example:443", "acct.b")  # the active pool
    assert (sample.fan_pct, sample.fan_mode, sample.power_mode) == (62, "manual", "low")
    assert (sample.power_limit_w, sample.power_target_w) == (4270, None)  # Power Target 0: none set
    before = before_state(sample)
    assert set(before) == BEFORE_KEYS | SETTINGS_KEYS
    assert before["fan_percent"] == 62 and before["power_limit_w"] == 4270 and before["pool_worker"] == "acct.b"

    auto = map_reply("S-1", TS, SIM_SUMMARY, {**SIM_STATS, "Fan Mode": "auto"}, SIM_POOLS)
    assert before_state(auto)["fan_percent"] == "auto" and auto.fan_pct == 62  # the duty now, and who drives it


def test_without_settings_in_the_reply_before_state_has_the_base_keys_only():
    sample = map_reply("S-1", TS, {"MHS 5s": 1e8}, {"fan1": 5000}, [{"Status": "Alive"}])
    assert set(before_state(sample)) == BEFORE_KEYS
    assert set(sample.to_json()) == BEFORE_KEYS | {"miner", "ts", "temp_inlet_c", "temp_outlet_c", "accepted_shares",
                                                   "rejected_shares"}  # fmt: skip
    avalon = map_reply("A", TS, {"MHS av": 9e7}, {"MM ID0": "Temp[31] TMax[84] Fan1[4020] FanR[50%]"}, [])
    assert avalon.fan_pct == 50 and "fan_percent" not in before_state(avalon)  # the mode is unknown: not guessed


def test_samples_carry_the_optional_settings_keys_when_known_and_valid():
    sample = map_reply("S-1", TS, SIM_SUMMARY, SIM_STATS, SIM_POOLS).to_json()
    assert (sample["pool_url"], sample["fan_pct"], sample["power_mode"]) == ("stratum+tcp://b.example:443", 62, "low")
    assert not {"pool_worker", "fan_mode", "power_limit_w", "power_target_w"} & set(sample)  # not in the contract
    odd = Sample(miner="X", ts=TS, status="hashing", pool_url="s" * 256, fan_pct=101, power_mode="turbo").to_json()
    assert not {"pool_url", "fan_pct", "power_mode"} & set(odd)  # out of the server's limits: left out, not sent


def test_before_state_from_the_simulator():
    sim, clock, _base = _simulator(1, [{"serial": "SIM-B", "model": "antminer-s21-200t"}])
    m = sim.miners[0]
    miners = {m.serial: MinerSpec(m.serial, "127.0.0.1", m.port)}
    adapter = CGMinerAdapter(timeout=2)

    async def scenario():
        await sim.start()
        try:
            clock.advance(600)
            (first,) = await execute(verified("SET_FAN", [m.serial], {"percent": 85}), adapter, miners)
            (second,) = await execute(verified("POWER_MODE", [m.serial], {"mode": "low"}), adapter, miners)
            return first, second
        finally:
            await adapter.close()
            await sim.stop()

    first, second = asyncio.run(scenario())
    assert first["status"] == "ok" and set(first["before_state"]) == BEFORE_KEYS | SETTINGS_KEYS
    before = first["before_state"]
    assert before["pool_url"] == "stratum+tcp://btc.pool.example:3333" and before["pool_worker"] == "hashinsight.sim-b"
    assert before["fan_percent"] == "auto" and before["power_mode"] == "normal"
    assert before["power_limit_w"] == round(m.profile.nominal_w * 1.22)
    assert second["before_state"]["fan_percent"] == 85  # what the SET_FAN left: a rollback sets it back


def test_pyasic_settings_from_miner_data_and_config():
    pyasic = pytest.importorskip("pyasic")
    from pyasic.config import MinerConfig
    from pyasic.config.fans import FanModeManual, FanModeNormal
    from pyasic.config.mining import MiningModeLPM, MiningModePowerTune
    from pyasic.data.pools import PoolMetrics, PoolUrl

    from edge.collector.adapters.pyasic import map_data

    pools = [
        PoolMetrics(url=PoolUrl.from_str("stratum+tcp://old.example:3333"), user="acct.o", alive=True, active=False),
        PoolMetrics(url=PoolUrl.from_str("stratum+tcp://p.example:3333"), user="acct.w1", alive=True, active=True),
    ]
    tuned = pyasic.MinerData(
        ip="10.0.0.5", pools=pools,
        config=MinerConfig(fan_mode=FanModeManual(speed=70), mining_mode=MiningModePowerTune(power=2800)),
    )  # fmt: skip
    sample = map_data("S21-7", TS, tuned)
    assert (sample.pool_url, sample.pool_worker) == ("stratum+tcp://p.example:3333", "acct.w1")
    assert (sample.fan_pct, sample.fan_mode, sample.power_limit_w, sample.power_target_w) == (70, "manual", 2800, 2800)
    assert before_state(sample)["fan_percent"] == 70
    low = map_data("S21-7", TS, pyasic.MinerData(ip="10.0.0.5", config=MinerConfig(
        fan_mode=FanModeNormal(), mining_mode=MiningModeLPM())))  # fmt: skip
    assert (low.power_mode, low.fan_mode, low.power_target_w) == ("low", "auto", None)
    assert before_state(low)["fan_percent"] == "auto" and before_state(low)["power_mode"] == "low"


def test_pyasic_power_target_where_the_firmware_has_none_is_unsupported():
    pytest.importorskip("pyasic")
    from edge.collector.adapters.pyasic import PyasicAdapter

    class Device:
        supports_power_modes = supports_autotuning = False
        limits: list = []

        async def set_power_limit(self, watts):
            self.limits.append(watts)
            return True

    adapter = PyasicAdapter()
    device = Device()
    adapter._miners["10.0.0.9"] = device
    spec = MinerSpec("S-9", "10.0.0.9", 4028, "pyasic")
    with pytest.raises(UnsupportedCommand):
        asyncio.run(adapter.set_power_target(spec, 2500))
    device.supports_autotuning = True
    assert asyncio.run(adapter.set_power_target(spec, 2500)) == {"ok": True} and device.limits == [2500]


# --- the simulator's power target --------------------------------------------------------------------------------


def _sim_miner(code: str = "antminer-s21-200t") -> SimMiner:
    profile = load_catalog()[code]
    return SimMiner(0, "SIM-P", 4028, profile, seed=7, t0=NOW.timestamp(), uptime_s=3600)


def test_a_power_target_caps_power_and_hashrate_follows_a_little_less():
    m = _sim_miner()
    t = NOW.timestamp()
    full = m.reading(t + 60)
    assert api.dispatch(m, t + 60, "power_target", "2500")["STATUS"][0]["Code"] == 143
    capped = m.reading(t + 120)
    assert abs(capped.power_w - 2500) < 0.03 * 2500
    power_ratio, hash_ratio = capped.power_w / full.power_w, capped.hashrate_ths / full.hashrate_ths
    assert power_ratio < hash_ratio < 1  # hashrate falls with power, a little less: J/TH improves
    assert capped.power_w / capped.hashrate_ths < 0.97 * full.power_w / full.hashrate_ths
    assert capped.chip_max_c < full.chip_max_c and capped.status == "hashing"
    summary = api.dispatch(m, t + 120, "summary", None)["SUMMARY"][0]
    assert (summary["Power Target"], summary["Power Limit"]) == (2500, 2500)

    api.dispatch(m, t + 120, "power_target", "default")
    assert m.power_target_w is None and abs(m.reading(t + 180).power_w - full.power_w) < 0.03 * full.power_w
    summary = api.dispatch(m, t + 180, "summary", None)["SUMMARY"][0]
    assert summary["Power Target"] == 0 and summary["Power Limit"] == round(m.profile.nominal_w * 1.22)
    api.dispatch(m, t + 180, "power_target", "5000")  # above what it draws: no effect
    assert abs(m.reading(t + 240).power_w - full.power_w) < 0.03 * full.power_w
    assert api.dispatch(m, t + 240, "power_target", "0")["STATUS"][0]["STATUS"] == "S" and m.power_target_w is None


@pytest.mark.parametrize(("parameter", "code"), [("1000", 141), ("-5", 140), ("lots", 140), ("", 140)])
def test_power_targets_below_the_floor_or_unreadable_are_refused(parameter, code):
    m = _sim_miner()  # S21: 3500 W nominal, floor 40 % = 1400 W
    reply = api.dispatch(m, NOW.timestamp(), "power_target", parameter)
    assert reply["STATUS"][0]["STATUS"] == "E" and reply["STATUS"][0]["Code"] == code
    assert m.power_target_w is None


def test_stats_say_the_fan_duty_and_whether_it_is_automatic():
    m = _sim_miner()
    t = NOW.timestamp()
    detail = api.dispatch(m, t, "stats", None)["STATS"][1]
    assert detail["Fan Mode"] == "auto" and 30 <= detail["Fan Percent"] <= 100
    api.dispatch(m, t, "set_fan", "75")
    detail = api.dispatch(m, t + 10, "stats", None)["STATS"][1]
    assert (detail["Fan Mode"], detail["Fan Percent"]) == ("manual", 75)
    hydro = _sim_miner("antminer-s21-plus-hyd-338t")
    assert "Fan Mode" not in api.dispatch(hydro, t, "stats", None)["STATS"][1]  # no fans, no fan settings


# --- CURTAIL -------------------------------------------------------------------------------------------------


class CurtailAdapter(Adapter):
    """Power targets where the serial says so ("SOFT-…"); the rest raise UnsupportedCommand. Records every call."""

    name = "cgminer"

    def __init__(self, idle: set[str] = frozenset(), broken: set[str] = frozenset()):
        self.calls: list[tuple] = []
        self.idle = set(idle)
        self.broken = set(broken)  # restores fail (the miner does not answer)
        self.targets = {"SOFT-PREV": 3000}  # the power targets in force

    async def poll(self, miner, *, ts):
        idle = miner.serial in self.idle
        return Sample(
            miner=miner.serial, ts=ts, status="idle" if idle else "hashing", hashrate_ths=0.0 if idle else 200.0,
            power_w=3500.0, power_mode="normal", power_target_w=self.targets.get(miner.serial),
        )  # fmt: skip

    def _check(self, miner):
        if miner.serial in self.broken:
            raise AdapterError(f"{miner.serial}: no answer")

    async def execute(self, miner, command, params):
        self._check(miner)
        self.calls.append((miner.serial, command))
        return {"STATUS": [{"STATUS": "S", "Msg": command}]}

    async def set_power_target(self, miner, watts):
        if not miner.serial.startswith("SOFT"):
            raise UnsupportedCommand("this firmware has no power_target")
        self._check(miner)
        self.calls.append((miner.serial, "power_target", watts))
        self.targets[miner.serial] = watts
        return {}

    async def clear_power_target(self, miner, *, mode=None):
        self._check(miner)
        self.calls.append((miner.serial, "clear_power_target", mode))
        self.targets.pop(miner.serial, None)
        return {}


def verified(command_type: str, targets, params=None, *, command_id="41", nonce="n-41") -> VerifiedCommand:
    serials = tuple(t["serial"] if isinstance(t, dict) else t for t in targets)
    return VerifiedCommand(
        command_id=command_id, site_id=SITE, type=command_type, targets=serials, params=params or {}, priority=None,
        expires_at=NOW + timedelta(minutes=10), signed_at=NOW, dedupe_key=None, nonce=nonce,
        payload={"targets": list(targets)},
    )  # fmt: skip


CURTAIL_PARAMS = {"kw": 5, "start": iso(NOW), "end": iso(END), "mode": "soft"}
TARGETS = [
    {"serial": "SOFT-1", "action": "power_target", "power_w": 2400},
    {"serial": "HARD-1", "action": "power_target", "power_w": 2400},  # no power target: stopped instead
    {"serial": "STOP-1", "action": "stop", "power_w": None},
    {"serial": "NONE-1", "action": "none", "power_w": None},
]


def test_curtail_runs_each_targets_action_and_falls_back_to_a_stop():
    adapter = CurtailAdapter()
    miners = {t["serial"]: MinerSpec(t["serial"], "127.0.0.1", 4028) for t in TARGETS}
    results = asyncio.run(execute(verified("CURTAIL", TARGETS, CURTAIL_PARAMS), adapter, miners, now=NOW))
    by = {r["miner"]: r for r in results}
    assert all(r["status"] == "ok" for r in results), results
    assert by["SOFT-1"]["message"] == f"power target 2400 W until {iso(END)}"
    assert "no power target on this miner" in by["HARD-1"]["message"]
    assert "hashing stopped instead" in by["HARD-1"]["message"]
    assert by["STOP-1"]["message"].startswith("hashing stopped until")
    assert by["NONE-1"]["message"] == "no change needed"
    assert sorted(adapter.calls) == [
        ("HARD-1", "HASHING_DISABLE"), ("SOFT-1", "power_target", 2400), ("STOP-1", "HASHING_DISABLE"),
    ]  # fmt: skip
    assert by["SOFT-1"]["before_state"]["power_mode"] == "normal"


def test_curtail_leaves_an_operators_stopped_miner_alone_and_needs_an_end():
    adapter = CurtailAdapter(idle={"STOP-1"})
    miners = {"STOP-1": MinerSpec("STOP-1", "127.0.0.1", 4028)}
    (result,) = asyncio.run(execute(verified("CURTAIL", [TARGETS[2]], CURTAIL_PARAMS), adapter, miners, now=NOW))
    assert result["status"] == "ok" and "already disabled" in result["message"] and adapter.calls == []
    for params in ({**CURTAIL_PARAMS, "end": None}, {**CURTAIL_PARAMS, "end": iso(NOW - timedelta(seconds=1))}):
        (result,) = asyncio.run(execute(verified("CURTAIL", [TARGETS[2]], params), adapter, miners, now=NOW))
        assert result["status"] == "failed" and "nothing changed" in result["message"]
    assert adapter.calls == []
    plain = asyncio.run(execute(verified("CURTAIL", ["HARD-1"], CURTAIL_PARAMS), adapter, {
        "HARD-1": MinerSpec("HARD-1", "127.0.0.1", 4028)}, now=NOW))  # fmt: skip
    assert plain[0]["status"] == "ok" and adapter.calls == [("HARD-1", "HASHING_DISABLE")]  # a plain serial: a stop


# --- restore at the end -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class AckClient:
    base_url = "http://fake"

    def __init__(self):
        self.acks: list[dict] = []
        self.errors: list[Exception] = []

    async def ack_command(self, command_id, nonce, results, *, phase=None):
        if self.errors:
            raise self.errors.pop(0)
        self.acks.append({"command_id": command_id, "nonce": nonce, "results": results, "phase": phase})
        return {}


def signed(targets=TARGETS, params=None, command_id=41, nonce="nonce-41", at: datetime = NOW) -> dict:
    """A CURTAIL envelope signed at ``at`` for the hour from then."""
    params = params or {**CURTAIL_PARAMS, "start": iso(at), "end": iso(at + timedelta(hours=1))}
    payload = {
        "command_id": command_id, "site_id": SITE, "targets": targets, "type": "CURTAIL", "params": params,
        "priority": 5, "expires_at": iso(at + timedelta(minutes=15)), "dedupe_key": "", "signed_at": iso(at),
        "nonce": nonce,
    }  # fmt: skip
    return {**payload, "signature": signature_of(payload, KEY)}


SERIALS = ["SOFT-1", "HARD-1", "STOP-1", "NONE-1", "SOFT-PREV"]


def collector_for(tmp_path, adapter, client, clock, *, load=True) -> Collector:
    config = _config(tmp_path, [{"serial": s, "host": "127.0.0.1", "port": 4028 + i} for i, s in enumerate(SERIALS)])
    collector = Collector(
        config, client=client, spool=Spool(config.spool_path), adapters={"cgminer": adapter}, clock=clock,
        rng=lambda: 0.0, credentials=Credentials(token="t", hmac_secret=SECRET, device_id=1, site_id=SITE),
    )  # fmt: skip
    if load:
        asyncio.run(collector.load_inventory())
    return collector


def _config(tmp_path, miners):
    from edge.collector.config import parse_config

    return parse_config(
        {"inventory": "static", "server": {"url": "http://127.0.0.1:9", "credentials": "creds.json"},
         "spool": {"path": "spool.sqlite3"}, "miners": miners},
        tmp_path / "site.toml",
    )  # fmt: skip


def handle(collector, env):
    return asyncio.run(collector.handle_command(collector.command_verifier(), env))


def test_the_restore_runs_at_the_end_and_is_reported(tmp_path):
    clock, client, adapter = Clock(), AckClient(), CurtailAdapter()
    collector = collector_for(tmp_path, adapter, client, clock)
    try:
        targets = [*TARGETS, {"serial": "SOFT-PREV", "action": "power_target", "power_w": 2000}]
        results = handle(collector, signed(targets))
        assert [r["status"] for r in results] == ["ok"] * 5
        assert client.acks[0]["phase"] is None and len(adapter.calls) == 4
        adapter.calls.clear()

        clock.advance(3599)
        assert asyncio.run(collector.run_restores()) == 0 and adapter.calls == []  # not yet
        clock.advance(1)
        assert asyncio.run(collector.run_restores()) == 1
        assert sorted(adapter.calls) == [
            ("HARD-1", "HASHING_ENABLE"),
            ("SOFT-1", "clear_power_target", "normal"),  # no target before: cleared, back to the mode read before
            ("SOFT-PREV", "power_target", 3000),  # the target set before: put back
            ("STOP-1", "HASHING_ENABLE"),
        ]
        ack = client.acks[1]
        assert (ack["command_id"], ack["nonce"], ack["phase"]) == ("41", "nonce-41", "restore")
        messages = {r["miner"]: (r["status"], r["message"]) for r in ack["results"]}
        assert messages == {
            "SOFT-1": ("ok", "power target cleared"),
            "HARD-1": ("ok", "hashing enabled again"),
            "STOP-1": ("ok", "hashing enabled again"),
            "NONE-1": ("ok", "nothing to restore"),
            "SOFT-PREV": ("ok", "power target back to 3000 W"),
        }
        clock.advance(3600)
        assert asyncio.run(collector.run_restores()) == 0 and len(client.acks) == 2  # done once
        assert collector.restores.get("41").state == "acked"
    finally:
        collector.spool.close()


def test_a_restore_due_while_the_collector_was_down_runs_at_start_up(tmp_path):
    clock, adapter = Clock(), CurtailAdapter()
    first = collector_for(tmp_path, adapter, AckClient(), clock)
    handle(first, signed([TARGETS[0], TARGETS[2]]))
    first.spool.close()  # the collector stops mid-window
    adapter.calls.clear()

    clock.advance(2 * 3600)  # ... and starts again after the end, before its inventory is known
    client = AckClient()
    second = collector_for(tmp_path, adapter, client, clock, load=False)
    try:
        assert second.miners == []
        assert asyncio.run(second.run_restores()) == 1
        assert sorted(adapter.calls) == [("SOFT-1", "clear_power_target", "normal"), ("STOP-1", "HASHING_ENABLE")]
        assert [r["status"] for r in client.acks[0]["results"]] == ["ok", "ok"]
        again = collector_for(tmp_path / "other", adapter, AckClient(), clock)  # an unrelated spool: nothing due
        assert asyncio.run(again.run_restores()) == 0
        again.spool.close()
    finally:
        second.spool.close()


def test_a_restart_mid_window_still_restores_on_time(tmp_path):
    clock, adapter = Clock(), CurtailAdapter()
    first = collector_for(tmp_path, adapter, AckClient(), clock)
    handle(first, signed([TARGETS[0]]))
    first.spool.close()
    clock.advance(600)
    client = AckClient()
    second = collector_for(tmp_path, adapter, client, clock)
    try:
        assert asyncio.run(second.run_restores()) == 0  # still within the window
        assert handle(second, signed([TARGETS[0]]))[0]["status"] == "ok"  # a redelivery: acked again, not re-run
        clock.advance(3000)
        assert asyncio.run(second.run_restores()) == 1 and client.acks[-1]["phase"] == "restore"
        assert adapter.calls == [("SOFT-1", "power_target", 2400), ("SOFT-1", "clear_power_target", "normal")]
    finally:
        second.spool.close()


def test_the_restore_report_is_retried_with_backoff_and_kept_when_refused(tmp_path, capsys):
    clock, client, adapter = Clock(), AckClient(), CurtailAdapter()
    collector = collector_for(tmp_path, adapter, client, clock)
    try:
        handle(collector, signed([TARGETS[2]]))
        handle(collector, signed([TARGETS[0]], command_id=42, nonce="nonce-42"))
        client.acks.clear()
        clock.advance(3600)
        client.errors = [Retryable("no answer"), Retryable("503", status=503)]
        assert asyncio.run(collector.run_restores()) == 0
        restore = collector.restores.get("41")
        assert restore.state == "restored" and restore.ack_attempts == 1 and restore.results[0]["status"] == "ok"
        assert adapter.calls.count(("STOP-1", "HASHING_ENABLE")) == 1
        assert asyncio.run(collector.run_restores()) == 0  # not before its backoff (0.5–1 s after the first failure)
        clock.advance(2)
        assert asyncio.run(collector.run_restores()) == 2  # both delivered
        assert adapter.calls.count(("STOP-1", "HASHING_ENABLE")) == 1  # the restore itself ran once
        assert {a["command_id"] for a in client.acks} == {"41", "42"}

        handle(collector, signed([TARGETS[2]], command_id=43, nonce="nonce-43", at=clock()))
        clock.advance(3600)
        client.errors = [Misconfigured("409 already acknowledged", status=409)]  # a server without the phase
        assert asyncio.run(collector.run_restores()) == 0
        refused = collector.restores.get("43")
        assert refused.state == "refused" and "409" in refused.last_error
        assert refused.results == [{"miner": "STOP-1", "status": "ok", "message": "hashing enabled again"}]
        clock.advance(3600)
        assert asyncio.run(collector.run_restores()) == 0 and collector.restores.pending() == 0  # not asked again
        from edge.collector.__main__ import _status

        _status(collector.config, as_json=False)
        assert "CURTAIL 43 restore at" in capsys.readouterr().out  # --status shows it
    finally:
        collector.spool.close()


def test_a_failed_restore_is_tried_again_then_reported_failed(tmp_path):
    clock, client, adapter = Clock(), AckClient(), CurtailAdapter()
    collector = collector_for(tmp_path, adapter, client, clock)
    try:
        handle(collector, signed([TARGETS[2]]))
        adapter.broken = {"STOP-1"}
        clock.advance(3600)
        for _ in range(RESTORE_ATTEMPTS - 1):
            assert asyncio.run(collector.run_restores()) == 0 and len(client.acks) == 1
            clock.advance(RESTORE_RETRY_S)
        assert asyncio.run(collector.run_restores()) == 1
        (result,) = client.acks[1]["results"]
        assert result["status"] == "failed" and "no answer" in result["message"]
    finally:
        collector.spool.close()


def test_curtail_on_the_simulator_soft_then_restored(tmp_path):
    sim, sim_clock, _base = _simulator(2, [{"serial": "SIM-S", "model": "antminer-s21-200t"},
                                           {"serial": "SIM-H", "model": "antminer-s21-200t"}])  # fmt: skip
    soft, hard = sim.miners
    miners = {m.serial: MinerSpec(m.serial, "127.0.0.1", m.port) for m in sim.miners}
    adapter = CGMinerAdapter(timeout=2)
    store = RestoreStore(Spool(tmp_path / "spool.sqlite3").db)
    targets = [{"serial": "SIM-S", "action": "power_target", "power_w": 2500}, {"serial": "SIM-H", "action": "stop"}]

    async def scenario():
        from edge.collector.curtail import run_restore

        await sim.start()
        try:
            sim_clock.advance(600)
            full = soft.reading(sim_clock.now())
            results = await execute(verified("CURTAIL", targets, CURTAIL_PARAMS), adapter, miners, restores=store,
                                    now=NOW)  # fmt: skip
            sim_clock.advance(120)
            capped = soft.reading(sim_clock.now())
            (restore,) = store.due(END)
            restored = await run_restore(restore, lambda name: adapter, miners, store=store, now=END)
            return results, full, capped, restored
        finally:
            await adapter.close()
            await sim.stop()

    results, full, capped, restored = asyncio.run(scenario())
    assert [r["status"] for r in results] == ["ok", "ok"], results
    assert results[0]["before_state"]["power_limit_w"] == round(soft.profile.nominal_w * 1.22)
    assert abs(capped.power_w - 2500) < 0.03 * 2500 and capped.hashrate_ths < 0.85 * full.hashrate_ths
    assert [r["message"] for r in restored] == ["power target cleared", "hashing enabled again"]
    assert soft.power_target_w is None and hard.mining


def test_overlapping_curtailments_of_one_miner_restore_what_was_there_before_the_first(tmp_path):
    clock, client, adapter = Clock(), AckClient(), CurtailAdapter()
    collector = collector_for(tmp_path, adapter, client, clock)
    soft = {"serial": "SOFT-1", "action": "power_target", "power_w": 2400}
    try:
        handle(collector, signed([soft]))  # 41: 01:00–02:00
        clock.advance(1800)
        later = {**soft, "power_w": 2000}
        handle(collector, signed([later], command_id=42, nonce="nonce-42", at=clock()))  # 42: 01:30–02:30
        assert adapter.targets["SOFT-1"] == 2000
        clock.advance(1800)  # 41 ends while 42 still holds the miner: not touched, handed over
        assert asyncio.run(collector.run_restores()) == 1
        (handed,) = client.acks[-1]["results"]
        assert handed["status"] == "ok" and handed["message"].startswith("handed over to CURTAIL 42")
        assert adapter.targets["SOFT-1"] == 2000
        clock.advance(1800)  # 42 ends: its own step (back to 41's 2400 W), then 41's (cleared)
        assert asyncio.run(collector.run_restores()) == 1
        (result,) = client.acks[-1]["results"]
        assert result["message"] == "power target back to 2400 W; power target cleared"
        assert "SOFT-1" not in adapter.targets

        handle(collector, signed([soft], command_id=43, nonce="nonce-43", at=clock()))  # 43: 02:30–03:30
        clock.advance(600)
        inner = {**soft, "power_w": 1800}
        inner_params = {**CURTAIL_PARAMS, "start": iso(clock()), "end": iso(clock() + timedelta(minutes=20))}
        handle(collector, signed([inner], params=inner_params, command_id=44, nonce="nonce-44", at=clock()))
        clock.advance(1200)  # the nested one ends first: back to the outer one's target
        assert asyncio.run(collector.run_restores()) == 1 and adapter.targets["SOFT-1"] == 2400
        clock.advance(1800)
        assert asyncio.run(collector.run_restores()) == 1 and "SOFT-1" not in adapter.targets
    finally:
        collector.spool.close()


def test_a_refused_curtail_is_acknowledged_per_serial_and_nothing_is_scheduled(tmp_path):
    clock, client, adapter = Clock(), AckClient(), CurtailAdapter()
    collector = collector_for(tmp_path, adapter, client, clock)
    try:
        env = signed([TARGETS[0], TARGETS[2]])
        env["params"] = {**env["params"], "kw": 50}  # tampered: the signature no longer matches
        results = handle(collector, env)
        assert [(r["miner"], r["status"]) for r in results] == [("SOFT-1", "failed"), ("STOP-1", "failed")]
        assert "bad_signature" in results[0]["message"] and adapter.calls == []
        assert collector.restores.get("41") is None and collector.health_report()["curtail_restores_pending"] == 0
        handle(collector, signed([TARGETS[2]], command_id=42, nonce="nonce-42"))
        assert collector.health_report()["curtail_restores_pending"] == 1  # in the health report until reported
    finally:
        collector.spool.close()
