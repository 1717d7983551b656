"""The CGMiner API a simulated miner answers: read commands, write commands, errors.

Read commands (may be joined with "+", e.g. "summary+stats"): summary, stats, devs, pools, version.
Write commands (one per request, parameter as a string; refused with code 45 when the simulator runs --read-only):

  command           parameter                      effect
  restart           -                              reboots: no answer for --restart-seconds, then counters restart
  hashing_disable   -                              stops hashing on every chain (status idle, power ~3 %); "pause"
  hashing_enable    -                              hashes again on every chain; alias "resume"
  ascdisable        chain (0-based, as in devs)    cgminer's: stops one chain (all disabled → status idle)
  ascenable         chain                          cgminer's: starts one chain again
  set_fan           0..100 | "auto"                fixes the fan duty (air units only); too low → hotter chips
  set_pool          "url,user[,password]"          replaces pool 0 and makes it active
  addpool           "url,user[,password]"          cgminer's: appends a pool (at most 8)
  switchpool        pool index                     cgminer's: makes that pool the active one
  power_mode        low | normal | high            hashrate × 0.80/1.00/1.10, power × 0.70/1.00/1.22
  power_target      watts | 0 | "default"          soft power cap: the chains underclock until the miner draws at
                                                   most that (hashrate ∝ power^0.8); 0/"default" clears it; below
                                                   the model's floor (40 % of nominal W) refused with code 141
Pool URLs must start with stratum+tcp://, stratum+ssl:// or stratum2+tcp://; no value may contain a comma.

STATUS codes: the read commands use cgminer's (summary 11, stats 70, devs 9, pools 7, version 22), invalid
command 14, invalid JSON 23, access denied 45; the write commands and parameter errors use the simulator's own
(restart 131, hashing_disable 132, hashing_enable 133, set_fan 134, set_pool 135, power_mode 136, ascenable 137,
ascdisable 138, addpool 139, switchpool 142, power_target 143; invalid or missing parameter 140, not possible on
this model or below its floor 141).

Where the serial is: VERSION[0]["SN"] and STATS[0]["SN"] (and the catalog code in VERSION[0]["Model Code"]).
Simulator additions to SUMMARY[0] (real firmware spreads these over web pages and vendor commands):
"Mining" (hashing enabled by the operator), "Errors" (list of codes: overheat_shutdown, chain_<i>_dead,
fan_<i>_failure, coolant_flow_low), "Power Mode" (low/normal/high), "Power Target" (W, 0 when none is set) and
"Power Limit" (W: the target, else the model's maximum; Whatsminer's own summary field of that name, added for every
dialect). STATS[1] carries "temp_inlet"/"temp_outlet" (°C) for every model, and on air units "Fan Percent" (the
duty now, 0–100) and "Fan Mode" ("auto", or "manual" when set_fan fixed the duty) — simulator additions.
Power is reported only where the vendor's firmware does: Antminer STATS[1]["chain_power"] ("3250 W"), Whatsminer
SUMMARY[0]["Power"] (W); Avalon and others report none.
"""

from __future__ import annotations

from edge.cgminer import status
from edge.simulator.miner import POOL_DIFFICULTY, POWER_MODES, POWER_TARGET_MAX_W, Reading, SimMiner

READ_COMMANDS = ("summary", "stats", "devs", "pools", "version")
WRITE_ALIASES = {"pause": "hashing_disable", "resume": "hashing_enable"}
WRITE_COMMANDS = (
    "restart", "hashing_disable", "hashing_enable", "ascdisable", "ascenable", "set_fan", "set_pool", "addpool",
    "switchpool", "power_mode", "power_target",
)  # fmt: skip
MAX_POOLS = 8
POOL_SCHEMES = ("stratum+tcp://", "stratum+ssl://", "stratum2+tcp://")

_FIRMWARE = {  # dialect: (miner program, its version, firmware build)
    "antminer": ("BMMiner", "4.11.1", "Antminer-2024-03-18-0-1a2b3c4d"),
    "whatsminer": ("btminer", "4.11.1", "20240315.22.REL"),
    "avalon": ("cgminer", "4.11.1", "25031801_4ec6bb0_61407fa"),
}


