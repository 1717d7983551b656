"""python -m edge.simulator — see edge/README.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time

from edge.simulator.catalog import load_catalog
from edge.simulator.clock import RealClock, iso
from edge.simulator.faults import GroundTruth, PlanError, load_plan
from edge.simulator.server import InventoryError, Simulator, build_miners, ensure_fd_limit

log = logging.getLogger("edge.simulator")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m edge.simulator",
        description="Serve the CGMiner JSON API for N simulated ASIC miners, one loopback port each.",
    )
    p.add_argument("--miners", type=int, default=None, help="how many miners (default 20; with --inventory: all)")
    p.add_argument("--base-port", type=int, default=14028, help="miner i listens on base-port + i (default 14028)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--inventory", help='JSON list of {"serial", "model" (catalog code), "port"?} to impersonate')
    p.add_argument("--faults", help="JSON fault plan (see edge/README.md)")
    p.add_argument("--ground-truth", help="write the faults as JSON lines here (serial, kind, start, end)")
    p.add_argument("--seed", type=int, default=0, help="random seed: model mix, uptimes, noise (default 0)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument(
        "--utc-offset", type=float, default=None, help="site's hours from UTC for the daily cycle (default: local)"
    )
    p.add_argument("--restart-seconds", type=float, default=15.0, help="how long a restart keeps a miner away")
    p.add_argument("--control-port", type=int, default=None, help="serve the control commands here (0: any port)")
    p.add_argument("--read-only", action="store_true", help="refuse the write commands (code 45)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def _run(sim: Simulator) -> None:
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    first, last = sim.miners[0].port, sim.miners[-1].port
    log.info("serving %d miners on %s ports %d..%d", len(sim.miners), sim.host, first, last)
    if sim.control_port is not None:
        log.info("control port %d", sim.control_port)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        log.info("stopped after %d requests", sim.requests)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if args.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    utc_offset = args.utc_offset if args.utc_offset is not None else time.localtime().tm_gmtoff / 3600
    clock = RealClock(speed=args.speed)
    catalog = load_catalog()
    try:
        inventory = None
        if args.inventory:
            with open(args.inventory, encoding="utf-8") as fh:
                inventory = json.load(fh)
        count = args.miners if args.miners is not None else (None if inventory is not None else 20)
        if count is not None and count < 1:
            raise InventoryError("--miners must be at least 1")
        miners = build_miners(
            catalog, count=count, base_port=args.base_port, t0=clock.now(), seed=args.seed, inventory=inventory,
            utc_offset_h=utc_offset, restart_s=args.restart_seconds,
        )  # fmt: skip
        if not miners:
            raise InventoryError("no miners to simulate")
        if max(m.port for m in miners) > 65535:
            raise InventoryError("base-port + miners goes past port 65535")
        plan = (
            load_plan(args.faults, t0=clock.now(), serials=[m.serial for m in miners], seed=args.seed)
            if args.faults
            else []
        )
        soft, hard = ensure_fd_limit(len(miners) + 256)
        log.info("open-files limit %s (hard %s) for %d listening sockets", soft, hard, len(miners))
    except (OSError, ValueError, InventoryError, PlanError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    truth = GroundTruth(args.ground_truth, clock.to_wall)
    sim = Simulator(
        miners, clock, host=args.host, allow_writes=not args.read_only, ground_truth=truth, seed=args.seed,
        control_port=args.control_port,
    )  # fmt: skip
    sim.add_plan(plan)
    sim.add_inventory_faults()
    log.info("simulated time starts %s at %gx; %d fault(s) planned", iso(clock.now()), args.speed, len(plan))
    try:
        asyncio.run(_run(sim))
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
