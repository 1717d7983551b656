"""One telemetry sample, in the shape POST /api/edge/v1/telemetry/ingest takes, and the miners it comes from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

STATUSES = ("hashing", "idle", "offline", "error")
# The ingest endpoint's limits per sample (telemetry/ingest.py).
MAX_FANS, MAX_FAN_RPM = 16, 30_000
MAX_ERRORS, MAX_ERROR_CHARS = 32, 64
TEMP_RANGE_C = (-40.0, 150.0)
MAX_POOL_URL_CHARS = 255
POWER_MODES = ("low", "normal", "high")
# Read by the adapters but not sent with the sample (the ingest contract has no place for them): they go into a
# command's before_state (edge.collector.commands.before_state) and the CURTAIL restore.
SETTINGS_ONLY = ("pool_worker", "fan_mode", "power_limit_w", "power_target_w")
# Optional ingest keys: left out when unknown (the server then keeps the miner's last known value).
OPTIONAL_KEYS = ("pool_url", "fan_pct", "power_mode")

# Error codes the adapters write into ``Sample.errors`` (firmware codes pass through as "fw:<code>").
FAN_FAILURE = "fan_failure"  # a fan reports 0 rpm while the miner is reachable
CHAIN_FAILURE = "chain_failure"  # a hashboard (chain) reports no hashrate or no chips while others hash
OVERHEAT = "overheat"  # chip temperature at or above the configured limit, or the firmware says so
POOL_DEAD = "pool_dead"  # no pool alive
UNREACHABLE = "unreachable"  # no answer from the miner's API (status "offline")
BAD_REPLY = "bad_reply"  # the miner answered something the adapter cannot read


@dataclass(frozen=True)
class MinerSpec:
    """Where and how to poll one miner. ``serial`` is the server's identity for it."""

    serial: str
    host: str
    port: int
    adapter: str = "cgminer"
    model: str | None = None
    nominal_hashrate_ths: float | None = None
    nominal_power_w: float | None = None


def utc_iso(ts: datetime) -> str:
    """ISO-8601 UTC with a Z and whole seconds: samples of one poll share it, so a replay dedupes on miner+ts."""
    return ts.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sample:
    miner: str
    ts: str
    status: str = "offline"
    hashrate_ths: float | None = None
    temp_chip_max_c: float | None = None
    temp_inlet_c: float | None = None
    temp_outlet_c: float | None = None
    fan_rpm: list[int] = field(default_factory=list)
    power_w: float | None = None
    accepted_shares: int | None = None
    rejected_shares: int | None = None
    errors: list[str] = field(default_factory=list)
    # The miner's settings, where the adapter can read them (None: unknown).
    pool_url: str | None = None  # the active pool
    fan_pct: int | None = None  # the fan duty now, 0–100 (whether automatic or fixed)
    power_mode: str | None = None  # low | normal | high
    pool_worker: str | None = None  # the active pool's worker (user)
    fan_mode: str | None = None  # "auto" (firmware-controlled) or "manual" (a fixed duty)
    power_limit_w: int | None = None  # the power limit in force (a soft target, else the firmware's own)
    power_target_w: int | None = None  # a soft power target set by an operator; None: none (or unknown)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)} (got {self.status!r})")

    @classmethod
    def offline(cls, miner: str, ts: str, error: str = UNREACHABLE) -> Sample:
        return cls(miner=miner, ts=ts, status="offline", errors=[error])

    def to_json(self) -> dict:
        """The ingest body's sample, kept inside the server's limits so one odd reading cannot get the whole
        sample rejected: at most 16 fans of 0–30,000 rpm, 32 error codes of 64 characters, no negative
        hashrate or power, temperatures within -40–150 °C (a sensor reading outside is dropped, not clamped).
        The settings go as the optional keys pool_url (≤ 255 printable characters), fan_pct (0–100) and power_mode (low,
        normal, high) when known and valid, and are left out otherwise."""
        data = asdict(self)
        for key in SETTINGS_ONLY:
            del data[key]
        url = self.pool_url
        if not (isinstance(url, str) and 0 < len(url) <= MAX_POOL_URL_CHARS and url.isprintable()):
            data["pool_url"] = None
        if isinstance(self.fan_pct, bool) or not isinstance(self.fan_pct, int) or not 0 <= self.fan_pct <= 100:
            data["fan_pct"] = None
        if self.power_mode not in POWER_MODES:
            data["power_mode"] = None
        for key in OPTIONAL_KEYS:
            if data[key] is None:
                del data[key]
        data["fan_rpm"] = [min(max(int(rpm), 0), MAX_FAN_RPM) for rpm in self.fan_rpm[:MAX_FANS]]
        data["errors"] = [code[:MAX_ERROR_CHARS] for code in self.errors if code][:MAX_ERRORS]
        for key in ("hashrate_ths", "power_w"):
            if data[key] is not None and data[key] < 0:
                data[key] = None
        for key in ("temp_chip_max_c", "temp_inlet_c", "temp_outlet_c"):
            if data[key] is not None and not TEMP_RANGE_C[0] <= data[key] <= TEMP_RANGE_C[1]:
                data[key] = None
        return data
