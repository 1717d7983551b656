"""The miner simulator (edge/simulator): plausible values per model, the daily cycle, faults and their ground truth,
write commands, malformed requests, N servers on N ports. No Django: these tests use the standard library only and
drive simulated time with a ManualClock (nothing sleeps)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import statistics
from pathlib import Path

import pytest

from edge import cgminer
from edge.simulator import api
from edge.simulator.catalog import CATALOG_CSV, DEFAULT_MIX, load_catalog, model_code, slugify
from edge.simulator.clock import ManualClock, RealClock, iso, parse_iso
from edge.simulator.faults import GroundTruth, PlanError, parse_plan
from edge.simulator.miner import SHARES_PER_THS_S, SimMiner
from edge.simulator.server import InventoryError, Simulator, build_miners, ensure_fd_limit

CATALOG = load_catalog()
T0 = parse_iso("2026-11-26T00:00:00Z")  # midnight UTC


def miner(code: str = "antminer-s21-200t", *, seed: int = 7, t0: float = T0, utc_offset_h: float = 0.0, **kw):
    return SimMiner(0, "SIM-TEST", 14028, CATALOG[code], seed=seed, t0=t0, utc_offset_h=utc_offset_h, **kw)


def sim_with(n: int = 6, plan: list | None = None, *, clock: ManualClock | None = None, truth=None, **kw):
    clock = clock or ManualClock(T0)
    miners = build_miners(CATALOG, count=n, base_port=kw.pop("base_port", 30000), t0=clock.now(), seed=3)
    sim = Simulator(miners, clock, ground_truth=truth, **kw)
    if plan:
        sim.add_plan(parse_plan(plan, t0=clock.now(), serials=[m.serial for m in miners], seed=3))
    return sim, clock


def bindable(port: int) -> bool:
    """Nothing listens on the port (TIME_WAIT leftovers allowed, as asyncio's servers reuse addresses)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(n: int) -> int:
    """A base port with n free ports above it, below the ephemeral range; parallel workers start apart."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    start = (int(worker) if worker.isdigit() else 0) * 1511 + os.getpid() % 997
    for k in range(40):
        base = 20000 + (start + k * 277) % (12000 - n)
        if all(bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port range")


# --- catalog -----------------------------------------------------------------------------------------------------


def test_catalog_copy_matches_the_server_catalog():
    server_copy = Path(__file__).resolve().parents[2] / "miners" / "data" / "asic_models.csv"
    if not server_copy.exists():
        pytest.skip("edge/ deployed without the server tree")
    assert CATALOG_CSV.read_bytes() == server_copy.read_bytes(), "copy miners/data/asic_models.csv again"


def test_catalog_codes_follow_the_server_rule():
    # the server's codes for the demo fleet (hashinsight/demo seed_demo.FLEET) all exist here
    assert all(code in CATALOG for code, _ in DEFAULT_MIX)
    assert slugify("Antminer S21+ Hyd ") == "antminer-s21-hyd"
    from decimal import Decimal

    assert model_code("Whatsminer M30S+", Decimal("100")) == "whatsminer-m30s-plus-100t"
    assert model_code("Antminer S19j Pro", Decimal("104.50")) == "antminer-s19j-pro-104-5t"
    s21 = CATALOG["antminer-s21-200t"]
    assert (s21.vendor, s21.nominal_ths, s21.nominal_w, s21.dialect) == ("Bitmain", 200.0, 3500.0, "antminer")
    hydro = CATALOG["antminer-s21-plus-hyd-338t"]
    assert hydro.cooling == "hydro" and hydro.fans == 0 and hydro.temp_limit_c == 85.0


# --- plausible values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_values_are_plausible_for_every_model(code):
    p = CATALOG[code]
    m = miner(code)
    for hour in range(0, 24, 3):
        r = m.reading(T0 + hour * 3600)
        assert r.status == "hashing" and r.reachable and not r.errors
        assert 0.94 * p.nominal_ths <= r.hashrate_ths <= 1.06 * p.nominal_ths
        assert 0.95 * p.nominal_w <= r.power_w <= 1.05 * p.nominal_w
        assert len(r.chain_ths) == p.chains and all(x > 0 for x in r.chain_ths)
        lo, hi = {"air": (55, 85), "hydro": (50, 75), "immersion": (55, 75)}[p.cooling]
        assert lo <= r.chip_max_c <= hi, (hour, r.chip_max_c)
        assert r.inlet_c < min(r.pcb_c) < r.chip_max_c and r.inlet_c < r.outlet_c < r.chip_max_c
        assert len(r.fan_rpm) == p.fans
        assert all(0.29 * p.fan_max_rpm <= rpm <= 1.01 * p.fan_max_rpm for rpm in r.fan_rpm)
        assert r.elapsed_s > 3600 and r.accepted > 0 and r.rejected < r.accepted * 0.01


def test_noise_is_one_to_two_percent_and_repeatable():
    m = miner()
    totals = [m.reading(T0 + 5 * i).hashrate_ths / 200 for i in range(400)]
    assert 0.004 < statistics.pstdev(totals) < 0.02
    assert abs(statistics.mean(totals) - 1) < 0.03
    again = miner()  # same seed, same time: same reading
    assert again.reading(T0 + 100).hashrate_ths == miner().reading(T0 + 100).hashrate_ths
    assert miner(seed=8).reading(T0 + 100).hashrate_ths != again.reading(T0 + 100).hashrate_ths


def test_window_averages_are_steadier_and_follow_state_changes():
    m = miner()
    summaries = [api.dispatch(m, T0 + 60 * i, "summary", None)["SUMMARY"][0] for i in range(120)]
    five_s = [s["MHS 5s"] / 2e8 for s in summaries]
    one_m = [s["MHS 1m"] / 2e8 for s in summaries]
    assert statistics.pstdev(one_m) < statistics.pstdev(five_s) / 2
    assert abs(statistics.mean(one_m) - statistics.mean(five_s)) < 0.01
    api.dispatch(m, T0 + 7200, "ascdisable", "0")
    after = api.dispatch(m, T0 + 7210, "summary", None)["SUMMARY"][0]
    assert 0.6 < after["MHS 1m"] / 2e8 < 0.72 and 0.6 < after["MHS 15m"] / 2e8 < 0.72
    assert after["MHS av"] / 2e8 > 0.95  # the average since boot barely moves


def test_daily_cycle_follows_local_hour():
    # site at UTC+8: 15:00 local is 07:00 UTC, 03:00 local is 19:00 UTC
    m = miner(utc_offset_h=8)
    warm, cold = m.reading(T0 + 7 * 3600), m.reading(T0 + 19 * 3600)
    assert 10 < warm.inlet_c - cold.inlet_c < 14  # air: 24 ± 6 °C
    assert warm.chip_max_c - cold.chip_max_c > 8  # chips follow the inlet
    assert warm.fan_rpm[0] > cold.fan_rpm[0]  # and fans follow the chips
    inlets = [m.inlet_c(T0 + h * 3600, with_noise=False) for h in range(24)]
    assert inlets.index(max(inlets)) == 7 and inlets.index(min(inlets)) == 19
    hydro = miner("antminer-s21-plus-hyd-338t", utc_offset_h=8)
    assert 3 < hydro.inlet_c(T0 + 7 * 3600, with_noise=False) - hydro.inlet_c(T0 + 19 * 3600, with_noise=False) < 5


def test_shares_accumulate_with_hashrate_and_elapsed_counts_uptime():
    small, big = miner("antminer-s19j-pro-104t"), miner("antminer-s21-xp-270t")
    a0, b0 = small.reading(T0), big.reading(T0)
    a1, b1 = small.reading(T0 + 3600), big.reading(T0 + 3600)
    assert a1.elapsed_s - a0.elapsed_s == 3600
    for before, after, ths in ((a0, a1, 104), (b0, b1, 270)):
        expected = ths * SHARES_PER_THS_S * 3600
        assert (
            0.95 * expected < (after.accepted + after.rejected) - (before.accepted + before.rejected) < 1.05 * expected
        )
        assert 0.97 * ths < after.av_ths < 1.03 * ths


# --- faults ------------------------------------------------------------------------------------------------------


def test_overheat_climbs_past_the_limit_then_firmware_stops_hashing():
    sim, clock = sim_with(1, [{"kind": "overheat", "start": 60, "duration": 3600, "miners": [0]}])
    m = sim.miners[0]
    before = m.reading(clock.advance(59))
    climbing = m.reading(clock.advance(121))  # 2 minutes into the fault at 3 °C/min
    assert 4 < climbing.chip_max_c - before.chip_max_c < 8 and climbing.status == "hashing"
    readings = [m.reading(clock.advance(30)) for _ in range(40)]
    down = next(i for i, r in enumerate(readings) if r.status == "error")
    assert readings[down - 1].chip_max_c > 90  # it got hot first
    assert readings[down].hashrate_ths == 0 and readings[down].errors == ["overheat_shutdown"]
    assert readings[-1].chip_max_c < readings[down].chip_max_c - 15  # then cooled, fans at full
    assert readings[-1].fan_rpm == [round(x) for x in readings[-1].fan_rpm] and min(readings[-1].fan_rpm) > 5800
    assert all(r.status == "error" for r in readings[down:])  # stays down (no flapping)
    clock.set(T0 + 60 + 3600 + 10)
    after = m.reading(clock.now())
    assert after.status == "hashing" and after.elapsed_s == 10 and after.accepted < 20  # rebooted at the end


def test_hashboard_failure_loses_one_third():
    sim, clock = sim_with(1, [{"kind": "hashboard_failure", "start": 0, "duration": 600, "miners": [0]}])
    m = sim.miners[0]
    r = m.reading(clock.advance(10))
    nominal = m.profile.nominal_ths
    assert r.chain_ths[-1] == 0 and not r.chain_alive[-1] and r.errors == ["chain_2_dead"]
    assert 0.62 * nominal < r.hashrate_ths < 0.71 * nominal
    assert 0.64 * m.profile.nominal_w < r.power_w < 0.72 * m.profile.nominal_w
    assert r.chip_c[-1] < r.chip_c[0] - 25  # the dead board is cold
    devs = api.dispatch(m, clock.now(), "devs", None)["DEVS"]
    assert [d["Status"] for d in devs] == ["Alive", "Alive", "Dead"]
    stats = api.dispatch(m, clock.now(), "stats", None)["STATS"][1]
    assert stats["chain_rate3"] == "0.00" and stats["chain_acn3"] == 0 and float(stats["chain_rate1"]) > 0
    clock.advance(600)
    assert m.reading(clock.now()).chain_alive == [True] * 3


def test_fan_failure_zero_rpm_and_hotter_chips():
    sim, clock = sim_with(
        1, [{"kind": "fan_failure", "start": 0, "duration": 600, "miners": [0], "params": {"fan": 2}}]
    )
    m = sim.miners[0]
    normal = m.reading(clock.now() - 1)
    r = m.reading(clock.advance(5))
    assert r.fan_rpm[2] == 0 and all(rpm > 0.98 * m.profile.fan_max_rpm for i, rpm in enumerate(r.fan_rpm) if i != 2)
    assert r.chip_max_c > normal.chip_max_c + 10 and r.errors == ["fan_2_failure"]
    stats = api.dispatch(m, clock.now(), "stats", None)["STATS"][1]
    assert stats["fan3"] == 0 and stats["fan_num"] == 4


def test_offline_port_stops_answering_and_comes_back_rebooted():
    base = free_base_port(2)
    sim, clock = sim_with(
        2, [{"kind": "offline", "start": 60, "duration": 300, "miners": ["SIM-000002"]}], base_port=base
    )

    async def scenario():
        await sim.start()
        try:
            assert (await cgminer.query("127.0.0.1", base + 1, "summary", 2))["SUMMARY"][0]["Elapsed"] > 3600
            clock.advance(61)
            with pytest.raises(cgminer.CGMinerUnavailable):
                await cgminer.query("127.0.0.1", base + 1, "summary", 2)
            assert (await cgminer.query("127.0.0.1", base, "summary", 2))["SUMMARY"][0]["Elapsed"] > 3600
            clock.advance(300)
            back = await cgminer.query("127.0.0.1", base + 1, "summary", 2)
            assert back["SUMMARY"][0]["Elapsed"] == 1 and back["SUMMARY"][0]["Accepted"] < 5
        finally:
            await sim.stop()

    asyncio.run(scenario())
    assert sim.miners[1].reading(clock.now()).status == "hashing"


def test_offline_silent_mode_times_out():
    base = free_base_port(1)
    sim, _clock = sim_with(
        1, [{"kind": "offline", "start": 0, "miners": [0], "params": {"mode": "silent"}}], base_port=base
    )

    async def scenario():
        await sim.start()
        try:
            with pytest.raises(cgminer.CGMinerTimeout):
                await cgminer.query("127.0.0.1", base, "summary", 0.3)
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_reboot_loop_restarts_every_period_with_counters_reset():
    plan = [
        {"kind": "reboot_loop", "start": 0, "duration": 1000, "miners": [0], "params": {"period_s": 200, "boot_s": 40}}
    ]
    sim, clock = sim_with(1, plan)
    m = sim.miners[0]
    seen = []
    for t in range(0, 1200, 20):
        clock.set(T0 + t)
        r = m.reading(clock.now())
        seen.append((t, r.reachable, r.elapsed_s, r.accepted))
    down = [t for t, reachable, *_ in seen if not reachable]
    assert down == [0, 20, 200, 220, 400, 420, 600, 620, 800, 820]
    assert {t: e for t, _, e, _ in seen}[380] == 180 - 40  # booted at 240
    assert {t: a for t, _, _, a in seen}[380] < 120  # counters restarted at the boot
    assert {t: e for t, _, e, _ in seen}[1180] == 1180 - 840  # after the loop: up since the last boot


def test_pool_rejects_jump():
    sim, clock = sim_with(1, [{"kind": "pool_rejects", "start": 0, "duration": 7200, "miners": [0]}])
    m = sim.miners[0]
    r0 = m.reading(clock.now())
    r1 = m.reading(clock.advance(3600))
    new_acc, new_rej = r1.accepted - r0.accepted, r1.rejected - r0.rejected
    assert 0.22 < new_rej / (new_acc + new_rej) < 0.28
    summary = api.dispatch(m, clock.now(), "summary", None)["SUMMARY"][0]
    assert summary["Rejected"] == r1.rejected
    pool = api.dispatch(m, clock.now(), "pools", None)["POOLS"][0]
    assert pool["Rejected"] == r1.rejected and pool["Accepted"] == r1.accepted


def test_ground_truth_file_lists_each_miner_and_fault(tmp_path):
    path = tmp_path / "truth.jsonl"
    clock = ManualClock(T0)
    plan = [
        {"kind": "overheat", "start": 120, "duration": 600, "miners": ["SIM-000002", 3]},
        {"kind": "hashboard_failure", "start": "2026-11-26T01:00:00Z", "indexes": ["4-5"]},
        {"kind": "pool_rejects", "start": 0, "duration": 60, "random": 2, "params": {"reject_pct": 40}},
    ]
    sim, _ = sim_with(6, plan, clock=clock, truth=GroundTruth(str(path)))
    sim.ground_truth.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["serial"], r["kind"]) for r in rows[:4]] == [
        ("SIM-000002", "overheat"), ("SIM-000004", "overheat"),
        ("SIM-000005", "hashboard_failure"), ("SIM-000006", "hashboard_failure"),
    ]  # fmt: skip
    assert rows[0]["start"] == "2026-11-26T00:02:00Z" and rows[0]["end"] == "2026-11-26T00:12:00Z"
    assert rows[0]["port"] == 30001 and rows[0]["model"] == sim.miners[1].profile.code
    assert rows[2]["start"] == "2026-11-26T01:00:00Z" and rows[2]["end"] is None
    assert len(rows) == 6 and rows[4]["params"] == {"reject_pct": 40.0} and rows[4]["serial"] != rows[5]["serial"]
    assert all(r["wall_start"] == r["start"] for r in rows)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ([{"kind": "meltdown", "miners": [0]}], "kind must be one of"),
        ([{"kind": "offline", "miners": [99]}], "index 99 out of range"),
        ([{"kind": "offline", "miners": ["NOPE"]}], "unknown miner"),
        ([{"kind": "offline"}], "selects no miner"),
        ([{"kind": "offline", "miners": [0], "duration": -5}], "duration must be positive"),
        ([{"kind": "offline", "miners": [0], "start": "yesterday"}], "neither seconds nor an ISO"),
        ([{"kind": "fan_failure", "miners": [0], "params": {"speed": 1}}], "unknown params"),
        ([{"kind": "reboot_loop", "miners": [0], "params": {"period_s": 10, "boot_s": 20}}], "shorter than period_s"),
        ({"nofaults": []}, "a fault plan is a list"),
    ],
)
def test_bad_fault_plans_are_refused_with_a_reason(plan, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(plan, t0=T0, serials=["SIM-000001", "SIM-000002"])


# --- write commands ----------------------------------------------------------------------------------------------


def test_write_commands_change_the_state():
    m = miner()
    t = T0
    assert api.dispatch(m, t, "hashing_disable", None)["STATUS"][0]["STATUS"] == "S"
    r = m.reading(t + 60)
    assert r.status == "idle" and r.hashrate_ths == 0 and r.power_w < 0.05 * m.profile.nominal_w
    assert r.chip_max_c < 40
    assert api.dispatch(m, t + 60, "resume", None)["STATUS"][0]["Code"] == 133
    assert m.reading(t + 120).status == "hashing"

    api.dispatch(m, t + 120, "ascdisable", "1")
    r = m.reading(t + 130)
    assert r.chain_ths[1] == 0 and r.chain_ths[0] > 0 and r.status == "hashing" and r.chain_alive[1]
    assert [d["Enabled"] for d in api.dispatch(m, t + 130, "devs", None)["DEVS"]] == ["Y", "N", "Y"]
    api.dispatch(m, t + 130, "ascenable", "1")

    auto = m.reading(t + 140)
    api.dispatch(m, t + 140, "set_fan", "20")
    r = m.reading(t + 150)
    assert all(abs(rpm - 0.2 * 6000) < 50 for rpm in r.fan_rpm) and r.chip_max_c > auto.chip_max_c + 5
    api.dispatch(m, t + 150, "set_fan", "auto")
    assert m.fan_override_pct is None

    api.dispatch(m, t + 160, "power_mode", "low")
    r = m.reading(t + 170)
    assert 0.76 * 200 < r.hashrate_ths < 0.84 * 200 and 0.66 * 3500 < r.power_w < 0.74 * 3500
    api.dispatch(m, t + 170, "power_mode", "high")
    assert m.reading(t + 180).hashrate_ths > 1.05 * 200

    api.dispatch(m, t + 180, "set_pool", "stratum+tcp://new.pool.example:3333,acct.worker1,secret")
    pools = api.dispatch(m, t + 200, "pools", None)["POOLS"]
    assert (pools[0]["URL"], pools[0]["User"], pools[0]["Stratum Active"]) == (
        "stratum+tcp://new.pool.example:3333", "acct.worker1", True,
    )  # fmt: skip
    assert 0 < pools[0]["Accepted"] < 30  # counted since the switch
    assert api.dispatch(m, t + 200, "addpool", "stratum+ssl://other.example:443,acct.w2")["STATUS"][0]["Code"] == 139
    api.dispatch(m, t + 200, "switchpool", "3")
    pools = api.dispatch(m, t + 210, "pools", None)["POOLS"]
    assert [p["Stratum Active"] for p in pools] == [False, False, False, True] and pools[3]["User"] == "acct.w2"

    api.dispatch(m, t + 300, "restart", None)
    assert m.down_mode(t + 310) == "refuse"
    r = m.reading(t + 330)
    assert r.reachable and r.elapsed_s == 15 and r.accepted < 15
    assert m.power_mode == "high" and m.active_pool == 3  # settings survive the reboot


@pytest.mark.parametrize(
    ("command", "parameter", "code"),
    [
        ("set_fan", "150", 140),
        ("set_fan", "", 140),
        ("set_fan", "-1", 140),
        ("power_mode", "turbo", 140),
        ("set_pool", "http://pool.example,u", 140),
        ("set_pool", "stratum+tcp://pool.example", 140),
        ("set_pool", "stratum+tcp://p.example," + "u" * 300, 140),
        ("switchpool", "9", 140),
        ("ascdisable", "3", 140),
        ("restart", "now", 140),
        ("reboot", None, 14),
        ("summary+restart", None, 14),
        ("", None, 14),
    ],
)
def test_bad_write_parameters_answer_errors(command, parameter, code):
    m = miner()
    reply = api.dispatch(m, T0, command, parameter)
    assert reply["STATUS"][0]["STATUS"] == "E" and reply["STATUS"][0]["Code"] == code
    assert m.mining and m.power_mode == "normal" and m.fan_override_pct is None and len(m.pools) == 3


def test_set_fan_on_a_hydro_unit_is_refused_and_read_only_refuses_writes():
    hydro = miner("antminer-s21-plus-hyd-338t")
    assert api.dispatch(hydro, T0, "set_fan", "50")["STATUS"][0]["Code"] == 141
    m = miner()
    reply = api.dispatch(m, T0, "hashing_disable", None, allow_writes=False)
    assert reply["STATUS"][0]["Code"] == 45 and m.mining
    assert api.dispatch(m, T0, "summary", None, allow_writes=False)["STATUS"][0]["STATUS"] == "S"


# --- read replies ------------------------------------------------------------------------------------------------


def test_replies_carry_the_serial_and_vendor_dialects():
    for code, power_where in (
        ("antminer-s21-200t", "stats"),
        ("whatsminer-m50s-126t", "summary"),
        ("avalon-a1246-90t", None),
    ):
        m = miner(code)
        version = api.dispatch(m, T0, "version", None)["VERSION"][0]
        stats = api.dispatch(m, T0, "stats", None)["STATS"]
        summary = api.dispatch(m, T0, "summary", None)["SUMMARY"][0]
        assert version["SN"] == stats[0]["SN"] == "SIM-TEST" and version["Model Code"] == code
        assert stats[0]["Type"] == CATALOG[code].name
        assert summary["MHS av"] > 0 and summary["MHS 5s"] > 0 and summary["Mining"] is True and summary["Errors"] == []
        assert stats[1]["temp_inlet"] < stats[1]["temp_outlet"] and "chain_rate3" in stats[1]
        assert ("chain_power" in stats[1]) == (power_where == "stats")
        assert ("Power" in summary) == (power_where == "summary")
        if power_where == "stats":
            assert stats[1]["chain_power"].endswith(" W") and summary["GHS av"] > 0
            assert len(stats[1]["temp_chip1"].split("-")) == 4
    joined = api.dispatch(miner(), T0, "summary+stats+pools", None)
    assert set(joined) == {"summary", "stats", "pools", "id"} and joined["pools"][0]["POOLS"][0]["Status"] == "Alive"


# --- the servers -------------------------------------------------------------------------------------------------


def test_n_servers_on_n_ports_and_malformed_requests():
    n = 60
    base = free_base_port(n + 1)
    sim, _clock = sim_with(n, base_port=base, control_port=base + n)

    async def raw(port: int, payload: bytes, *, close_write: bool = True) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        if close_write:
            writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data

    async def scenario():
        await sim.start()
        try:
            replies = await asyncio.gather(*(cgminer.query("127.0.0.1", base + i, "version", 5) for i in range(n)))
            assert [r["VERSION"][0]["SN"] for r in replies] == [f"SIM-{i + 1:06d}" for i in range(n)]
            # malformed input: errors, never a crash
            for payload, code in (
                (b"{not json", 23),
                (b"\xff\xfe\x00", 23),
                (b"[1, 2]", 14),  # not an object: read as the plain-text form, an unknown command
                (b'{"parameter": "x"}', 14),
                (b'{"command": 5}', 14),
                (b'{"command": "summary", "parameter": {"a": 1}}', 14),
                (b'{"command": "selfdestruct"}', 14),
                (b"{" + b" " * 8199, 23),  # longer than MAX_REQUEST_BYTES
                (b"x" * 4000, 14),
                (b"", 14),
            ):
                reply = cgminer.decode_reply(await raw(base, payload))
                assert reply["STATUS"][0]["STATUS"] == "E" and reply["STATUS"][0]["Code"] == code, payload
            # a client that sends half a JSON object and waits gets an error after the read timeout
            # (not asserted here: it would sleep); the plain-text form works without EOF
            plain = cgminer.decode_reply(await raw(base, b"summary", close_write=False))
            assert plain["SUMMARY"][0]["Elapsed"] > 0
            with_nul = cgminer.decode_reply(await raw(base, b'{"command":"pools"}\x00', close_write=False))
            assert with_nul["POOLS"][0]["POOL"] == 0
            # the servers are still fine
            assert (await cgminer.query("127.0.0.1", base + n - 1, "devs", 5))["STATUS"][0]["Code"] == 9
            # write command over TCP changes the state
            await cgminer.query("127.0.0.1", base + 2, "hashing_disable", 5)
            summary = await cgminer.query("127.0.0.1", base + 2, "summary", 5)
            assert summary["SUMMARY"][0]["MHS 5s"] == 0 and summary["SUMMARY"][0]["Mining"] is False
            # control port: list, inject a fault, read the truth
            ctl = sim.control_port
            assert len((await cgminer.query("127.0.0.1", ctl, "miners", 5))["MINERS"]) == n
            spec = json.dumps({"kind": "hashboard_failure", "duration": 60, "miners": ["SIM-000005"]})
            injected = await cgminer.query("127.0.0.1", ctl, "fault", 5, parameter=spec)
            assert injected["FAULT"][0]["serial"] == "SIM-000005" and injected["FAULT"][0]["start"] == iso(T0)
            state = (await cgminer.query("127.0.0.1", ctl, "state", 5, parameter="SIM-000005"))["STATE"][0]
            assert state["faults"] == ["hashboard_failure"] and state["chain_alive"] == [True, True, False]
            bad = await cgminer.query("127.0.0.1", ctl, "fault", 5, parameter='{"kind": "nope"}')
            assert cgminer.is_error(bad)
            assert len((await cgminer.query("127.0.0.1", ctl, "faults", 5))["FAULTS"]) == 1
        finally:
            await sim.stop()

    asyncio.run(scenario())
    assert all(bindable(base + i) for i in range(n + 1))  # the ports are released


def test_port_in_use_fails_cleanly():
    base = free_base_port(3)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", base + 2))
    blocker.listen()
    sim, _ = sim_with(3, base_port=base)
    try:
        with pytest.raises(OSError):
            asyncio.run(sim.start())
        assert bindable(base) and bindable(base + 1)  # the ports it had opened are closed again
    finally:
        blocker.close()


def test_fd_limit_is_checked():
    soft, hard = ensure_fd_limit(600)
    assert soft >= 600 or soft == -1
    if hard not in (-1, getattr(__import__("resource"), "RLIM_INFINITY", -1)):
        with pytest.raises(OSError, match="hard limit"):
            ensure_fd_limit(hard + 1)


# --- inventory, clock ----------------------------------------------------------------------------------------------


def test_inventory_impersonates_the_farm_and_is_validated():
    inventory = [
        {"serial": "HI0000001", "model": "antminer-s21-200t"},
        {"serial": "HI0000002", "model": "whatsminer-m50s-126t", "port": 40100},
    ]
    miners = build_miners(CATALOG, count=None, base_port=14028, t0=T0, inventory={"miners": inventory})
    assert [(m.serial, m.profile.code, m.port) for m in miners] == [
        ("HI0000001", "antminer-s21-200t", 14028), ("HI0000002", "whatsminer-m50s-126t", 40100),
    ]  # fmt: skip
    assert len(build_miners(CATALOG, count=1, base_port=14028, t0=T0, inventory=inventory)) == 1
    # the server's inventory rows (extra keys ignored); its asset status carries over
    server_page = {
        "site_id": 1, "next": None, "miners": [
            {"id": 1, "serial": "HI0000001", "model": "antminer-s21-200t", "status": "active", "ip": ""},
            {"id": 2, "serial": "HI0000002", "model": "antminer-s21-200t", "status": "offline", "ip": ""},
            {"id": 3, "serial": "HI0000003", "model": "antminer-s21-200t", "status": "maintenance", "ip": ""},
        ],
    }  # fmt: skip
    clock = ManualClock(T0)
    miners = build_miners(CATALOG, count=None, base_port=14028, t0=T0, inventory=server_page)
    sim = Simulator(miners, clock)
    truth = sim.add_inventory_faults()
    assert [(r["serial"], r["kind"], r["end"]) for r in truth] == [("HI0000002", "offline", None)]
    assert [m.reading(T0 + 60).status for m in miners] == ["hashing", "offline", "idle"]
    for bad, message in (
        ([{"serial": "A", "model": "antminer-s99"}], "unknown model"),
        ([{"serial": "", "model": "antminer-s21-200t"}], "serial"),
        ([{"serial": "A", "model": "antminer-s21-200t", "port": 70000}], "port"),
        ([{"serial": "A", "model": "antminer-s21-200t"}, {"serial": "A", "model": "antminer-s21-200t"}], "twice"),
        ("nope", "inventory is a list"),
    ):
        with pytest.raises(InventoryError, match=message):
            build_miners(CATALOG, count=None, base_port=14028, t0=T0, inventory=bad)


def test_generated_fleet_uses_the_demo_mix():
    miners = build_miners(CATALOG, count=500, base_port=14028, t0=T0, seed=1)
    assert miners[0].serial == "SIM-000001" and miners[-1].port == 14028 + 499
    codes = [m.profile.code for m in miners]
    assert set(codes) <= {c for c, _ in DEFAULT_MIX} and codes.count("antminer-s21-200t") > 100


def test_real_clock_runs_at_speed(monkeypatch):
    import edge.simulator.clock as clock_module

    now = [1000.0]
    monkeypatch.setattr(clock_module.time, "monotonic", lambda: now[0])
    clock = RealClock(speed=60, start=T0)
    now[0] += 10
    assert clock.now() == T0 + 600 and math.isclose(clock.to_wall(T0 + 600) - clock.to_wall(T0), 10)
    with pytest.raises(ValueError):
        RealClock(speed=0)
