"""Miners that speak the CGMiner JSON API (port 4028): the project's simulator, and stock cgminer/bmminer firmware.

One poll is one connection asking "summary+stats+pools" (three connections if the firmware does not accept
joined commands). Read from the answer, tolerant of the three dialects in the field:

- hashrate (TH/s): the most recent figure the firmware gives — SUMMARY "MHS 1m", else "MHS 5s" / "GHS 5s" —
  and "MHS av" / 1e6 (or "GHS av" / 1e3) only when there is nothing else: cgminer's "av" is the average since
  boot (total MH / elapsed), so a hashboard lost after a day of uptime would take hours to show in it. The
  server's 5-minute moving average smooths the 5-second noise. Per-chain hashrates from STATS "chain_rateN"
  (GH/s): a chain at 0 while others hash is a chain failure.
- chip temperature: the maximum over STATS "temp_chipN" (Antminer lists "62-60-75-73"), "temp2_N", SUMMARY
  "Chip Temp Max" (Whatsminer), "TMax[..]" in Avalon's "MM ID" strings.
- inlet/outlet: "temp_inlet"/"temp_outlet", SUMMARY "Env Temp", Antminer "temp_pcbN" (inlet side first), Avalon
  "Temp[..]".
- fans: STATS "fanN" (with "fan_num" as the expected count), SUMMARY "Fan Speed In/Out", Avalon "FanN[..]".
- power: "Power" / "power" / "chain_power" / "WALLPOWER[..]" when reported; null otherwise.
- shares: SUMMARY "Accepted"/"Rejected" (cumulative since the miner's start), else the sum over POOLS.
- errors: firmware codes as "fw:<code>" (SUMMARY "Errors", Whatsminer "Error Code N"), plus the collector's own
  (fan_failure, chain_failure, overheat, pool_dead), also derived from the firmware codes it recognises.
- settings (for a command's before_state, its rollback and its verification): the active pool's URL and worker
  (POOLS "Stratum Active", else the alive pool of lowest "Priority"), the fan duty (STATS "Fan Percent", Avalon
  "FanR[..%]") and whether it is automatic (STATS "Fan Mode"), the power mode (SUMMARY "Power Mode"), the power
  limit in force (SUMMARY "Power Limit") and an operator's soft power target (SUMMARY "Power Target", 0 = none).
  The simulator reports all of them; stock firmware mostly none (they stay unknown: null).
- status: "idle" when the operator disabled hashing (the simulator's SUMMARY "Mining": false), else from hashrate
  and errors (see base.derive_status).
- identity: when the answer names a serial (STATS[0] or VERSION "SN", as the simulator does) that is not the one
  expected at this address, the readings are not used: an "error" sample with "serial_mismatch".
No answer (refused, reset, timeout) → an "offline" sample with null readings and the error "unreachable"."""

from __future__ import annotations

import logging
import re

from edge import cgminer
from edge.collector.adapters.base import Adapter, AdapterError, UnsupportedCommand, derive_status, health_codes
from edge.collector.sample import (
    BAD_REPLY,
    CHAIN_FAILURE,
    FAN_FAILURE,
    OVERHEAT,
    POOL_DEAD,
    POWER_MODES,
    MinerSpec,
    Sample,
)

log = logging.getLogger("edge.collector.adapters.cgminer")

