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
from edge.collector.adapters.cgminer import CGMinerAdapter
from edge.collector.client import ServerClient
from edge.collector.config import parse_config
from edge.collector.credentials import Credentials
from edge.collector.runner import Collector
from edge.collector.spool import Spool
from edge.tests.test_collector_adapters import _simulator
from telemetry import devices

pytestmark = pytest.mark.django_db(transaction=True)


def _status(pk: int) -> str:
    try:
        return Command.objects.get(pk=pk).status
    finally:
        connections.close_all()  # this worker thread's connection


def test_a_low_set_fan_runs_on_the_simulator_and_completes(farm, live_server, tmp_path):
    miner = farm.miners[("site-a", "own")]
    _row, code = devices.enrollment_code_create(site=farm.site_a)
    _device, token, secret = devices.device_register(code=code, name="roundtrip", version="1.0.0")
    command = services.command_propose(
        actor=farm.users["siteowner_a"], type="SET_FAN", params={"percent": 85}, targets=[miner.pk]
    ).command
    assert command.status == CommandStatus.APPROVED  # LOW: no approval needed

    sim, sim_clock, _base = _simulator(1, [{"serial": miner.serial, "model": "antminer-s21-200t"}])
    simulated = sim.miners[0]
    config = parse_config(
        {
            "inventory": "static",
            "server": {"url": live_server.url, "credentials": "creds.json", "timeout_s": 5},
            "spool": {"path": "spool.sqlite3"},
            "miners": [{"serial": miner.serial, "host": "127.0.0.1", "port": simulated.port}],
        },
        tmp_path / "site.toml",
    )
    spool = Spool(config.spool_path)
    collector = Collector(
        config,
        client=ServerClient(live_server.url, token, timeout=5),
        spool=spool,
        adapters={"cgminer": CGMinerAdapter(timeout=2)},
        credentials=Credentials(token=token, hmac_secret=secret, device_id=_device.pk, site_id=farm.site_a.pk),
    )
    collector.command_wait_s = 1  # a short long poll: stopping waits for the request in flight

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