def description(miner: SimMiner) -> str:
    program, version, _ = _FIRMWARE[miner.profile.dialect]
    return f"{program.lower()} {version}"


def _ok(miner: SimMiner, code: int, msg: str) -> dict:
    return status(code, msg, description=description(miner))


def error(code: int, msg: str, description: str = "cgminer 4.11.1") -> dict:
    return {"STATUS": [status(code, msg, kind="E", description=description)], "id": 1}


# --- read commands -----------------------------------------------------------------------------------------------


def _summary(miner: SimMiner, r: Reading) -> dict:
    p = miner.profile
    elapsed = max(r.elapsed_s, 1)
    shares = r.accepted + r.rejected
    total_ths = r.hashrate_ths
    row = {
        "Elapsed": r.elapsed_s,
        "MHS av": round(r.av_ths * 1e6, 2),
        "MHS 5s": round(total_ths * 1e6, 2),
        "MHS 1m": round(r.window_ths[60] * 1e6, 2),
        "MHS 5m": round(r.window_ths[300] * 1e6, 2),
        "MHS 15m": round(r.window_ths[900] * 1e6, 2),
        "Found Blocks": 0,
        "Getworks": r.elapsed_s // 30,
        "Accepted": r.accepted,
        "Rejected": r.rejected,
        "Hardware Errors": r.hw_errors,
        "Utility": round(r.accepted / (elapsed / 60), 2),
        "Discarded": r.elapsed_s // 10,
        "Stale": 0,
        "Get Failures": 0,
        "Local Work": r.elapsed_s * 50,
        "Remote Failures": 0,
        "Network Blocks": r.elapsed_s // 600,
        "Total MH": round(r.av_ths * 1e6 * r.elapsed_s, 0),
        "Work Utility": round(r.accepted * POOL_DIFFICULTY / (elapsed / 60), 2),
        "Difficulty Accepted": float(r.accepted * POOL_DIFFICULTY),
        "Difficulty Rejected": float(r.rejected * POOL_DIFFICULTY),
        "Difficulty Stale": 0.0,
        "Best Share": r.accepted * 1733,
        "Device Hardware%": round(100 * r.hw_errors / (r.hw_errors + shares), 4) if r.hw_errors + shares else 0.0,
        "Device Rejected%": round(100 * r.rejected / shares, 4) if shares else 0.0,
        "Pool Rejected%": round(100 * r.rejected / shares, 4) if shares else 0.0,
        "Pool Stale%": 0.0,
        "Last getwork": int(r.t),
        # simulator additions (see the module docstring)
        "Mining": r.mining,
        "Errors": list(r.errors),
        "Power Mode": r.power_mode,
        "Power Target": r.power_target_w or 0,
        "Power Limit": r.power_limit_w,
    }
    if p.dialect == "antminer":
        row["GHS 5s"] = round(total_ths * 1e3, 2)
        row["GHS av"] = round(r.av_ths * 1e3, 2)
    elif p.dialect == "whatsminer":
        fans = [*r.fan_rpm, 0, 0]
        row.update(
            {
                "Temperature": round(sum(r.pcb_c) / len(r.pcb_c), 2),
                "Env Temp": round(r.inlet_c, 2),
                "Chip Temp Min": round(min(r.chip_c) - 6, 2),
                "Chip Temp Max": round(r.chip_max_c, 2),
                "Chip Temp Avg": round(sum(r.chip_c) / len(r.chip_c) - 3, 2),
                "Fan Speed In": fans[0],
                "Fan Speed Out": fans[1],
                "Power": round(r.power_w),
                "Power Rate": round(r.power_w / total_ths, 2) if total_ths else 0.0,
                "Factory GHS": round(p.nominal_ths * 1e3),
                "freq_avg": 560 if r.mining else 0,
                "Error Code Count": len(r.errors),
            }
        )
    return {"STATUS": [_ok(miner, 11, "Summary")], "SUMMARY": [row], "id": 1}


