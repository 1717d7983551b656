"""End to end on loopback: a LOW SET_FAN proposed (auto-approved) → the real collector's command loop long-polls
the live server, verifies the signed envelope, sets the fan on the miner simulator and acknowledges → COMPLETED,
with the simulator's fan changed and the edge's reading before it recorded. In-process (simulator and collector in
one event loop, the server in live_server's thread); nothing sleeps for a fixed time, every wait has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
from django.db import connections

from commands import services
from commands.models import Command, CommandStatus, CommandTarget
from commands.tests.edge_stack import simulated_collector

pytestmark = pytest.mark.django_db(transaction=True)


def _status(pk: int) -> str:
    try:
        return Command.objects.get(pk=pk).status
    finally:
        connections.close_all()  # this worker thread's connection


def test_a_low_set_fan_runs_on_the_simulator_and_completes(farm, live_server, tmp_path):
    miner = farm.miners[("site-a", "own")]
    command = services.command_propose(
        actor=farm.users["siteowner_a"], type="SET_FAN", params={"percent": 85}, targets=[miner.pk]
    ).command
    assert command.status == CommandStatus.APPROVED  # LOW: no approval needed

    edge = simulated_collector(
        site=farm.site_a, miner=miner, live_server=live_server, tmp_path=tmp_path, name="roundtrip"
    )
    sim, sim_clock, simulated = edge.sim, edge.sim_clock, edge.simulated
    spool, collector = edge.spool, edge.collector

    async def scenario() -> str:
        await sim.start()
        sim_clock.advance(600)
        await collector.load_inventory()
        loop_task = asyncio.create_task(collector._command_loop())
        status, deadline = command.status, time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                status = await asyncio.to_thread(_status, command.pk)
                if status not in (CommandStatus.APPROVED, CommandStatus.DISPATCHED):
                    break
                await asyncio.sleep(0.1)
        finally:
            collector.stop()
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            for adapter in collector._adapters.values():
                await adapter.close()
            await sim.stop()
        return status

    try:
        assert simulated.fan_override_pct is None
        assert asyncio.run(scenario()) == CommandStatus.COMPLETED
    finally:
        spool.close()
        # A long poll still in flight (≤ command_wait_s) ends before the test database goes away.
        for thread in threading.enumerate():
            if thread.name == "command-poll":
                thread.join(timeout=10)
    assert simulated.fan_override_pct == 85  # the simulator's fan changed
    target = CommandTarget.objects.get(command=command)
    assert target.result_status == "ok" and target.acked_at is not None
    assert target.before_state["edge"]["fan_rpm"]  # the edge's reading just before it acted
    command.refresh_from_db()
    assert command.dispatched_at is not None and command.finished_at is not None
