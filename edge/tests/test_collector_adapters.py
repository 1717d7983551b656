"""Adapters: CGMiner replies of the three dialects mapped to samples (canned and from the project's simulator),
unreachable and unreadable miners, commands (simulator and stock cgminer), pyasic's MinerData mapping."""

from __future__ import annotations

import asyncio
import socket

import pytest

from edge import cgminer
from edge.collector.adapters.base import AdapterError, UnsupportedCommand
from edge.collector.adapters.cgminer import CGMinerAdapter, map_reply
from edge.collector.runner import Collector, miners_from_inventory
from edge.collector.sample import MinerSpec
from edge.collector.spool import Spool
from edge.tests.collector_fakes import make_config

TS = "2026-11-26T01:00:00Z"

ANTMINER_SUMMARY = {"Elapsed": 3600, "MHS av": 199_000_000.0, "MHS 5s": 201_500_000.0, "GHS 5s": 201500.0,
                    "Accepted": 4100, "Rejected": 12, "Mining": True, "Errors": []}  # fmt: skip
ANTMINER_STATS = {
    "BMMiner": "4.11.1", "SN": "S21-0001", "STATS": 0, "ID": "BTM_SOC0", "GHS 5s": "201500.00", "GHS av": 199000.0,
    "miner_count": 3, "fan_num": 4, "fan1": 5400, "fan2": 5460, "fan3": 5380, "fan4": 5420, "temp_num": 3,
    "temp1": 55, "temp2_1": 70, "temp_pcb1": "47-46-55-54", "temp_chip1": "56-55-70-69", "chain_rate1": "67100.00",
    "temp2": 56, "temp2_2": 72, "temp_pcb2": "48-47-56-55", "temp_chip2": "58-57-72-71", "chain_rate2": "67300.00",
    "temp3": 57, "temp2_3": 73, "temp_pcb3": "49-48-57-56", "temp_chip3": "59-58-73-72", "chain_rate3": "67100.00",
    "temp_max": 73, "temp_inlet": 24.5, "temp_outlet": 41.2, "chain_power": "3510 W",
}  # fmt: skip
POOLS = [{"POOL": 0, "Status": "Alive", "Accepted": 4100, "Rejected": 12}]


def test_an_antminer_reply_maps_to_a_sample():
    sample = map_reply("S21-0001", TS, ANTMINER_SUMMARY, ANTMINER_STATS, POOLS)
    assert sample.to_json() == {
        "miner": "S21-0001",
        "ts": TS,
        "status": "hashing",
        "hashrate_ths": 201.5,  # the 5-second figure, not the since-boot average
        "temp_chip_max_c": 73.0,
        "temp_inlet_c": 24.5,
        "temp_outlet_c": 41.2,
        "fan_rpm": [5400, 5460, 5380, 5420],
        "power_w": 3510.0,
        "accepted_shares": 4100,
        "rejected_shares": 12,
        "errors": [],
    }


def test_stock_bmminer_fields_without_the_simulator_extras():
    summary = {"GHS av": 95000.0, "Accepted": 10, "Rejected": 0}  # no MHS 5s, no Errors, no Mining
    stats = {"fan_num": 2, "fan1": 0, "fan2": 0, "fan3": 6000, "fan4": 0, "fan5": 0, "fan6": 6120,
             "temp_pcb1": "40-41-60-61", "temp_pcb2": "0-0-0-0", "temp2_1": 78, "temp2_2": 0}  # fmt: skip
    sample = map_reply("S19", TS, summary, stats, [])
    assert sample.hashrate_ths == 95.0
    assert sample.fan_rpm == [6000, 6120]  # fan_num says two are fitted: the empty slots are not failures
    assert sample.temp_chip_max_c == 78.0  # a 0 reading is "no sensor"
    assert (sample.temp_inlet_c, sample.temp_outlet_c) == (40.0, 61.0)  # inlet-side then outlet-side PCB sensors
    assert sample.power_w is None  # not reported: null, not 0
    assert sample.status == "hashing" and sample.errors == []