def _temps(values: list[float], spread: float) -> str:
    """Antminer's per-chain sensor string "in1-in2-out1-out2" (inlet-side sensors read cooler)."""
    return "-".join(str(round(v)) for v in (values[0] - spread, values[0] - spread - 1, values[0], values[0] - 1))


def _stats(miner: SimMiner, r: Reading) -> dict:
    p = miner.profile
    program, version, build = _FIRMWARE[p.dialect]
    head = {program: version, "Miner": build, "CompileTime": "Mon Mar 18 10:00:00 CST 2024", "Type": p.name}
    head["SN"] = miner.serial
    detail: dict = {
        "STATS": 0,
        "ID": {"antminer": "BTM_SOC0", "whatsminer": "SM0", "avalon": "AVA100"}[p.dialect],
        "Elapsed": r.elapsed_s,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "GHS 5s": f"{r.hashrate_ths * 1e3:.2f}",
        "GHS av": round(r.av_ths * 1e3, 2),
        "rate_unit": "GH",
        "miner_count": p.chains,
        "frequency": 560 if r.mining else 0,
        "fan_num": p.fans,
    }
    for i, rpm in enumerate(r.fan_rpm, start=1):
        detail[f"fan{i}"] = rpm
    if p.fans:  # simulator additions (see the module docstring)
        detail["Fan Percent"] = r.fan_pct
        detail["Fan Mode"] = "auto" if r.fan_auto else "manual"
    detail["temp_num"] = p.chains
    for c in range(p.chains):
        i = c + 1
        detail[f"temp{i}"] = round(r.pcb_c[c])
        detail[f"temp2_{i}"] = round(r.chip_c[c])
        detail[f"temp_pcb{i}"] = _temps([r.pcb_c[c]], 8)
        detail[f"temp_chip{i}"] = _temps([r.chip_c[c]], 14)
        detail[f"chain_acn{i}"] = p.chips_per_chain if r.chain_alive[c] else 0
        detail[f"chain_acs{i}"] = " ".join(["oooooooo"] * (p.chips_per_chain // 8)) if r.chain_alive[c] else ""
        detail[f"chain_hw{i}"] = r.chain_hw[c]
        detail[f"chain_rate{i}"] = f"{r.chain_ths[c] * 1e3:.2f}"
        detail[f"chain_rateideal{i}"] = round(p.nominal_ths / p.chains * 1e3, 2)
    detail.update(
        {
            "temp_max": round(r.chip_max_c),
            "temp_inlet": round(r.inlet_c, 1),
            "temp_outlet": round(r.outlet_c, 1),
            "total_rateideal": round(p.nominal_ths * 1e3, 2),
            "total_acn": sum(p.chips_per_chain for c in range(p.chains) if r.chain_alive[c]),
            "total_rate": round(r.hashrate_ths * 1e3, 2),
            "no_matching_work": 0,
        }
    )
    if p.dialect == "antminer":
        detail["chain_power"] = f"{round(r.power_w)} W"
    return {"STATUS": [_ok(miner, 70, "CGMiner stats")], "STATS": [head, detail], "id": 1}


def _devs(miner: SimMiner, r: Reading) -> dict:
    p = miner.profile
    rows = []
    for c in range(p.chains):
        ths = r.chain_ths[c]
        rows.append(
            {
                "ASC": c,
                "Name": {"antminer": "BTM_SOC", "whatsminer": "SM", "avalon": "AVA10"}[p.dialect],
                "ID": c,
                "Enabled": "Y" if r.chain_enabled[c] else "N",
                "Status": "Alive" if r.chain_alive[c] else "Dead",
                "Temperature": round(r.pcb_c[c], 2),
                "Chip Temp Max": round(r.chip_c[c], 2),
                "MHS av": round(r.av_ths / p.chains * 1e6, 2) if r.chain_alive[c] else 0.0,
                "MHS 5s": round(ths * 1e6, 2),
                "Accepted": r.chain_accepted[c],
                "Rejected": 0,
                "Hardware Errors": r.chain_hw[c],
                "Utility": round(r.chain_accepted[c] / (max(r.elapsed_s, 1) / 60), 2),
                "Last Share Pool": 0,
                "Last Share Time": int(r.t) if ths > 0 else 0,
                "Device Elapsed": r.elapsed_s,
            }
        )
    return {"STATUS": [_ok(miner, 9, f"{p.chains} ASC(s)")], "DEVS": rows, "id": 1}


def _pools(miner: SimMiner, r: Reading) -> dict:
    accepted, rejected = miner.pool_counters()
    rows = []
    for i, pool in enumerate(miner.pools):
        active = i == miner.active_pool
        rows.append(
            {
                "POOL": i,
                "URL": pool["url"],
                "Status": "Alive",
                "Priority": 0 if active else i + 1,
                "Quota": 1,
                "Long Poll": "N",
                "Getworks": r.elapsed_s // 30 if active else 0,
                "Accepted": accepted if active else 0,
                "Rejected": rejected if active else 0,
                "Discarded": 0,
                "Stale": 0,
                "Get Failures": 0,
                "Remote Failures": 0,
                "User": pool["user"],
                "Last Share Time": int(r.t) if active and r.hashrate_ths > 0 else 0,
                "Diff1 Shares": 0,
                "Proxy Type": "",
                "Proxy": "",
                "Difficulty Accepted": float(accepted * POOL_DIFFICULTY) if active else 0.0,
                "Difficulty Rejected": float(rejected * POOL_DIFFICULTY) if active else 0.0,
                "Difficulty Stale": 0.0,
                "Last Share Difficulty": float(POOL_DIFFICULTY) if active else 0.0,
                "Has Stratum": True,
                "Stratum Active": active,
                "Stratum URL": pool["url"].split("://", 1)[-1].rsplit(":", 1)[0] if active else "",
                "Best Share": accepted * 1733 if active else 0,
                "Pool Rejected%": round(100 * rejected / (accepted + rejected), 4) if active and accepted else 0.0,
                "Pool Stale%": 0.0,
            }
        )
    return {"STATUS": [_ok(miner, 7, f"{len(rows)} Pool(s)")], "POOLS": rows, "id": 1}


def _version(miner: SimMiner, r: Reading) -> dict:
    program, version, build = _FIRMWARE[miner.profile.dialect]
    row = {
        program: version,
        "API": "3.7",
        "Miner": build,
        "CompileTime": "Mon Mar 18 10:00:00 CST 2024",
        "Type": miner.profile.name,
        "SN": miner.serial,
        "MAC": miner.mac,
        "Model Code": miner.profile.code,
    }
    return {"STATUS": [_ok(miner, 22, "CGMiner versions")], "VERSION": [row], "id": 1}


_READERS = {"summary": _summary, "stats": _stats, "devs": _devs, "pools": _pools, "version": _version}


# --- write commands ----------------------------------------------------------------------------------------------


def _write(miner: SimMiner, t: float, command: str, parameter: str | None) -> dict:
    desc = description(miner)
    param = (parameter or "").strip()
    if command in ("restart", "hashing_disable", "hashing_enable") and param:
        return error(140, f"{command} takes no parameter", desc)
    if command == "restart":
        miner.restart(t)
        return {"STATUS": [_ok(miner, 131, f"Restarting, back in {miner.restart_s:g} s")], "id": 1}
    if command in ("hashing_disable", "hashing_enable"):
        enable = command == "hashing_enable"
        miner.set_mining(t, enable)
        msg = "Hashing enabled" if enable else "Hashing disabled"
        return {"STATUS": [_ok(miner, 133 if enable else 132, msg)], "id": 1}
    if command in ("ascdisable", "ascenable"):
        chains = miner.profile.chains
        if not param.isdigit() or not 0 <= int(param) < chains:
            return error(140, f"{command} needs an ASC id 0..{chains - 1}", desc)
        enable = command == "ascenable"
        miner.set_mining(t, enable, int(param))
        return {"STATUS": [_ok(miner, 137 if enable else 138, f"ASC {int(param)} {command[3:]}d")], "id": 1}
    if command == "switchpool":
        if not param.isdigit() or not 0 <= int(param) < len(miner.pools):
            return error(140, f"switchpool needs a pool index 0..{len(miner.pools) - 1}", desc)
        miner.switch_pool(t, int(param))
        url = miner.pools[int(param)]["url"]
        return {"STATUS": [_ok(miner, 142, f"Switching to pool {int(param)}:'{url}'")], "id": 1}
    if command == "set_fan":
        if not miner.profile.fans:
            return error(141, f"{miner.profile.name} has no fans ({miner.profile.cooling} cooling)", desc)
        if param.lower() == "auto":
            miner.advance(t)
            miner.fan_override_pct = None
            return {"STATUS": [_ok(miner, 134, "Fan control automatic")], "id": 1}
        if not param.isdigit() or not 0 <= int(param) <= 100:
            return error(140, "set_fan needs a duty 0..100 or 'auto'", desc)
        miner.advance(t)
        miner.fan_override_pct = int(param)
        return {"STATUS": [_ok(miner, 134, f"Fan duty fixed at {int(param)} %")], "id": 1}
    if command in ("set_pool", "addpool"):
        parts = [x.strip() for x in param.split(",")]
        if len(parts) not in (2, 3) or not parts[0].startswith(POOL_SCHEMES) or not parts[1]:
            return error(140, f"{command} needs 'url,user[,password]' with a stratum URL", desc)
        if any(len(x) > 255 for x in parts):
            return error(140, f"{command} values are at most 255 characters", desc)
        password = parts[2] if len(parts) == 3 else "x"
        if command == "set_pool":
            miner.set_pool(t, parts[0], parts[1], password)
            return {"STATUS": [_ok(miner, 135, f"Pool 0 set to {parts[0]}")], "id": 1}
        if len(miner.pools) >= MAX_POOLS:
            return error(141, f"at most {MAX_POOLS} pools", desc)
        miner.add_pool(t, parts[0], parts[1], password)
        return {"STATUS": [_ok(miner, 139, f"Added pool '{parts[0]}'")], "id": 1}
    if command == "power_mode":
        if param.lower() not in POWER_MODES:
            return error(140, "power_mode needs low, normal or high", desc)
        miner.advance(t)
        miner.power_mode = param.lower()
        return {"STATUS": [_ok(miner, 136, f"Power mode {miner.power_mode}")], "id": 1}
    if command == "power_target":
        if param.lower() in ("0", "default"):
            miner.set_power_target(t, None)
            return {"STATUS": [_ok(miner, 143, "Power target cleared")], "id": 1}
        if not param.isdigit() or int(param) > POWER_TARGET_MAX_W:
            return error(140, f"power_target needs watts 1..{POWER_TARGET_MAX_W}, 0 or 'default'", desc)
        if int(param) < miner.power_target_min_w:
            return error(141, f"power_target below this model's floor of {miner.power_target_min_w} W", desc)
        miner.set_power_target(t, int(param))
        return {"STATUS": [_ok(miner, 143, f"Power target {int(param)} W")], "id": 1}
    raise AssertionError(command)  # pragma: no cover - dispatch only passes WRITE_COMMANDS


# --- dispatch ----------------------------------------------------------------------------------------------------


def dispatch(miner: SimMiner, t: float, command: str, parameter: str | None, *, allow_writes: bool = True) -> dict:
    """The reply to one request; never raises for bad input (answers an error STATUS instead)."""
    desc = description(miner)
    command = command.strip().lower()
    command = WRITE_ALIASES.get(command, command)
    if command in WRITE_COMMANDS:
        if not allow_writes:
            return error(45, f"Access denied to '{command}' command", desc)
        return _write(miner, t, command, parameter)
    parts = command.split("+")
    if not all(part in _READERS for part in parts):
        return error(14, "Invalid command", desc)
    reading = miner.reading(t)
    if len(parts) == 1:
        return _READERS[command](miner, reading)
    joined: dict = {part: [_READERS[part](miner, reading)] for part in dict.fromkeys(parts)}
    joined["id"] = 1
    return joined
