"""Real miners through pyasic (the field's maintained ASIC library: Antminer stock/VNish/BraiinsOS, Whatsminer,
Avalon, Goldshell...). pyasic picks the right protocol per miner from its address; the port in the config is
not used (pyasic talks to the vendor's standard ports).

Settings (for a command's before_state, its rollback and a CURTAIL's restore) come from pyasic's own data: the
active pool's ``PoolMetrics.url``/``user``; ``MinerData.config`` (``MinerConfig``: ``fan_mode`` FanModeNormal →
automatic fans, FanModeManual(speed) → a fixed duty; ``mining_mode`` MiningModeLPM/Normal/HPM → low/normal/high,
MiningModePowerTune(power) → a power target) and ``MinerData.wattage_limit``. The power target is pyasic's
``set_power_limit(watts)`` (``supports_power_modes`` or ``supports_autotuning`` says where the firmware has one);
clearing it sends the previous power mode back in the config.

pyasic is imported on first use, so the CGMiner path (and the simulator) never needs it installed."""

from __future__ import annotations

import asyncio
import logging

from edge.collector.adapters.base import Adapter, AdapterError, UnsupportedCommand, derive_status, health_codes
from edge.collector.sample import OVERHEAT, POOL_DEAD, MinerSpec, Sample

log = logging.getLogger("edge.collector.adapters.pyasic")

_INCLUDE = (
    "hashrate", "hashboards", "env_temp", "wattage", "wattage_limit", "fans", "errors", "is_mining", "pools", "config",
)  # fmt: skip
_MODES = {"MiningModeLPM": "low", "MiningModeNormal": "normal", "MiningModeHPM": "high"}


def _import_pyasic():
    try:
        import pyasic
    except ImportError as exc:  # pragma: no cover (installed in the project's venv)
        raise AdapterError(
            "the pyasic adapter needs the pyasic package: pip install -r requirements.txt (or `pip install pyasic`)"
        ) from exc
    return pyasic


def _ths(rate) -> float | None:
    """pyasic's AlgoHashRate (a rate in some unit, int(unit) = hashes per second of one unit) → TH/s."""
    if rate is None:
        return None
    try:
        return round(float(rate.rate) * int(rate.unit) / 1e12, 4)
    except (AttributeError, TypeError, ValueError):
        return float(rate)


def _settings(data, pools: list) -> dict:
    """Pool, fan and power settings from a MinerData (None where pyasic does not know them)."""
    active = next((p for p in pools if p.active), None) or next((p for p in pools if p.alive), None)
    url = str(active.url) if active is not None and active.url is not None else None
    config = getattr(data, "config", None)
    fan = getattr(config, "fan_mode", None) if config is not None else None
    mining = getattr(config, "mining_mode", None) if config is not None else None
    fan_kind = type(fan).__name__
    fan_pct = int(fan.speed) if fan_kind == "FanModeManual" and fan.speed is not None else None
    target = getattr(mining, "power", None) if type(mining).__name__ == "MiningModePowerTune" else None
    try:
        limit = data.wattage_limit
    except Exception:  # a computed property: a half-filled MinerData must not fail the poll
        limit = None
    return {
        "pool_url": url,
        "pool_worker": active.user if active is not None and active.user else None,
        "fan_pct": fan_pct if fan_pct is not None and 0 <= fan_pct <= 100 else None,
        "fan_mode": {"FanModeNormal": "auto", "FanModeManual": "manual"}.get(fan_kind),
        "power_mode": _MODES.get(type(mining).__name__),
        "power_limit_w": int(limit) if limit else None,
        "power_target_w": int(target) if target else None,
    }


def map_data(serial: str, ts: str, data, *, overheat_c: float = 95.0) -> Sample:
    """A Sample from a pyasic MinerData (pure; tested on a MinerData built in the test)."""
    boards = list(getattr(data, "hashboards", None) or [])
    chip = [float(t) for b in boards for t in (b.chip_temp if b.chip_temp is not None else b.temp,) if t]
    inlet = [float(b.inlet_temp) for b in boards if b.inlet_temp is not None]
    outlet = [float(b.outlet_temp) for b in boards if b.outlet_temp is not None]
    env = getattr(data, "env_temp", None)
    fans = [int(f.speed) for f in (data.fans or []) if f.speed is not None]
    pools = list(getattr(data, "pools", None) or [])
    hashrate = _ths(data.hashrate)
    chain_rates = [_ths(b.hashrate) if not b.missing else None for b in boards]
    temp_chip_max = max(chip) if chip else None

    errors = [f"fw:{e.error_code}" for e in (data.errors or []) if getattr(e, "error_code", None)]
    errors += health_codes(
        fans=fans,
        expected_fans=getattr(data, "expected_fans", None),
        chain_rates=chain_rates,
        temp_chip_max_c=temp_chip_max,
        overheat_c=overheat_c,
    )
    if any("overheat" in str(getattr(e, "error_message", "")).lower() for e in data.errors or []):
        errors.append(OVERHEAT)
    if pools and not any(p.alive or p.active for p in pools):
        errors.append(POOL_DEAD)
    accepted = [p.accepted for p in pools if p.accepted is not None]
    rejected = [p.rejected for p in pools if p.rejected is not None]
    return Sample(
        miner=serial,
        ts=ts,
        status=derive_status(hashrate, errors, is_mining=bool(data.is_mining)),
        hashrate_ths=hashrate,
        temp_chip_max_c=temp_chip_max,
        temp_inlet_c=float(env) if env is not None else (min(inlet) if inlet else None),
        temp_outlet_c=max(outlet) if outlet else None,
        fan_rpm=fans,
        power_w=float(data.wattage) if data.wattage else None,
        accepted_shares=sum(accepted) if accepted else None,
        rejected_shares=sum(rejected) if rejected else None,
        errors=list(dict.fromkeys(errors)),
        **_settings(data, pools),
    )