_HASHRATE_KEYS = (
    ("MHS 1m", 1e-6),
    ("MHS 5s", 1e-6),
    ("GHS 5s", 1e-3),
    ("THS 5s", 1.0),
    ("MHS av", 1e-6),
    ("GHS av", 1e-3),
    ("THS av", 1.0),
)
# Firmware error codes the collector recognises, and the code of its own each one means.
_FW_CODES = (
    (re.compile(r"fan.*fail|fan_?err|coolant|flow_low", re.IGNORECASE), FAN_FAILURE),
    (re.compile(r"chain.*(dead|fail|lost)|hashboard|board.*(dead|fail)", re.IGNORECASE), CHAIN_FAILURE),
    (re.compile(r"overheat|over_temp|temp.*(high|protect)", re.IGNORECASE), OVERHEAT),
)
SERIAL_MISMATCH = "serial_mismatch"
INVALID_COMMAND = 14  # cgminer's STATUS code for a command it does not know
_FAN = re.compile(r"^fan(\d+)$", re.IGNORECASE)
_CHIP_TEMP = re.compile(r"^(temp_chip\d*|temp2_\d+|chip_temp_max\d*)$", re.IGNORECASE)
_PCB_TEMP = re.compile(r"^temp_pcb(\d+)$", re.IGNORECASE)
_CHAIN_RATE = re.compile(r"^chain_rate(\d+)$", re.IGNORECASE)
_BRACKETS = re.compile(r"(\w+)\[([^\]]*)\]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _num(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _NUMBER.search(value)
        return float(match.group()) if match else None
    return None


def _nums(value) -> list[float]:
    """Every number in a reading: 62, "62", "62-60-75-73", "62 60 75"; positive readings only for strings."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, str):
        return [float(v) for v in re.findall(r"\d+(?:\.\d+)?", value)]
    return []


def _merged(sections: list[dict]) -> dict:
    out: dict = {}
    for part in sections:
        out.update(part)
    return out


def _avalon_fields(stats: dict) -> dict[str, list[float]]:
    """Avalon packs its readings into "MM ID0" strings of key[value] pairs."""
    out: dict[str, list[float]] = {}
    for key, value in stats.items():
        if key.startswith("MM ID") and isinstance(value, str):
            for name, raw in _BRACKETS.findall(value):
                out.setdefault(name, []).extend(_nums(raw))
    return out


def map_reply(
    serial: str, ts: str, summary: dict, stats: dict, pools: list[dict], *, overheat_c: float = 95.0
) -> Sample:
    """A Sample from one miner's merged SUMMARY, merged STATS and POOLS list (pure; tested on canned replies)."""
    avalon = _avalon_fields(stats)

    hashrate = None
    for source in (summary, stats):
        for key, factor in _HASHRATE_KEYS:
            value = _num(source.get(key))
            if value is not None:
                hashrate = round(value * factor, 4)
                break
        if hashrate is not None:
            break

    chip_temps = [t for key, value in stats.items() if _CHIP_TEMP.match(key) for t in _nums(value)]
    chip_temps += _nums(summary.get("Chip Temp Max")) + avalon.get("TMax", [])
    chip_temps = [t for t in chip_temps if 0 < t < 200]  # 0 is "no sensor" in bmminer
    if not chip_temps:  # older firmware: board temperatures only
        chip_temps = [t for key in ("temp_max", "Temperature") for t in _nums(stats.get(key, summary.get(key)))]
        chip_temps = [t for t in chip_temps if 0 < t < 200]
    temp_chip_max = max(chip_temps) if chip_temps else None

    inlet = _num(stats.get("temp_inlet", summary.get("temp_inlet")))
    outlet = _num(stats.get("temp_outlet", summary.get("temp_outlet")))
    if inlet is None:
        inlet = _num(summary.get("Env Temp"))
    if inlet is None and avalon.get("Temp"):
        inlet = avalon["Temp"][0]
    pcb = [_nums(value) for key, value in sorted(stats.items()) if _PCB_TEMP.match(key)]
    pcb = [p for p in pcb if p and any(t > 0 for t in p)]
    if pcb and (inlet is None or outlet is None):
        half = [len(p) // 2 or 1 for p in pcb]
        inlet_side = [t for p, h in zip(pcb, half, strict=True) for t in p[:h] if t > 0]
        outlet_side = [t for p, h in zip(pcb, half, strict=True) for t in p[h:] if t > 0]
        if inlet is None and inlet_side:
            inlet = min(inlet_side)
        if outlet is None and outlet_side:
            outlet = max(outlet_side)

    fan_keys = sorted(((int(m.group(1)), value) for key, value in stats.items() if (m := _FAN.match(key))))
    expected_fans = int(_num(stats.get("fan_num")) or 0) or None
    fans = [int(_num(value) or 0) for _, value in fan_keys]
    if expected_fans is not None and len(fans) > expected_fans:
        # bmminer lists every fan slot (fan1..fan8) and says in fan_num how many are fitted: keep the spinning ones
        spinning = [rpm for rpm in fans if rpm > 0]
        fans = spinning + [0] * max(0, expected_fans - len(spinning))
    if not fans:
        fans = [int(v) for key in ("Fan Speed In", "Fan Speed Out") if (v := _num(summary.get(key))) is not None]
    if not fans:
        fans = [int(v) for name, values in sorted(avalon.items()) if re.fullmatch(r"Fan\d+", name) for v in values]

    power = None
    for source in (summary, stats):
        for key in ("Power", "power", "power_w", "chain_power", "Power Realtime"):
            power = _num(source.get(key))
            if power is not None:
                break
        if power is not None:
            break
    if power is None and avalon.get("WALLPOWER"):
        power = avalon["WALLPOWER"][0]

    chain_rates = [_num(value) for key, value in sorted(stats.items()) if _CHAIN_RATE.match(key)]
    chain_rates = [r for r in chain_rates if r is not None] if chain_rates else []

    accepted = _num(summary.get("Accepted"))
    rejected = _num(summary.get("Rejected"))
    if accepted is None and pools:
        accepted = sum(_num(p.get("Accepted")) or 0 for p in pools)
        rejected = sum(_num(p.get("Rejected")) or 0 for p in pools)

    firmware = _firmware_errors(summary, stats)
    errors = [f"fw:{code}" for code in firmware]
    errors += [own for code in firmware for pattern, own in _FW_CODES if pattern.search(code)]
    errors += health_codes(
        fans=fans,
        expected_fans=expected_fans,
        chain_rates=chain_rates,
        temp_chip_max_c=temp_chip_max,
        overheat_c=overheat_c,
    )
    if pools and not any(str(p.get("Status", "")).lower() == "alive" for p in pools):
        errors.append(POOL_DEAD)
    return Sample(
        **_settings(summary, stats, pools, avalon),
        miner=serial,
        ts=ts,
        status=derive_status(hashrate, errors, is_mining=summary.get("Mining") is not False),
        hashrate_ths=hashrate,
        temp_chip_max_c=temp_chip_max,
        temp_inlet_c=inlet,
        temp_outlet_c=outlet,
        fan_rpm=fans,
        power_w=power,
        accepted_shares=int(accepted) if accepted is not None else None,
        rejected_shares=int(rejected) if rejected is not None else None,
        errors=list(dict.fromkeys(errors)),
    )


def _active_pool(pools: list[dict]) -> dict | None:
    active = [p for p in pools if p.get("Stratum Active") is True]
    if active:
        return active[0]
    alive = [p for p in pools if str(p.get("Status", "")).lower() == "alive"] or pools
    ranked = sorted(alive, key=lambda p: _num(p.get("Priority")) if _num(p.get("Priority")) is not None else 1e9)
    return ranked[0] if ranked else None


def _whole(value) -> int | None:
    number = _num(value)
    return round(number) if number is not None else None


def _settings(summary: dict, stats: dict, pools: list[dict], avalon: dict[str, list[float]]) -> dict:
    """The miner's settings the firmware reports (None where it does not): see the module docstring."""
    pool = _active_pool(pools)
    url = pool.get("URL") if pool else None
    worker = pool.get("User") if pool else None
    fan_pct = _whole(stats.get("Fan Percent"))
    if fan_pct is None and avalon.get("FanR"):
        fan_pct = round(avalon["FanR"][0])
    fan_mode = str(stats.get("Fan Mode", "")).lower() or None
    mode = str(summary.get("Power Mode", "")).lower() or None
    limit = _whole(summary.get("Power Limit"))
    target = _whole(summary.get("Power Target"))
    return {
        "pool_url": url if isinstance(url, str) and url else None,
        "pool_worker": worker if isinstance(worker, str) and worker else None,
        "fan_pct": fan_pct if fan_pct is not None and 0 <= fan_pct <= 100 else None,
        "fan_mode": fan_mode if fan_mode in ("auto", "manual") else None,
        "power_mode": mode if mode in POWER_MODES else None,
        "power_limit_w": limit if limit and limit > 0 else None,
        "power_target_w": target if target and target > 0 else None,
    }


def _firmware_errors(summary: dict, stats: dict) -> list[str]:
    codes: list[str] = []
    for source in (stats, summary):
        for key in ("errors", "Errors", "error_codes"):
            value = source.get(key)
            if isinstance(value, list):
                codes += [str(v.get("code", v) if isinstance(v, dict) else v) for v in value]
            elif isinstance(value, str) and value:
                codes += [c.strip() for c in value.split(",") if c.strip()]
        for key, value in source.items():  # Whatsminer: "Error Code 0": "110", ...
            if key.startswith("Error Code ") and key != "Error Code Count" and value not in (None, ""):
                codes.append(str(value))
    return [c for c in dict.fromkeys(codes) if c]


class CGMinerAdapter(Adapter):
    name = "cgminer"

    def __init__(self, *, timeout: float = 5.0, overheat_c: float = 95.0):
        self.timeout = timeout
        self.overheat_c = overheat_c
        self._separate: set[tuple[str, int]] = set()  # miners whose firmware refuses "summary+stats+pools"
        self._mismatch_logged: set[tuple[str, int]] = set()

    async def _read(self, miner: MinerSpec) -> tuple[dict, dict, list[dict]]:
        key = (miner.host, miner.port)
        if key not in self._separate:
            reply = await cgminer.query(miner.host, miner.port, "summary+stats+pools", self.timeout)
            if not cgminer.is_error(reply) and "summary" in reply:
                parts = {name: (reply.get(name) or [{}])[0] for name in ("summary", "stats", "pools")}
                return (
                    _merged(cgminer.section(parts["summary"], "SUMMARY")),
                    _merged(cgminer.section(parts["stats"], "STATS")),
                    cgminer.section(parts["pools"], "POOLS"),
                )
            self._separate.add(key)
        replies = {}
        for command in ("summary", "stats", "pools"):
            replies[command] = await cgminer.query(miner.host, miner.port, command, self.timeout)
        cgminer.raise_for_status(replies["summary"])
        return (
            _merged(cgminer.section(replies["summary"], "SUMMARY")),
            _merged(cgminer.section(replies["stats"], "STATS")),
            cgminer.section(replies["pools"], "POOLS"),
        )

    async def poll(self, miner: MinerSpec, *, ts: str) -> Sample:
        try:
            summary, stats, pools = await self._read(miner)
        except cgminer.CGMinerUnavailable:
            return Sample.offline(miner.serial, ts)
        except cgminer.CGMinerError as exc:
            log.warning("%s (%s:%s): unreadable answer: %s", miner.serial, miner.host, miner.port, exc)
            return Sample(miner=miner.serial, ts=ts, status="error", errors=[BAD_REPLY])
        if not summary:
            return Sample(miner=miner.serial, ts=ts, status="error", errors=[BAD_REPLY])
        reported = stats.get("SN")
        if isinstance(reported, str) and reported and reported != miner.serial:
            if (miner.host, miner.port) not in self._mismatch_logged:
                self._mismatch_logged.add((miner.host, miner.port))
                log.warning(
                    "%s:%s answers as %s, not %s: readings not used (check the port mapping)",
                    miner.host, miner.port, reported, miner.serial,
                )  # fmt: skip
            return Sample(miner=miner.serial, ts=ts, status="error", errors=[SERIAL_MISMATCH])
        return map_reply(miner.serial, ts, summary, stats, pools, overheat_c=self.overheat_c)

    # --- commands (issue 8): what the CGMiner API itself can do ---------------------------------------------
    #
    # The simulator's write commands come first (restart, hashing_disable/enable, set_fan, set_pool, power_mode,
    # see edge/simulator/api.py); a stock cgminer answers them "Invalid command" (code 14), and then the stock
    # equivalents are used where there are any (ascdisable/ascenable per device, addpool + switchpool). Fan and
    # power control have no stock equivalent: UnsupportedCommand on such firmware (use the pyasic adapter).

    async def _command(self, miner: MinerSpec, command: str, parameter: str | None = None) -> dict:
        try:
            return await cgminer.query(miner.host, miner.port, command, self.timeout, parameter=parameter)
        except cgminer.CGMinerError as exc:
            raise AdapterError(f"{miner.serial}: {command} failed: {exc}") from exc

    @staticmethod
    def _checked(miner: MinerSpec, command: str, reply: dict) -> dict:
        try:
            return cgminer.raise_for_status(reply)
        except cgminer.CGMinerCommandError as exc:
            raise AdapterError(f"{miner.serial}: {command} refused: {exc}") from exc

    @staticmethod
    def _invalid_command(reply: dict) -> bool:
        return any(
            s.get("STATUS") in ("E", "F") and int(s.get("Code") or 0) == INVALID_COMMAND
            for s in reply.get("STATUS") or []
            if isinstance(s, dict)
        )

    async def execute(self, miner: MinerSpec, command: str, params: dict) -> dict:
        params = params or {}
        if command == "MINER_RESTART":
            return self._checked(miner, "restart", await self._command(miner, "restart"))
        if command in ("HASHING_DISABLE", "HASHING_ENABLE", "CURTAIL"):
            verb = "hashing_enable" if command == "HASHING_ENABLE" else "hashing_disable"
            reply = await self._command(miner, verb)
            if not self._invalid_command(reply):
                return self._checked(miner, verb, reply)
            stock = "ascenable" if command == "HASHING_ENABLE" else "ascdisable"
            devs = cgminer.section(self._checked(miner, "devs", await self._command(miner, "devs")), "DEVS")
            ids = [d.get("ASC", d.get("ID", i)) for i, d in enumerate(devs)]
            return {stock: [self._checked(miner, stock, await self._command(miner, stock, str(i))) for i in ids]}
        if command == "POOL_SET":
            url, user = params.get("url"), params.get("user")
            if not isinstance(url, str) or not url or not isinstance(user, str) or not user:
                raise AdapterError("POOL_SET needs params url and user")
            password = str(params.get("password", "x"))
            if any("," in v for v in (url, user, password)):
                raise AdapterError("POOL_SET: the CGMiner API cannot carry commas in url, user or password")
            reply = await self._command(miner, "set_pool", f"{url},{user},{password}")
            if not self._invalid_command(reply):
                return self._checked(miner, "set_pool", reply)
            added = self._checked(miner, "addpool", await self._command(miner, "addpool", f"{url},{user},{password}"))
            pools = cgminer.section(self._checked(miner, "pools", await self._command(miner, "pools")), "POOLS")
            index = max((int(p.get("POOL", 0)) for p in pools), default=0)
            switched = self._checked(miner, "switchpool", await self._command(miner, "switchpool", str(index)))
            return {"addpool": added, "switchpool": switched, "pool": index}
        if command == "SET_FAN":
            speed = params.get("speed_pct", "auto")
            if speed != "auto" and (isinstance(speed, bool) or not isinstance(speed, int) or not 0 <= speed <= 100):
                raise AdapterError('SET_FAN needs params speed_pct: 0–100 or "auto"')
            return self._stock_unsupported(miner, command, "set_fan", await self._command(miner, "set_fan", str(speed)))
        if command == "POWER_MODE":
            mode = params.get("mode")
            if mode not in ("low", "normal", "high"):
                raise AdapterError("POWER_MODE needs params mode: low, normal or high")
            return self._stock_unsupported(miner, command, "power_mode", await self._command(miner, "power_mode", mode))
        raise UnsupportedCommand(f"unknown command {command!r}")

    async def set_power_target(self, miner: MinerSpec, watts: int) -> dict:
        if isinstance(watts, bool) or not isinstance(watts, int) or watts <= 0:
            raise AdapterError("a power target is a whole number of watts above 0")
        reply = await self._command(miner, "power_target", str(watts))
        return self._stock_unsupported(miner, "power target", "power_target", reply)

    async def clear_power_target(self, miner: MinerSpec, *, mode: str | None = None) -> dict:
        reply = await self._command(miner, "power_target", "0")
        return self._stock_unsupported(miner, "power target", "power_target", reply)

    def _stock_unsupported(self, miner: MinerSpec, command: str, verb: str, reply: dict) -> dict:
        if self._invalid_command(reply):
            raise UnsupportedCommand(f"{command}: this firmware's CGMiner API has no {verb}; use the pyasic adapter")
        return self._checked(miner, verb, reply)
