"""What every adapter does: read one miner into a Sample, and carry out a command on it (issue 8)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from edge.collector.sample import CHAIN_FAILURE, FAN_FAILURE, OVERHEAT, MinerSpec, Sample

# The command types of DESIGN.md ("Commands") that an edge adapter may be asked to carry out.
COMMANDS = ("MINER_RESTART", "HASHING_DISABLE", "HASHING_ENABLE", "POOL_SET", "SET_FAN", "POWER_MODE", "CURTAIL")


class AdapterError(Exception):
    """The miner answered, but the command failed or the answer could not be read."""


class UnsupportedCommand(AdapterError):
    """This adapter (or this miner's protocol) cannot carry out the command; nothing was sent."""


class Adapter(ABC):
    name: str = ""

    @abstractmethod
    async def poll(self, miner: MinerSpec, *, ts: str) -> Sample:
        """One sample for ``miner`` at ``ts``. Never raises for an unreachable miner: that is an "offline" sample
        with null readings and the error code "unreachable"."""

    @abstractmethod
    async def execute(self, miner: MinerSpec, command: str, params: dict) -> dict:
        """Carry out ``command`` (one of COMMANDS) and return what the miner answered, as plain data.
        Raises UnsupportedCommand (nothing sent) or AdapterError (sent, failed)."""

    async def set_power_target(self, miner: MinerSpec, watts: int) -> dict:
        """Cap the miner's power at ``watts`` (a soft curtailment: it keeps hashing, slower). Raises
        UnsupportedCommand (nothing sent) where the miner or this adapter has no power target."""
        raise UnsupportedCommand(f"the {self.name} adapter has no power target")

    async def clear_power_target(self, miner: MinerSpec, *, mode: str | None = None) -> dict:
        """Remove a power target (back to the firmware's own limit, or to power mode ``mode`` where the firmware
        keeps the target in its mode setting). Raises UnsupportedCommand like set_power_target."""
        raise UnsupportedCommand(f"the {self.name} adapter has no power target")

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; called once when the collector stops."""


def derive_status(hashrate_ths: float | None, errors: list[str], *, is_mining: bool = True) -> str:
    """hashing while it hashes; otherwise error if something is wrong, idle if it was told to stop."""
    if hashrate_ths is not None and hashrate_ths > 0 and is_mining:
        return "hashing"
    return "error" if errors else "idle"


def health_codes(
    *,
    fans: list[int],
    expected_fans: int | None,
    chain_rates: list[float | None],
    temp_chip_max_c: float | None,
    overheat_c: float,
) -> list[str]:
    """The collector's own error codes for what the readings show (see edge.collector.sample)."""
    codes = []
    if fans and (any(rpm <= 0 for rpm in fans) or (expected_fans and len(fans) < expected_fans)):
        codes.append(FAN_FAILURE)
    if len(chain_rates) > 1 and any(r is None or r <= 0 for r in chain_rates) and any(r and r > 0 for r in chain_rates):
        codes.append(CHAIN_FAILURE)
    if temp_chip_max_c is not None and temp_chip_max_c >= overheat_c:
        codes.append(OVERHEAT)
    return codes
