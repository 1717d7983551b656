"""The simulator process: N miners, one TCP server each (one asyncio event loop), plus an optional control port.

Control port (same framing as the miners, so ``edge.cgminer.query`` works; loopback only, no authentication):
  miners                      MINERS: [{index, serial, port, model, dialect}]
  state    <serial|index>     STATE:  [the miner's full simulated state: what the firmware reports and the truth]
  fault    <JSON fault spec>  FAULT:  [ground-truth rows]; "start" counts from *now* (default 0), see faults.py
  faults                      FAULTS: [every ground-truth row so far]
  time                        TIME:   [{"now": ISO, "epoch": s, "speed": x}]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import socket
import struct
from dataclasses import asdict

from edge.cgminer import MAX_REQUEST_BYTES, decode_request, encode_reply, status
from edge.simulator import api
from edge.simulator.catalog import DEFAULT_MIX, Profile
from edge.simulator.clock import iso
from edge.simulator.faults import Fault, GroundTruth, PlanError, parse_fault
from edge.simulator.miner import SimMiner

log = logging.getLogger("edge.simulator")

READ_TIMEOUT_S = 3.0
SILENT_HOLD_S = 30.0


class InventoryError(ValueError):
    pass


def build_miners(
    catalog: dict[str, Profile],
    *,
    count: int | None,
    base_port: int,
    t0: float,
    seed: int = 0,
    inventory: list | None = None,
    utc_offset_h: float = 0.0,
    restart_s: float = 15.0,
) -> list[SimMiner]:
    """The miners to simulate: the inventory's (first ``count`` of them if given), or ``count`` generated ones
    (serials SIM-000001…, models drawn from the demo fleet's mix with ``seed``)."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, int, str]] = []
    if inventory is not None:
        if isinstance(inventory, dict):
            inventory = inventory.get("miners")
        if not isinstance(inventory, list):
            raise InventoryError('an inventory is a list of {"serial", "model", "port"?} or {"miners": [...]}')
        seen_serials, seen_ports = set(), set()
        for i, item in enumerate(inventory[:count] if count else inventory):
            if not isinstance(item, dict):
                raise InventoryError(f"inventory #{i}: must be an object")
            serial, code, port = item.get("serial"), item.get("model"), item.get("port", base_port + i)
            if not isinstance(serial, str) or not serial.strip() or len(serial) > 64:
                raise InventoryError(f"inventory #{i}: serial must be a non-empty string (at most 64 characters)")
            if code not in catalog:
                close = sorted(c for c in catalog if isinstance(code, str) and code.split("-")[0] in c)[:5]
                raise InventoryError(
                    f"inventory #{i} ({serial}): unknown model {code!r}; e.g. {close or list(catalog)[:5]}"
                )
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise InventoryError(f"inventory #{i} ({serial}): port must be 1..65535")
            if serial in seen_serials or port in seen_ports:
                raise InventoryError(f"inventory #{i} ({serial}): serial or port {port} used twice")
            seen_serials.add(serial)
            seen_ports.add(port)
            status = item.get("status") if isinstance(item.get("status"), str) else "active"
            rows.append((serial, code, port, status))
    else:
        mix = [(code, weight) for code, weight in DEFAULT_MIX if code in catalog] or [(c, 1) for c in catalog]
        codes, weights = [c for c, _ in mix], [w for _, w in mix]
        for i in range(count or 0):
            rows.append((f"SIM-{i + 1:06d}", rng.choices(codes, weights)[0], base_port + i, "active"))
    miners = []
    for i, (serial, code, port, status) in enumerate(rows):
        m = SimMiner(
            i, serial, port, catalog[code],
            seed=seed * 1_000_003 + i + 1, t0=t0, utc_offset_h=utc_offset_h, restart_s=restart_s,
        )  # fmt: skip
        m.inventory_status = status
        if status == "maintenance":  # the server's asset status: the demo farm's miners under maintenance idle
            m.chain_enabled = [False] * m.profile.chains
        miners.append(m)
    return miners


def ensure_fd_limit(needed: int) -> tuple[int, int]:
    """Raise the soft open-files limit if ``needed`` descriptors do not fit; returns (soft, hard) afterwards.
    Raises OSError when even the hard limit is too low."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, max(needed, 2 * soft))
        if target < needed:
            raise OSError(f"{needed} file descriptors needed, hard limit is {hard} (raise it with ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, hard


class Simulator:
    def __init__(
        self,
        miners: list[SimMiner],
        clock,
        *,
        host: str = "127.0.0.1",
        allow_writes: bool = True,
        ground_truth: GroundTruth | None = None,
        seed: int = 0,
        control_port: int | None = None,
    ):
        self.miners = miners
        self.clock = clock
        self.host = host
        self.allow_writes = allow_writes
        self.ground_truth = ground_truth or GroundTruth(None, getattr(clock, "to_wall", lambda t: t))
        self.control_port = control_port
        self._rng = random.Random(seed + 1)
        self._next_fault_id = 1
        self._servers: list[asyncio.base_events.Server] = []
        self._by_serial = {m.serial: m for m in miners}
        self.requests = 0

    # --- faults ------------------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault, indexes: list[int]) -> list[dict]:
        self._next_fault_id = max(self._next_fault_id, fault.fault_id + 1)
        rows = []
        for i in indexes:
            self.miners[i].advance(min(self.clock.now(), fault.start))
            self.miners[i].faults.append(fault)
            rows.append(self.ground_truth.record(fault, self.miners[i]))
        return rows

    def add_plan(self, plan: list[tuple[Fault, list[int]]]) -> None:
        for fault, indexes in plan:
            self.add_fault(fault, indexes)

    def add_inventory_faults(self) -> list[dict]:
        """Miners the inventory lists with status "offline" (the server's asset status) do not answer, from the
        start and for good: one open-ended offline fault, in the ground truth like any other."""
        offline = [m.index for m in self.miners if m.inventory_status == "offline"]
        if not offline:
            return []
        fault = Fault(self._next_fault_id, "offline", self.clock.now(), math.inf, {"mode": "refuse"})
        return self.add_fault(fault, offline)

    def inject(self, spec: dict) -> list[dict]:
        """A fault given at run time; its start counts from now."""
        fault, indexes = parse_fault(
            spec, fault_id=self._next_fault_id, t0=self.clock.now(), serials=[m.serial for m in self.miners],
            rng=self._rng,
        )  # fmt: skip
        return self.add_fault(fault, indexes)

    def miner(self, key: str | int) -> SimMiner | None:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and key not in self._by_serial):
            i = int(key)
            return self.miners[i] if 0 <= i < len(self.miners) else None
        return self._by_serial.get(key)

    def state(self, miner: SimMiner) -> dict:
        r = miner.reading(self.clock.now())
        out = asdict(r)
        out.update(
            serial=miner.serial, index=miner.index, port=miner.port, model=miner.profile.code,
            hashrate_ths=r.hashrate_ths, chip_max_c=r.chip_max_c, fan_override_pct=miner.fan_override_pct,
            power_target_w=miner.power_target_w,
            pools=miner.pools, time=iso(r.t),
        )  # fmt: skip
        return out

    # --- serving -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        ensure_fd_limit(len(self.miners) + 256)
        try:
            for m in self.miners:
                server = await asyncio.start_server(
                    lambda r, w, m=m: self._serve_miner(m, r, w), self.host, m.port, backlog=64
                )
                self._servers.append(server)
            if self.control_port is not None:
                server = await asyncio.start_server(self._serve_control, self.host, self.control_port)
                self._servers.append(server)
                self.control_port = server.sockets[0].getsockname()[1]
        except OSError:
            await self.stop()
            raise

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        self.ground_truth.close()

    async def _serve_miner(self, miner: SimMiner, reader, writer) -> None:
        try:
            down = miner.down_mode(self.clock.now())
            if down == "refuse":
                sock = writer.get_extra_info("socket")
                with contextlib.suppress(OSError):  # reset, as a host that refuses would
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if down == "silent":
                with contextlib.suppress(TimeoutError, OSError):
                    await asyncio.wait_for(reader.read(), SILENT_HOLD_S)
                return

            def handle(command: str, parameter: str | None) -> dict:
                return api.dispatch(miner, self.clock.now(), command, parameter, allow_writes=self.allow_writes)

            reply = await self._answer(reader, handle, api.description(miner))
            writer.write(encode_reply(reply))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost one answer, never the server
            log.exception("miner %s: request failed", miner.serial)
        finally:
            writer.close()

    async def _answer(self, reader, handle, description: str) -> dict:
        self.requests += 1
        try:
            data = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT_S)
        except TimeoutError:
            return api.error(23, "Invalid JSON: incomplete request", description)
        except ValueError as exc:
            return api.error(23, f"Invalid JSON: {exc}", description)
        try:
            command, parameter = decode_request(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return api.error(23, f"Invalid JSON: {type(exc).__name__}", description)
        except ValueError as exc:
            return api.error(14, f"Invalid command: {exc}", description)
        return handle(command, parameter)

    async def _serve_control(self, reader, writer) -> None:
        try:
            reply = await self._answer(reader, self._control, "hashinsight simulator")
            writer.write(encode_reply(reply))
            await writer.drain()
        except OSError:
            pass
        except Exception:
            log.exception("control request failed")
        finally:
            writer.close()

    def _control(self, command: str, parameter: str | None) -> dict:
        def ok(msg: str, key: str, rows: list) -> dict:
            return {"STATUS": [status(0, msg, description="hashinsight simulator")], key: rows, "id": 1}

        command = command.strip().lower()
        if command == "miners":
            rows = [
                {"index": m.index, "serial": m.serial, "port": m.port, "model": m.profile.code,
                 "dialect": m.profile.dialect}
                for m in self.miners
            ]  # fmt: skip
            return ok(f"{len(rows)} miner(s)", "MINERS", rows)
        if command == "state":
            miner = self.miner((parameter or "").strip())
            if miner is None:
                return api.error(140, "state needs a known serial or index", "hashinsight simulator")
            return ok("State", "STATE", [self.state(miner)])
        if command == "fault":
            try:
                spec = json.loads(parameter or "")
                rows = self.inject(spec)
            except (ValueError, PlanError) as exc:
                return api.error(140, f"bad fault: {exc}", "hashinsight simulator")
            return ok(f"{len(rows)} fault(s) injected", "FAULT", rows)
        if command == "faults":
            return ok("Faults", "FAULTS", list(self.ground_truth.records))
        if command == "time":
            now = self.clock.now()
            return ok("Time", "TIME", [{"now": iso(now), "epoch": now, "speed": getattr(self.clock, "speed", 1.0)}])
        return api.error(14, "Invalid command", "hashinsight simulator")


async def _read_request(reader) -> bytes:
    """Read one request: up to a NUL byte, EOF, a complete JSON object, or (plain-text form) one read."""
    buf = b""
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            return buf
        buf += chunk
        if len(buf) > MAX_REQUEST_BYTES:
            raise ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes")
        if b"\x00" in buf:
            return buf.split(b"\x00", 1)[0]
        text = buf.strip()
        if not text.startswith(b"{"):
            return buf
        try:
            json.loads(text)
        except ValueError:
            continue  # not complete yet (or malformed: then EOF or the timeout ends it)
        return buf
