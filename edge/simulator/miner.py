"""One simulated miner: its settings, its counters, and what its sensors read at a given (simulated) time.

Model, in short (all values per model from the catalog profile):
- hashrate: nominal TH/s × power-mode factor, split over the chains, each with a static ±2 % bias and ~1.5 %
  noise (about 1 % on the total); 0 on a dead chain, when hashing is disabled, after an overheat shutdown, or
  while the miner is down (offline, rebooting);
- power: nominal W × power-mode factor × share of live chains, plus ~3 % for controller and fans, ~0.8 % noise;
  a soft power target (``power_target_w``) caps it: the chains are underclocked until the miner draws the target,
  hashrate falling as power^0.8 (efficiency improves a little), chips cooler accordingly;
- inlet temperature: a daily sinusoid by local hour (coldest 03:00, warmest 15:00; air 24 ± 6 °C, hydro coolant
  32 ± 2 °C, immersion fluid 38 ± 1.5 °C) plus a per-miner offset; chips = inlet + a load-dependent rise (air
  44 °C, hydro 30 °C, immersion 26 °C at nominal power); PCB and outlet temperatures follow;
- fans (air units): duty 30–100 % following the hottest chip; a fixed duty set by the operator that is below what
  the temperature needs makes the chips hotter;
- shares: one share per 65,536 × 2^32 hashes (pool difficulty 65,536), ~0.3 % rejected; hardware errors at a low
  rate; counters and Elapsed restart from zero at every boot;
- faults: see faults.py.
Noise is a deterministic function of (miner, channel, 5-second bucket), so two reads in the same 5 s agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge.simulator.catalog import Profile
from edge.simulator.faults import Fault

POWER_MODES = {"low": (0.80, 0.70), "normal": (1.0, 1.0), "high": (1.10, 1.22)}  # (hashrate, power) factors
# Soft power target: the lowest the firmware accepts (share of nominal W), and how hashrate follows the power cut
# (hashrate ∝ power^0.8: an underclocked chip runs at a lower voltage, so J/TH improves a little).
POWER_TARGET_MIN_FRACTION = 0.4
POWER_TARGET_MAX_W = 100_000
POWER_TARGET_HASHRATE_EXPONENT = 0.8
INLET_C = {"air": (24.0, 6.0), "hydro": (32.0, 2.0), "immersion": (38.0, 1.5)}  # daily mean, amplitude
CHIP_RISE_C = {"air": 44.0, "hydro": 30.0, "immersion": 26.0}  # chip above inlet at nominal power
POOL_DIFFICULTY = 65536
SHARES_PER_THS_S = 1e12 / (POOL_DIFFICULTY * 2**32)  # ≈ 0.00355 shares/s per TH/s
IDLE_POWER_FRACTION = 0.03
BASE_REJECT_FRACTION = 0.003
HW_ERRORS_PER_CHAIN_S = 0.002  # ~170 a day per chain
INTEGRATION_STEP_S = 60.0
MAX_INTEGRATION_STEPS = 48
DEFAULT_POOLS = (
    "stratum+tcp://btc.pool.example:3333",
    "stratum+tcp://btc-backup.pool.example:443",
    "stratum+tcp://btc-backup2.pool.example:25",
)

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a cheap, well-spread integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def noise(seed: int, channel: int, t: float, sigma: float, bucket_s: float = 5.0) -> float:
    """A standard normal × sigma, fixed for (seed, channel, bucket of t) (Box–Muller on two hashed uniforms)."""
    h = _mix(seed * 1_000_003 + channel * 7_919 + int(t // bucket_s))
    u1 = ((h >> 11) + 1) / 2**53
    u2 = (_mix(h) >> 11) / 2**53
    return sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


@dataclass
class Reading:
    """What the miner's firmware would report at time ``t`` (plus the truth the simulator knows)."""

    t: float
    reachable: bool
    down_mode: str | None  # None, "refuse" or "silent"
    mining: bool  # hashing enabled by the operator on at least one chain
    chain_enabled: list[bool]
    status: str  # hashing | idle | offline | error
    errors: list[str]
    chain_ths: list[float]
    chain_alive: list[bool]
    chip_c: list[float]  # hottest chip per chain
    pcb_c: list[float]
    inlet_c: float
    outlet_c: float
    fan_pct: int
    fan_rpm: list[int]
    power_w: float
    elapsed_s: int
    accepted: int
    rejected: int
    hw_errors: int
    chain_accepted: list[int]
    chain_hw: list[int]
    av_ths: float
    window_ths: dict[int, float]  # 60/300/900 s → TH/s ("MHS 1m/5m/15m")
    reject_pct: float
    power_mode: str
    power_target_w: int | None = None  # the soft power target in force (None: none)
    power_limit_w: int = 0  # the limit the firmware applies: the target, else the model's maximum
    fan_auto: bool = True  # fans under automatic control (no fixed duty set)
    faults: list[str] = field(default_factory=list)

    @property
    def hashrate_ths(self) -> float:
        return sum(self.chain_ths)

    @property
    def chip_max_c(self) -> float:
        return max(self.chip_c)


