"""The end-to-end command tests' edge: one miner of a site on the in-process simulator, and a real collector
registered at that site talking to ``live_server`` (its loops are started by each test)."""

from __future__ import annotations

from types import SimpleNamespace

from edge.collector.adapters.cgminer import CGMinerAdapter
from edge.collector.client import ServerClient
from edge.collector.config import parse_config
from edge.collector.credentials import Credentials
from edge.collector.runner import Collector
from edge.collector.spool import Spool
from edge.tests.test_collector_adapters import _simulator
from telemetry import devices


def simulated_collector(*, site, miner, live_server, tmp_path, name: str) -> SimpleNamespace:
    """``sim``, ``sim_clock``, ``simulated`` (the miner on it), ``spool`` and ``collector`` (a short long poll:
    stopping waits for the request in flight)."""
    _row, code = devices.enrollment_code_create(site=site)
    device, token, secret = devices.device_register(code=code, name=name, version="1.0.0")
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
        credentials=Credentials(token=token, hmac_secret=secret, device_id=device.pk, site_id=site.pk),
    )
    collector.command_wait_s = 1
    return SimpleNamespace(sim=sim, sim_clock=sim_clock, simulated=simulated, spool=spool, collector=collector)