class PyasicAdapter(Adapter):
    name = "pyasic"

    def __init__(self, *, timeout: float = 10.0, overheat_c: float = 95.0):
        self.timeout = timeout
        self.overheat_c = overheat_c
        self._miners: dict[str, object] = {}  # host -> pyasic miner object (identification is costly)
        self._pyasic = _import_pyasic()

    async def _miner(self, spec: MinerSpec):
        found = self._miners.get(spec.host)
        if found is None:
            found = await self._pyasic.get_miner(spec.host)
            if found is not None:
                self._miners[spec.host] = found
        return found

    async def poll(self, miner: MinerSpec, *, ts: str) -> Sample:
        try:
            device = await asyncio.wait_for(self._miner(miner), self.timeout)
            if device is None:
                return Sample.offline(miner.serial, ts)
            data = await asyncio.wait_for(device.get_data(include=list(_INCLUDE)), self.timeout)
        except (TimeoutError, OSError):
            self._miners.pop(miner.host, None)  # identify it again next time (it may have been replaced)
            return Sample.offline(miner.serial, ts)
        except Exception as exc:  # pyasic raises its own APIError and others per vendor
            log.warning("%s (%s): pyasic could not read it: %s", miner.serial, miner.host, exc)
            self._miners.pop(miner.host, None)
            return Sample.offline(miner.serial, ts)
        return map_data(miner.serial, ts, data, overheat_c=self.overheat_c)

    async def _device(self, miner: MinerSpec):
        device = await self._miner(miner)
        if device is None:
            raise AdapterError(f"{miner.serial}: no miner answers at {miner.host}")
        return device

    async def set_power_target(self, miner: MinerSpec, watts: int) -> dict:
        if isinstance(watts, bool) or not isinstance(watts, int) or watts <= 0:
            raise AdapterError("a power target is a whole number of watts above 0")
        device = await self._device(miner)
        if not (getattr(device, "supports_power_modes", False) or getattr(device, "supports_autotuning", False)):
            raise UnsupportedCommand(f"{miner.serial}: pyasic has no power limit for this miner's firmware")
        try:
            ok = await device.set_power_limit(watts)
        except Exception as exc:
            raise AdapterError(f"{miner.serial}: power target failed: {exc}") from exc
        if ok is False:
            raise AdapterError(f"{miner.serial}: the miner refused a power limit of {watts} W")
        return {"ok": True}

    async def clear_power_target(self, miner: MinerSpec, *, mode: str | None = None) -> dict:
        device = await self._device(miner)
        try:
            from pyasic.config.mining import MiningModeConfig

            config = await device.get_config()
            config.mining_mode = getattr(MiningModeConfig, mode if mode in ("low", "normal", "high") else "normal")()
            await device.send_config(config)
        except Exception as exc:
            raise AdapterError(f"{miner.serial}: clearing the power target failed: {exc}") from exc
        return {"ok": True}

    async def execute(self, miner: MinerSpec, command: str, params: dict) -> dict:
        params = params or {}
        device = await self._miner(miner)
        if device is None:
            raise AdapterError(f"{miner.serial}: no miner answers at {miner.host}")
        try:
            if command == "MINER_RESTART":
                ok = await device.reboot()
            elif command in ("HASHING_DISABLE", "CURTAIL"):
                ok = await device.stop_mining()
            elif command == "HASHING_ENABLE":
                ok = await device.resume_mining()
            elif command == "POWER_MODE":
                watts, mode = params.get("power_w"), params.get("mode")
                if isinstance(watts, int | float) and not isinstance(watts, bool) and watts > 0:
                    ok = await device.set_power_limit(int(watts))
                elif mode in ("low", "normal", "high"):
                    from pyasic.config.mining import MiningModeConfig

                    config = await device.get_config()
                    config.mining_mode = getattr(MiningModeConfig, mode)()
                    await device.send_config(config)
                    ok = True
                else:
                    raise AdapterError("POWER_MODE needs params power_w (watts) or mode (low, normal, high)")
            elif command == "SET_FAN":
                speed = params.get("speed_pct")
                if speed != "auto" and (isinstance(speed, bool) or not isinstance(speed, int) or not 0 <= speed <= 100):
                    raise AdapterError('SET_FAN needs params speed_pct: 0–100 or "auto"')
                from pyasic.config.fans import FanModeManual, FanModeNormal

                config = await device.get_config()
                config.fan_mode = FanModeNormal() if speed == "auto" else FanModeManual(speed=speed)
                await device.send_config(config)
                ok = True
            elif command == "POOL_SET":
                from pyasic.config.pools import PoolConfig

                url, user = params.get("url"), params.get("user")
                if not url or not user:
                    raise AdapterError("POOL_SET needs params url and user")
                config = await device.get_config()
                config.pools = PoolConfig.simple([{"url": url, "user": user, "password": params.get("password", "x")}])
                await device.send_config(config)
                ok = True
            else:
                raise UnsupportedCommand(f"unknown command {command!r}")
        except (AdapterError, UnsupportedCommand):
            raise
        except Exception as exc:
            raise AdapterError(f"{miner.serial}: {command} failed: {exc}") from exc
        if ok is False:
            raise AdapterError(f"{miner.serial}: the miner refused {command}")
        return {"ok": True}