class SimMiner:
    def __init__(
        self,
        index: int,
        serial: str,
        port: int,
        profile: Profile,
        *,
        seed: int,
        t0: float,
        utc_offset_h: float = 0.0,
        uptime_s: float | None = None,
        restart_s: float = 15.0,
    ):
        self.index, self.serial, self.port, self.profile = index, serial, port, profile
        self.seed = seed
        self.utc_offset_h = utc_offset_h
        self.restart_s = restart_s
        self.inlet_offset_c = (_mix(seed) % 3000) / 1000 - 1.5  # ±1.5 °C: where it stands in the hall
        self.chain_bias = [((_mix(seed + 17 * (c + 1)) % 4000) / 100_000) - 0.02 for c in range(profile.chains)]
        self.mac = "02:48:49:" + ":".join(f"{(_mix(seed + 99) >> (8 * i)) & 0xFF:02x}" for i in range(3))
        self.faults: list[Fault] = []
        self.inventory_status = "active"  # the server's asset status when impersonating an inventory
        # settings (survive reboots, as on the real firmware)
        self.chain_enabled = [True] * profile.chains  # hashing enabled per chain (ascenable/ascdisable)
        self.fan_override_pct: int | None = None
        self.power_mode = "normal"
        self.power_target_w: int | None = None  # soft power cap (the "power_target" write command)
        self.pools = [{"url": url, "user": f"hashinsight.{serial.lower()}", "password": "x"} for url in DEFAULT_POOLS]
        self.active_pool = 0
        self.restarts: list[tuple[float, float]] = []  # (requested at, boots at)
        # counters since the last boot
        if uptime_s is None:
            uptime_s = 3600 + _mix(seed + 5) % (9 * 86400)
        self._boot = t0 - uptime_s
        rate = profile.nominal_ths * SHARES_PER_THS_S
        self._acc = rate * uptime_s * (1 - BASE_REJECT_FRACTION)
        self._rej = rate * uptime_s * BASE_REJECT_FRACTION
        self._hw = HW_ERRORS_PER_CHAIN_S * profile.chains * uptime_s
        self._hash_ths_s = profile.nominal_ths * uptime_s
        self._chain_acc = [self._acc / profile.chains] * profile.chains
        self._chain_hw = [self._hw / profile.chains] * profile.chains
        self._pool_base = (0.0, 0.0)
        self._last = t0

    # --- settings (the write commands) ------------------------------------------------------------------------

    def restart(self, t: float) -> None:
        self.advance(t)
        self.restarts.append((t, t + self.restart_s))

    @property
    def mining(self) -> bool:
        return any(self.chain_enabled)

    def set_mining(self, t: float, enabled: bool, chain: int | None = None) -> None:
        self.advance(t)
        for c in range(self.profile.chains) if chain is None else [chain]:
            self.chain_enabled[c] = enabled

    @property
    def power_target_min_w(self) -> int:
        return math.ceil(self.profile.nominal_w * POWER_TARGET_MIN_FRACTION)

    @property
    def default_power_limit_w(self) -> int:
        """The firmware's own limit when no target is set (what the high power mode may draw)."""
        return round(self.profile.nominal_w * POWER_MODES["high"][1])

    def set_power_target(self, t: float, watts: int | None) -> None:
        """Cap the power at ``watts`` (None clears the cap). The caller checks the floor."""
        self.advance(t)
        self.power_target_w = watts

    def set_pool(self, t: float, url: str, user: str, password: str = "x") -> None:  # noqa: S107
        """Replace pool 0 and make it the active one."""
        self.advance(t)
        self.pools[0] = {"url": url, "user": user, "password": password}
        self.switch_pool(t, 0)

    def add_pool(self, t: float, url: str, user: str, password: str = "x") -> int:  # noqa: S107
        self.pools.append({"url": url, "user": user, "password": password})
        return len(self.pools) - 1

    def switch_pool(self, t: float, index: int) -> None:
        self.advance(t)
        self.active_pool = index
        self._pool_base = (self._acc, self._rej)

    # --- time ---------------------------------------------------------------------------------------------------

    def inlet_c(self, t: float, *, with_noise: bool = True) -> float:
        mean, amplitude = INLET_C.get(self.profile.cooling, INLET_C["air"])
        local_hour = (t / 3600 + self.utc_offset_h) % 24
        cycle = amplitude * math.sin(2 * math.pi * (local_hour - 9) / 24)
        return mean + cycle + self.inlet_offset_c + (noise(self.seed, 1, t, 0.3, 60) if with_noise else 0.0)

    def down_mode(self, t: float) -> str | None:
        """None when the miner answers at t; "refuse" or "silent" when it does not."""
        return self._boot_state(t)[0]

    def _boot_state(self, t: float) -> tuple[str | None, float]:
        """(down mode or None, time of the last boot at or before t)."""
        down, last_boot = None, self._boot
        for requested, boots in self.restarts:
            if requested <= t < boots:
                down = "refuse"
            elif boots <= t:
                last_boot = max(last_boot, boots)
        for f in self.faults:
            if f.start > t:
                continue
            if f.kind == "offline":
                if t < f.end:
                    down = f.params["mode"]
                else:
                    last_boot = max(last_boot, f.end)
            elif f.kind == "overheat" and t >= f.end:
                last_boot = max(last_boot, f.end)
            elif f.kind == "reboot_loop":
                period, boot_s = f.params["period_s"], f.params["boot_s"]
                k = math.floor((t - f.start) / period) if t < f.end else math.ceil((f.end - f.start) / period) - 1
                cycle = f.start + k * period
                up_at = min(cycle + boot_s, f.end)
                if t < up_at:
                    down = "refuse"
                    if k > 0:
                        last_boot = max(last_boot, cycle - period + boot_s)
                else:
                    last_boot = max(last_boot, up_at)
        return down, last_boot

    # --- the physics -------------------------------------------------------------------------------------------

    def _instant(self, t: float) -> Reading:
        p = self.profile
        n = p.chains
        down, last_boot = self._boot_state(t)
        active = [f for f in self.faults if f.active(t)]
        errors: list[str] = []
        alive = [True] * n
        failed_fans: set[int] = set()
        extra_c = 0.0
        reject = BASE_REJECT_FRACTION * (1 + noise(self.seed, 2, t, 0.3, 60))
        for f in active:
            if f.kind == "hashboard_failure":
                chain = f.params["chain"] % n
                alive[chain] = False
                errors.append(f"chain_{chain}_dead")
            elif f.kind == "fan_failure":
                extra_c += f.params["extra_c"]
                if p.fans:
                    fan = f.params["fan"] % p.fans
                    failed_fans.add(fan)
                    errors.append(f"fan_{fan}_failure")
                else:
                    errors.append("coolant_flow_low")
            elif f.kind == "pool_rejects":
                reject = f.params["reject_pct"] / 100
        hr_factor, pw_factor = POWER_MODES[self.power_mode]
        hashing = self.mining and down is None
        enabled = self.chain_enabled
        live_chains = sum(1 for c in range(n) if hashing and alive[c] and enabled[c])
        if self.power_target_w is not None and live_chains:
            # underclock until the draw meets the target: the hashing part of the power scales by `throttle`
            hashing_w = p.nominal_w * (1 - IDLE_POWER_FRACTION) * pw_factor * live_chains / n
            throttle = (self.power_target_w - p.nominal_w * IDLE_POWER_FRACTION) / hashing_w
            if throttle < 1:
                throttle = max(0.05, throttle)
                pw_factor *= throttle
                hr_factor *= throttle**POWER_TARGET_HASHRATE_EXPONENT
        inlet = self.inlet_c(t)
        rise = CHIP_RISE_C.get(p.cooling, CHIP_RISE_C["air"])

        chip = []
        for c in range(n):
            load = pw_factor if (hashing and alive[c] and enabled[c]) else 0.06
            chip.append(inlet + rise * load + extra_c + noise(self.seed, 10 + c, t, 0.8))
        # fans follow the hottest chip; a fixed duty below the need heats the chips up
        fan_pct = 0
        if p.fans:
            auto = max(30.0, min(100.0, 30 + (max(chip) - 60) * 3.5))
            fan_pct = round(auto)
            if failed_fans:
                fan_pct = 100
            elif self.fan_override_pct is not None:
                fan_pct = self.fan_override_pct
                if fan_pct < auto:
                    chip = [x + (auto - fan_pct) * 0.25 for x in chip]
        shutdown = False
        for f in active:
            if f.kind != "overheat" or not hashing:
                continue
            limit = f.params["limit_c"] or p.temp_limit_c
            rate = f.params["climb_c_per_min"] / 60
            # the climb starts from the noiseless chip temperature, so the shutdown time does not jitter
            hottest = self.inlet_c(t, with_noise=False) + rise * pw_factor + extra_c
            t_shutdown = f.start + max(0.0, limit + 0.5 - hottest) / rate
            if t < t_shutdown:
                chip = [x + rate * (t - f.start) for x in chip]
            else:
                shutdown = True
                cooled = inlet + (limit + 0.5 - inlet) * math.exp(-(t - t_shutdown) / 240)
                chip = [cooled + noise(self.seed, 20 + c, t, 0.3) for c in range(n)]
                errors.append("overheat_shutdown")
                if p.fans:
                    fan_pct = 100
        hashing_chains = [hashing and alive[c] and enabled[c] and not shutdown for c in range(n)]
        chain_ths = [
            (p.nominal_ths / n) * hr_factor * (1 + self.chain_bias[c] + noise(self.seed, 30 + c, t, 0.015))
            if hashing_chains[c]
            else 0.0
            for c in range(n)
        ]
        # cgminer's 1/5/15-minute figures: the same hashing chains with the noise averaged down (a state change
        # shows in them at once; the firmware's exponential decay is not modelled)
        steady = sum((p.nominal_ths / n) * hr_factor * (1 + self.chain_bias[c]) for c in range(n) if hashing_chains[c])
        window_ths = {
            w: steady * (1 + noise(self.seed, 50 + i, t, sigma, w)) if steady else 0.0
            for i, (w, sigma) in enumerate(((60, 0.004), (300, 0.002), (900, 0.001)))
        }
        if down:
            power = 0.0
        else:
            live = sum(hashing_chains) / n
            power = p.nominal_w * (IDLE_POWER_FRACTION + (1 - IDLE_POWER_FRACTION) * pw_factor * live)
            power *= 1 + noise(self.seed, 3, t, 0.008)
        power_ratio = power / p.nominal_w
        if p.cooling == "air":
            outlet = inlet + 0.5 * rise * power_ratio + noise(self.seed, 4, t, 0.4)
        else:
            outlet = inlet + 8.0 * power_ratio + noise(self.seed, 4, t, 0.2)
        pcb = [inlet + 0.7 * (x - inlet) for x in chip]
        fan_rpm = []
        for i in range(p.fans):
            rpm = (
                0
                if (down or i in failed_fans)
                else p.fan_max_rpm * fan_pct / 100 * (1 + noise(self.seed, 40 + i, t, 0.01))
            )
            fan_rpm.append(round(rpm))
        if down:
            status = "offline"
        elif shutdown or not any(alive):
            status = "error"
        elif not self.mining:
            status = "idle"
        else:
            status = "hashing"
        return Reading(
            t=t,
            reachable=down is None,
            down_mode=down,
            mining=self.mining,
            chain_enabled=list(enabled),
            status=status,
            errors=errors,
            chain_ths=chain_ths,
            chain_alive=alive,
            chip_c=chip,
            pcb_c=pcb,
            inlet_c=inlet,
            outlet_c=outlet,
            fan_pct=fan_pct,
            fan_rpm=fan_rpm,
            power_w=power,
            elapsed_s=max(0, int(t - last_boot)),
            accepted=0,
            rejected=0,
            hw_errors=0,
            chain_accepted=[0] * n,
            chain_hw=[0] * n,
            av_ths=0.0,
            window_ths=window_ths,
            reject_pct=reject * 100,
            power_mode=self.power_mode,
            power_target_w=self.power_target_w,
            power_limit_w=self.power_target_w if self.power_target_w is not None else self.default_power_limit_w,
            fan_auto=self.fan_override_pct is None,
            faults=sorted({f.kind for f in active}),
        )

    def advance(self, t: float) -> None:
        """Bring the counters up to time t (in steps of at most a minute, each at that step's rates)."""
        if t <= self._last:
            return
        start, span = self._last, t - self._last
        steps = min(MAX_INTEGRATION_STEPS, max(1, math.ceil(span / INTEGRATION_STEP_S)))
        for i in range(1, steps + 1):
            self._step(start + span * i / steps if i < steps else t)

    def _step(self, t: float) -> None:
        down, last_boot = self._boot_state(t)
        if last_boot > self._boot:  # it rebooted since: counters restart at the boot
            n = self.profile.chains
            self._boot = last_boot
            self._acc = self._rej = self._hw = self._hash_ths_s = 0.0
            self._chain_acc, self._chain_hw = [0.0] * n, [0.0] * n
            self._pool_base = (0.0, 0.0)
            self._last = max(self._last, last_boot)
        dt = t - self._last
        self._last = t
        if dt <= 0 or down:
            return
        r = self._instant(t)
        total = r.hashrate_ths
        shares = total * SHARES_PER_THS_S * dt
        reject = r.reject_pct / 100
        self._acc += shares * (1 - reject)
        self._rej += shares * reject
        self._hash_ths_s += total * dt
        for c, ths in enumerate(r.chain_ths):
            if ths > 0:
                self._chain_acc[c] += ths * SHARES_PER_THS_S * dt * (1 - reject)
                hw = HW_ERRORS_PER_CHAIN_S * dt * (20 if "overheat" in r.faults else 1)
                self._chain_hw[c] += hw
                self._hw += hw

    def reading(self, t: float) -> Reading:
        """The state at time t, counters included (advances the counters; t should not go backwards)."""
        self.advance(t)
        r = self._instant(t)
        r.accepted, r.rejected, r.hw_errors = int(self._acc), int(self._rej), int(self._hw)
        r.chain_accepted = [int(x) for x in self._chain_acc]
        r.chain_hw = [int(x) for x in self._chain_hw]
        r.av_ths = self._hash_ths_s / r.elapsed_s if r.elapsed_s > 0 else 0.0
        return r

    def pool_counters(self) -> tuple[int, int]:
        """(accepted, rejected) on the active pool since it was set (or since boot)."""
        return int(self._acc - self._pool_base[0]), int(self._rej - self._pool_base[1])