def test_a_whatsminer_reply():
    summary = {"MHS av": 125_000_000.0, "MHS 5s": 126_200_000.0, "Accepted": 900, "Rejected": 3, "Env Temp": 22.5,
               "Chip Temp Max": 81.25, "Fan Speed In": 4800, "Fan Speed Out": 4790, "Power": 3305,
               "Error Code Count": 0, "Errors": []}  # fmt: skip
    sample = map_reply("M50S", TS, summary, {"SN": "M50S", "temp_outlet": 44.0}, POOLS)
    assert sample.hashrate_ths == 126.2
    assert sample.temp_chip_max_c == 81.25 and sample.temp_inlet_c == 22.5 and sample.temp_outlet_c == 44.0
    assert sample.fan_rpm == [4800, 4790] and sample.power_w == 3305.0


def test_an_avalon_mm_id_string():
    stats = {"MM ID0": "Ver[1246-85] Temp[31] TMax[84] TAvg[77] Fan1[4020] Fan2[4100] FanR[50%] WALLPOWER[3420]"}
    sample = map_reply("A1246", TS, {"MHS av": 90_100_000.0, "Accepted": 5, "Rejected": 0}, stats, POOLS)
    assert sample.hashrate_ths == 90.1
    assert sample.temp_chip_max_c == 84.0 and sample.temp_inlet_c == 31.0
    assert sample.fan_rpm == [4020, 4100] and sample.power_w == 3420.0


def test_a_dead_chain_is_a_chain_failure_and_the_miner_still_hashes():
    stats = dict(ANTMINER_STATS, chain_rate3="0.00")
    summary = dict(ANTMINER_SUMMARY, **{"MHS 5s": 134_400_000.0, "Errors": ["chain_2_dead"]})
    sample = map_reply("S21-0001", TS, summary, stats, POOLS)
    assert sample.status == "hashing" and sample.hashrate_ths == 134.4
    assert sample.errors == ["fw:chain_2_dead", "chain_failure"]


def test_an_overheat_shutdown_is_an_error_with_the_overheat_code():
    summary = dict(ANTMINER_SUMMARY, **{"MHS 5s": 0.0, "Errors": ["overheat_shutdown"]})
    sample = map_reply("S21-0001", TS, summary, dict(ANTMINER_STATS, temp_max=99), POOLS)
    assert sample.status == "error" and "overheat" in sample.errors and "fw:overheat_shutdown" in sample.errors


def test_hot_chips_get_the_overheat_code_at_the_configured_limit():
    hot = dict(ANTMINER_STATS, temp_chip1="70-70-96-95")
    assert "overheat" in map_reply("S", TS, ANTMINER_SUMMARY, hot, POOLS, overheat_c=95).errors
    assert "overheat" not in map_reply("S", TS, ANTMINER_SUMMARY, hot, POOLS, overheat_c=100).errors


def test_a_stopped_fan_and_dead_pools():
    stats = dict(ANTMINER_STATS, fan2=0)
    pools = [{"POOL": 0, "Status": "Dead", "Accepted": 0, "Rejected": 0}]
    sample = map_reply("S", TS, ANTMINER_SUMMARY, stats, pools)
    assert sample.fan_rpm == [5400, 0, 5380, 5420]
    assert sample.errors == ["fan_failure", "pool_dead"]


def test_hashing_disabled_by_the_operator_is_idle():
    summary = dict(ANTMINER_SUMMARY, **{"MHS 5s": 0.0, "Mining": False})
    assert map_reply("S", TS, summary, ANTMINER_STATS, POOLS).status == "idle"


def test_readings_outside_the_servers_limits_are_trimmed_not_sent():
    stats = dict(ANTMINER_STATS, fan1=99_999, temp_inlet=-80)
    summary = dict(ANTMINER_SUMMARY, Errors=[f"code-{i}-" + "x" * 80 for i in range(40)])
    body = map_reply("S", TS, summary, stats, POOLS).to_json()
    assert body["fan_rpm"][0] == 30_000
    assert body["temp_inlet_c"] is None
    assert len(body["errors"]) == 32 and all(len(e) <= 64 for e in body["errors"])


