"""End to end on loopback, simulator → collector → server: a soft CURTAIL throttles the simulated miner with a power
target and the collector puts it back at the window's end and reports the restore; a SET_FAN and a POOL_SET are
rolled back from the state the edge read just before them (the fan back to automatic, the previous pool and worker).

In-process like test_edge_roundtrip: the simulator and the real collector's command and restore loops share one
event loop, the server runs in live_server's thread, and the database is reached from worker threads. Nothing
sleeps for a fixed time; every wait has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connections

from commands import rollback, services
from commands.models import Command, CommandStatus, CommandTarget
from commands.tests.edge_stack import simulated_collector

pytestmark = pytest.mark.django_db(transaction=True)

S = CommandStatus
WAITING = (S.PENDING, S.PENDING_APPROVAL, S.APPROVED, S.DISPATCHED)
DEFAULT_POOL = "stratum+tcp://btc.pool.example:3333"  # the simulator's pool 0 (edge.simulator.miner.DEFAULT_POOLS)


def _in_thread(fn, *args, **kwargs):
    """Run ``fn`` with this worker thread's own database connection, closed afterwards. On SQLite the test database
    is one in-memory database in shared-cache mode, where a table another connection (the live server's) is
    writing answers "database table is locked" at once instead of waiting: tried again (every call here is one
    transaction, rolled back when it fails)."""
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
    finally:
        connections.close_all()


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(_in_thread, fn, *args, **kwargs)


def _status(pk: int) -> str:
    return Command.objects.get(pk=pk).status


def _target(pk: int) -> CommandTarget:
    return CommandTarget.objects.get(command_id=pk)


def _approve_until_approved(pk: int, approvers) -> str:
    """Approve with each approver in turn while the command waits for approvals (LOW ones need none)."""
    for user in approvers:
        command = Command.objects.get(pk=pk)
        if command.status != S.PENDING_APPROVAL:
            break
        services.command_approve(command=command, actor=user)
    return Command.objects.get(pk=pk).status


async def until(check, *, timeout: float = 20.0, what: str = "the condition"):
    """Poll ``check`` (a coroutine function) until it answers something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def finished(pk: int, timeout: float = 20.0) -> str:
    async def check():
        status = await db(_status, pk)
        return status if status not in WAITING else None

    return await until(check, timeout=timeout, what=f"command {pk} to finish")


@pytest.fixture
def edge(farm, live_server, tmp_path):
    """The site's one miner on the simulator, and a registered collector polling it (loops started by run())."""
    miner = farm.miners[("site-a", "own")]
    stack = simulated_collector(
        site=farm.site_a, miner=miner, live_server=live_server, tmp_path=tmp_path, name="curtail-rollback"
    )
    sim, sim_clock, simulated = stack.sim, stack.sim_clock, stack.simulated
    spool, collector = stack.spool, stack.collector

    async def run(scenario):
        """Start the simulator and the collector's command and restore loops, run ``scenario()``, stop them."""
        await sim.start()
        sim_clock.advance(600)
        await collector.load_inventory()
        loops = [asyncio.create_task(collector._command_loop()), asyncio.create_task(collector._restore_loop())]
        try:
            return await scenario()
        finally:
            collector.stop()
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for adapter in collector._adapters.values():
                await adapter.close()
            await sim.stop()

    yield SimpleNamespace(
        miner=miner, simulated=simulated, sim_clock=sim_clock, collector=collector, run=run, farm=farm
    )
    spool.close()
    # A long poll still in flight (≤ command_wait_s) ends before the test database goes away.
    for thread in threading.enumerate():
        if thread.name == "command-poll":
            thread.join(timeout=10)


def test_a_set_fan_and_a_pool_set_are_rolled_back_from_the_edges_before_state(edge):
    farm, simulated = edge.farm, edge.simulated
    proposer, approvers = farm.users["siteowner_a"], [farm.users["owner"], farm.users["admin"]]
    default_worker = simulated.pools[0]["user"]

    async def scenario():
        # SET_FAN 85 % (LOW: runs at once), then its rollback: the fans back to automatic.
        fan = (await db(services.command_propose, actor=proposer, type="SET_FAN", params={"percent": 85},
                        targets=[edge.miner.pk])).command  # fmt: skip
        assert await finished(fan.pk) == S.COMPLETED
        assert simulated.fan_override_pct == 85
        before = (await db(_target, fan.pk)).before_state["edge"]
        assert before["fan_percent"] == "auto" and before["pool_url"] == DEFAULT_POOL
        assert before["power_mode"] == "normal" and before["pool_worker"] == default_worker
        undo = (await db(rollback.command_rollback, command=fan, actor=proposer)).command
        assert undo.command_type == "SET_FAN" and undo.params == {"percent": "auto"}
        await db(_approve_until_approved, undo.pk, approvers)
        assert await finished(undo.pk) == S.COMPLETED
        assert simulated.fan_override_pct is None  # automatic again
        assert await db(_status, fan.pk) == S.ROLLED_BACK

        # POOL_SET (HIGH: two approvers), then its rollback: the previous pool and worker.
        pool = (await db(services.command_propose, actor=proposer, type="POOL_SET",
                         params={"url": "stratum+tcp://other.pool.example:3333", "worker": "acct.w9"},
                         targets=[edge.miner.pk])).command  # fmt: skip
        assert await db(_approve_until_approved, pool.pk, approvers) == S.APPROVED
        assert await finished(pool.pk) == S.COMPLETED
        assert (simulated.pools[0]["url"], simulated.pools[0]["user"]) == ("stratum+tcp://other.pool.example:3333",
                                                                           "acct.w9")  # fmt: skip
        undo = (await db(rollback.command_rollback, command=pool, actor=proposer)).command
        assert undo.params["url"] == DEFAULT_POOL and undo.params["worker"] == default_worker
        assert await db(_approve_until_approved, undo.pk, approvers) == S.APPROVED
        assert await finished(undo.pk) == S.COMPLETED
        assert await db(_status, pool.pk) == S.ROLLED_BACK

    asyncio.run(edge.run(scenario))
    assert (simulated.pools[0]["url"], simulated.pools[0]["user"]) == (DEFAULT_POOL, default_worker)
    assert simulated.active_pool == 0


def test_a_soft_curtail_throttles_the_miner_and_is_restored_at_the_end(edge):
    farm, simulated = edge.farm, edge.simulated
    proposer, approvers = farm.users["siteowner_a"], [farm.users["owner"], farm.users["admin"]]
    window_s = 10

    async def scenario():
        now = datetime.now(UTC)
        params = {"kw": 1, "start": now.isoformat(), "end": (now + timedelta(seconds=window_s)).isoformat(),
                  "mode": "soft"}  # fmt: skip
        curtail = (await db(services.command_propose, actor=proposer, type="CURTAIL", params=params,
                            targets=[edge.miner.pk])).command  # fmt: skip
        await db(_approve_until_approved, curtail.pk, approvers)
        assert await finished(curtail.pk) == S.COMPLETED
        target = await db(_target, curtail.pk)
        # 3.5 kW nameplate, 1 kW to save: a soft power target of 2.5 kW, carried out by the simulator's power_target
        assert (target.action["action"], target.action["power_w"]) == ("power_target", 2500)
        assert target.result_message.startswith("power target 2500 W until")
        assert simulated.power_target_w == 2500 and simulated.mining
        assert target.before_state["edge"]["power_limit_w"] == round(simulated.profile.nominal_w * 1.22)
        throttled = simulated.reading(edge.sim_clock.now())
        assert throttled.power_w < 2600

        async def restored():
            row = await db(_target, curtail.pk)
            return row if isinstance((row.action or {}).get("restore"), dict) else None

        row = await until(restored, timeout=window_s + 15, what="the restore report")

        async def acked():  # the server's answer reaches the collector just after the row is written
            return edge.collector.restores.get(str(curtail.pk)).state == "acked"

        await until(acked, timeout=10, what="the collector to record the restore report as delivered")
        return row

    row = asyncio.run(edge.run(scenario))
    assert row.action["restore"]["status"] == "ok" and row.action["restore"]["message"] == "power target cleared"
    assert simulated.power_target_w is None and simulated.mining