# --- over TCP ----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _fake_miner(handler):
    """A CGMiner API server answering ``handler(command, parameter) -> dict | bytes``; returns (server, port)."""

    async def serve(reader, writer):
        data = await reader.read(65536)
        command, parameter = cgminer.decode_request(data)
        reply = handler(command, parameter)
        writer.write(reply if isinstance(reply, bytes) else cgminer.encode_reply(reply))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _stock_cgminer(calls: list):
    def handler(command, parameter):
        calls.append((command, parameter))
        if command == "summary+stats+pools":
            return {"STATUS": [cgminer.status(14, "Invalid command", kind="E")], "id": 1}
        if command == "summary":
            return {"STATUS": [cgminer.status(11, "Summary")], "SUMMARY": [ANTMINER_SUMMARY], "id": 1}
        if command == "stats":
            return {"STATUS": [cgminer.status(70, "Stats")], "STATS": [{"SN": "S21-0001"}, ANTMINER_STATS], "id": 1}
        if command == "pools":
            return {"STATUS": [cgminer.status(7, "Pools")], "POOLS": [*POOLS, {"POOL": 1, "Status": "Alive"}], "id": 1}
        if command == "devs":
            return {"STATUS": [cgminer.status(9, "3 ASC")], "DEVS": [{"ASC": 0}, {"ASC": 1}, {"ASC": 2}], "id": 1}
        if command in ("ascdisable", "ascenable", "addpool", "switchpool", "restart"):
            return {"STATUS": [cgminer.status(50, f"{command} {parameter}")], "id": 1}
        return {"STATUS": [cgminer.status(14, "Invalid command", kind="E")], "id": 1}

    return handler


def test_an_unreachable_miner_is_an_offline_sample_with_nulls():
    sample = asyncio.run(CGMinerAdapter(timeout=1).poll(MinerSpec("S", "127.0.0.1", _free_port()), ts=TS))
    assert sample.to_json() == {
        "miner": "S", "ts": TS, "status": "offline", "hashrate_ths": None, "temp_chip_max_c": None,
        "temp_inlet_c": None, "temp_outlet_c": None, "fan_rpm": [], "power_w": None, "accepted_shares": None,
        "rejected_shares": None, "errors": ["unreachable"],
    }  # fmt: skip


def test_an_unreadable_answer_is_an_error_sample():
    async def scenario():
        server, port = await _fake_miner(lambda command, parameter: b"<html>login</html>\x00")
        async with server:
            return await CGMinerAdapter(timeout=1).poll(MinerSpec("S", "127.0.0.1", port), ts=TS)

    sample = asyncio.run(scenario())
    assert sample.status == "error" and sample.errors == ["bad_reply"] and sample.hashrate_ths is None


def test_firmware_refusing_joined_commands_is_asked_one_by_one_and_commands_fall_back_to_stock():
    calls: list = []

    async def scenario():
        server, port = await _fake_miner(_stock_cgminer(calls))
        adapter = CGMinerAdapter(timeout=2)
        spec = MinerSpec("S21-0001", "127.0.0.1", port)
        async with server:
            first = await adapter.poll(spec, ts=TS)
            second = await adapter.poll(spec, ts=TS)
            disabled = await adapter.execute(spec, "HASHING_DISABLE", {})
            pool = await adapter.execute(spec, "POOL_SET", {"url": "stratum+tcp://p:3333", "user": "w1"})
            with pytest.raises(UnsupportedCommand, match="no set_fan"):
                await adapter.execute(spec, "SET_FAN", {"speed_pct": 80})
            with pytest.raises(AdapterError, match="needs params url and user"):
                await adapter.execute(spec, "POOL_SET", {"url": "stratum+tcp://p:3333"})
        return first, second, disabled, pool

    first, second, disabled, pool = asyncio.run(scenario())
    assert first.hashrate_ths == 201.5 and second.hashrate_ths == 201.5
    assert [c for c, _ in calls].count("summary+stats+pools") == 1  # asked once, remembered
    assert [p for c, p in calls if c == "ascdisable"] == ["0", "1", "2"]
    assert ("addpool", "stratum+tcp://p:3333,w1,x") in calls and ("switchpool", "1") in calls
    assert pool["pool"] == 1 and len(disabled["ascdisable"]) == 3


# --- against the project's simulator -----------------------------------------------------------------------------


def _free_base(n: int) -> int:
    # below the kernel's ephemeral range (32768+), where an outgoing connection could take a port meanwhile
    for base in range(26501, 32768 - n, 613):
        ok = True
        for port in range(base, base + n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def _simulator(n: int, inventory: list | None = None):
    sim_server = pytest.importorskip("edge.simulator.server")
    from edge.simulator.catalog import load_catalog
    from edge.simulator.clock import ManualClock, parse_iso

    clock = ManualClock(parse_iso("2026-11-26T00:00:00Z"))
    base = _free_base(n)
    miners = sim_server.build_miners(
        load_catalog(), count=None if inventory else n, base_port=base, t0=clock.now(), seed=5, inventory=inventory
    )
    return sim_server.Simulator(miners, clock, seed=5), clock, base


def test_simulated_miners_of_each_dialect_map_to_plausible_samples():
    codes = ["antminer-s21-200t", "whatsminer-m50s-126t", "avalon-a1246-90t", "antminer-s21-plus-hyd-338t"]
    sim, clock, _base = _simulator(4, [{"serial": f"SIM-{i}", "model": c} for i, c in enumerate(codes)])

    async def scenario():
        await sim.start()
        try:
            clock.advance(600)
            adapter = CGMinerAdapter(timeout=2)
            return [await adapter.poll(MinerSpec(m.serial, "127.0.0.1", m.port), ts=TS) for m in sim.miners]
        finally:
            await sim.stop()

    samples = asyncio.run(scenario())
    for sample, m in zip(samples, sim.miners, strict=True):
        nominal = m.profile.nominal_ths
        assert sample.status == "hashing", sample
        assert 0.85 * nominal < sample.hashrate_ths < 1.15 * nominal, (m.profile.code, sample.hashrate_ths)
        assert 40 < sample.temp_chip_max_c < 95
        assert -10 < sample.temp_inlet_c < sample.temp_outlet_c < 90
        assert sample.accepted_shares > 0 and sample.rejected_shares is not None
        assert sample.errors == []
    antminer, whatsminer, avalon, hydro = samples
    assert len(antminer.fan_rpm) == 4 and all(rpm > 1000 for rpm in antminer.fan_rpm) and antminer.power_w > 2500
    assert len(whatsminer.fan_rpm) == 2 and whatsminer.power_w > 2500
    assert avalon.power_w is None  # Avalon firmware does not report it
    assert hydro.fan_rpm == []


def test_simulator_faults_show_up_as_error_codes_and_status():
    from edge.simulator.faults import parse_plan

    sim, clock, _base = _simulator(4)
    plan = [
        {"kind": "hashboard_failure", "start": 0, "miners": [0]},
        {"kind": "fan_failure", "start": 0, "miners": [1]},
        {"kind": "offline", "start": 0, "miners": [2]},
        {"kind": "overheat", "start": 0, "miners": [3], "params": {"climb_c_per_min": 10}},
    ]
    sim.add_plan(parse_plan(plan, t0=clock.now(), serials=[m.serial for m in sim.miners], seed=5))

    async def scenario():
        await sim.start()
        try:
            clock.advance(900)
            adapter = CGMinerAdapter(timeout=1)
            return [await adapter.poll(MinerSpec(m.serial, "127.0.0.1", m.port), ts=TS) for m in sim.miners]
        finally:
            await sim.stop()

    chain, fan, offline, hot = asyncio.run(scenario())
    assert "chain_failure" in chain.errors and chain.status == "hashing"
    assert 0.55 < chain.hashrate_ths / sim.miners[0].profile.nominal_ths < 0.75  # one third lost
    assert "fan_failure" in fan.errors
    assert offline.status == "offline" and offline.errors == ["unreachable"]
    assert "overheat" in hot.errors and hot.status == "error"


def test_commands_reach_the_simulator():
    sim, clock, _base = _simulator(1, [{"serial": "SIM-C", "model": "antminer-s21-200t"}])

    async def scenario():
        await sim.start()
        try:
            adapter = CGMinerAdapter(timeout=2)
            spec = MinerSpec(sim.miners[0].serial, "127.0.0.1", sim.miners[0].port)
            await adapter.execute(spec, "HASHING_DISABLE", {})
            clock.advance(60)
            idle = await adapter.poll(spec, ts=TS)
            await adapter.execute(spec, "HASHING_ENABLE", {})
            await adapter.execute(spec, "POOL_SET", {"url": "stratum+tcp://pool.example:3333", "user": "acct.w1"})
            await adapter.execute(spec, "POWER_MODE", {"mode": "low"})
            await adapter.execute(spec, "SET_FAN", {"speed_pct": 90})
            with pytest.raises(AdapterError, match="POWER_MODE needs params mode"):
                await adapter.execute(spec, "POWER_MODE", {"mode": "turbo"})
            return idle
        finally:
            await sim.stop()

    idle = asyncio.run(scenario())
    assert idle.status == "idle" and idle.hashrate_ths == 0
    assert sim.miners[0].pools[0]["url"] == "stratum+tcp://pool.example:3333"
    assert sim.miners[0].power_mode == "low"
    assert sim.miners[0].fan_override_pct == 90


def test_a_port_answering_for_another_serial_is_not_believed():
    sim, _clock, _base = _simulator(2)

    async def scenario():
        await sim.start()
        try:
            wrong = MinerSpec(sim.miners[0].serial, "127.0.0.1", sim.miners[1].port)
            return await CGMinerAdapter(timeout=2).poll(wrong, ts=TS)
        finally:
            await sim.stop()

    sample = asyncio.run(scenario())
    assert sample.status == "error" and sample.errors == ["serial_mismatch"] and sample.hashrate_ths is None


def test_the_collector_finds_each_serial_on_the_simulator_whatever_the_order(tmp_path):
    serials = ["ZZ-9", "AA-1", "MM-5"]
    sim, _clock, base = _simulator(3, [{"serial": s, "model": "antminer-s21-200t"} for s in serials])
    config = make_config(tmp_path, inventory="server", adapters={"simulator_base_port": base})
    inventory = [{"serial": s, "ip": ""} for s in sorted(serials)] + [{"serial": "GONE-1", "ip": ""}]

    async def scenario():
        await sim.start()
        try:
            collector = Collector(config, client=None, spool=Spool(tmp_path / "spool.db"))
            ports = await collector.discover_simulator(len(inventory))
            collector.spool.close()
            return ports
        finally:
            await sim.stop()

    ports = asyncio.run(scenario())
    assert ports == {"ZZ-9": base, "AA-1": base + 1, "MM-5": base + 2}
    specs, unaddressable = miners_from_inventory(config, inventory, ports)
    assert {(m.serial, m.host, m.port) for m in specs} == {
        ("AA-1", "127.0.0.1", base + 1),
        ("MM-5", "127.0.0.1", base + 2),
        ("ZZ-9", "127.0.0.1", base),
    }
    assert unaddressable == ["GONE-1"]


# --- pyasic ------------------------------------------------------------------------------------------------------


def test_pyasic_miner_data_maps_to_a_sample():
    pyasic = pytest.importorskip("pyasic")
    from pyasic.data import Fan, HashBoard
    from pyasic.data.pools import PoolMetrics
    from pyasic.device.algorithm.hashrate.sha256 import SHA256HashRate
    from pyasic.device.algorithm.hashrate.unit.sha256 import SHA256Unit

    from edge.collector.adapters.pyasic import map_data

    def board(slot, ths, chip):
        rate = SHA256HashRate(rate=ths * 1000, unit=SHA256Unit.GH)
        return HashBoard(slot=slot, hashrate=rate, chip_temp=chip, temp=chip - 15, missing=False)

    data = pyasic.MinerData(
        ip="10.0.0.5",
        hashboards=[board(0, 66.0, 71), board(1, 67.5, 74), board(2, 0.0, 40)],
        fans=[Fan(speed=5500), Fan(speed=5600)],
        wattage=3350,
        env_temp=23.0,
        pools=[PoolMetrics(url=None, accepted=1200, rejected=4, alive=True, active=True)],
    )
    sample = map_data("S21-7", TS, data)
    assert sample.hashrate_ths == 133.5
    assert sample.temp_chip_max_c == 74.0 and sample.temp_inlet_c == 23.0
    assert sample.fan_rpm == [5500, 5600] and sample.power_w == 3350.0
    assert (sample.accepted_shares, sample.rejected_shares) == (1200, 4)
    assert sample.status == "hashing" and sample.errors == ["chain_failure"]
