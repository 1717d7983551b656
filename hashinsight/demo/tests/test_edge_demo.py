"""The embedded edge demo's wiring: devices enrolled through the real services and reused, files private and
valid for the edge programs, the simulator and collectors started with the right arguments and stopped as
process groups (subprocess mocked), leftovers of a killed run stopped, run_embedded's switches."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from edge.collector.config import load_config
from edge.collector.credentials import load_credentials
from edge.simulator.faults import parse_plan
from hashinsight.demo import edge_demo
from miners.models import Miner
from telemetry import devices
from telemetry.edge_auth import authenticate_device
from telemetry.models import EdgeDevice

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:8765"
WILDCARD = "0.0.0.0"  # noqa: S104 - a listen address handed to run_embedded, not bound here


@pytest.fixture
def demo_farm(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "90", "--no-identity", "--no-models", stdout=StringIO())
    return tmp_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_enrolls_each_site_and_writes_private_valid_files(demo_farm):
    plan = edge_demo.prepare(server_url=URL, base_port=20000, poll_interval_s=15, var_dir=demo_farm)

    assert [s.slug for s in plan.sites] == list(edge_demo.DEMO_SITES)
    assert all(s.enrolled for s in plan.sites)
    port = 20000
    for site in plan.sites:
        creds_path = site.directory / "credentials.json"
        assert mode(creds_path) == 0o600
        assert mode(site.config_path) == 0o600
        creds = load_credentials(creds_path)
        device = authenticate_device(creds.token)
        assert device is not None and device.pk == site.device_id == creds.device_id
        assert device.site_id == site.site_id == creds.site_id and creds.server_url == URL
        assert device.name == f"demo-collector-{site.slug}"
        config = load_config(site.config_path)  # the collector's own parser: valid as written
        assert config.server_url == URL and config.inventory == "server"
        assert config.credentials_path == creds_path and config.spool_path == site.directory / "spool.sqlite3"
        assert config.poll_interval_s == 15 and config.poll_timeout_s < config.poll_interval_s
        assert (config.simulator_base_port, config.simulator_ports) == (port, site.miners)
        expected = Miner.objects.filter(site_id=site.site_id).exclude(status=Miner.Status.RETIRED).count()
        assert site.miners == expected
        port += site.miners

    inventory = json.loads(plan.inventory_path.read_text())["miners"]
    assert mode(plan.inventory_path) == 0o600
    assert len(inventory) == plan.miners == Miner.objects.exclude(status=Miner.Status.RETIRED).count()
    assert [row["port"] for row in inventory] == list(range(20000, 20000 + plan.miners))
    by_serial = {m.serial: m for m in Miner.objects.select_related("model", "site")}
    for site in plan.sites:  # each site's miners on its collector's port range
        rows = [r for r in inventory if by_serial[r["serial"]].site_id == site.site_id]
        assert {r["port"] for r in rows} == set(range(site.base_port, site.base_port + site.miners))
    assert all(r["model"] == by_serial[r["serial"]].model.code for r in inventory)
    assert plan.simulator_command()[1:3] == ["-m", "edge.simulator"]

    faults = json.loads(plan.faults_path.read_text())
    parse_plan(faults, t0=0.0, serials=[r["serial"] for r in inventory])  # the simulator accepts it
    kinds = {}
    for fault in faults["faults"]:
        assert "demo_pick" not in fault
        (serial,) = fault["miners"]
        miner = by_serial[serial]
        assert miner.status == Miner.Status.ACTIVE and miner.model.cooling == "air"
        kinds[fault["kind"]] = miner.site.slug
    assert kinds == {"overheat": "tx-permian", "fan_failure": "no-kvaloya", "hashboard_failure": "py-itaipu"}
    assert all(f["start"] < 180 for f in faults["faults"])  # alerts within the first minutes


def test_prepare_reuses_credentials_and_enrolls_again_when_revoked(demo_farm):
    first = edge_demo.prepare(server_url=URL, var_dir=demo_farm)
    again = edge_demo.prepare(server_url="http://127.0.0.1:9000", var_dir=demo_farm)
    assert [s.device_id for s in again.sites] == [s.device_id for s in first.sites]
    assert not any(s.enrolled for s in again.sites)
    assert EdgeDevice.objects.count() == 3
    creds_path = again.sites[0].directory / "credentials.json"
    assert load_credentials(creds_path).server_url == "http://127.0.0.1:9000"  # rewritten for the new port
    assert mode(creds_path) == 0o600

    revoked = EdgeDevice.objects.get(pk=first.sites[1].device_id)
    devices.device_revoke(device=revoked)
    (first.sites[2].directory / "credentials.json").unlink()  # lost: the old device is revoked, a new one enrolled
    third = edge_demo.prepare(server_url=URL, var_dir=demo_farm)
    assert third.sites[0].device_id == first.sites[0].device_id and not third.sites[0].enrolled
    for old, new in zip(first.sites[1:], third.sites[1:], strict=True):
        assert new.enrolled and new.device_id != old.device_id
        assert EdgeDevice.objects.get(pk=old.device_id).revoked_at is not None
        assert authenticate_device(load_credentials(new.directory / "credentials.json").token).pk == new.device_id
    assert EdgeDevice.objects.filter(revoked_at__isnull=True).count() == 3


def test_reused_credentials_are_checked_without_recording_a_visit(demo_farm):
    first = edge_demo.prepare(server_url=URL, var_dir=demo_farm)
    assert not EdgeDevice.objects.filter(last_seen_at__isnull=False).exists()
    again = edge_demo.prepare(server_url=URL, var_dir=demo_farm)
    assert not any(s.enrolled for s in again.sites)
    # Reading its own credentials file is not the collector calling: the device stays "never seen".
    assert not EdgeDevice.objects.filter(last_seen_at__isnull=False).exists()
    # A valid token of another site's device is not taken for this site's.
    a, b = first.sites[0], first.sites[1]
    (b.directory / "credentials.json").write_text((a.directory / "credentials.json").read_text())
    assert (
        edge_demo._stored_device(b.directory / "credentials.json", EdgeDevice.objects.get(pk=b.device_id).site) is None
    )


def test_prepare_without_demo_sites_plans_nothing(settings, tmp_path, db):
    plan = edge_demo.prepare(server_url=URL, var_dir=tmp_path)
    assert plan.sites == [] and not plan.inventory_path.exists()
    assert edge_demo.EdgeDemo(plan, popen=pytest.fail).start() is False


def test_enabled_by_default_off_by_flag_or_setting(settings):
    settings.DEMO_EDGE = True
    assert edge_demo.enabled()
    assert not edge_demo.enabled(no_edge=True)
    settings.DEMO_EDGE = False
    assert not edge_demo.enabled()


def test_server_url_for_wildcard_and_ipv6_hosts():
    assert edge_demo.server_url_for("0.0.0.0", 8000) == "http://127.0.0.1:8000"  # noqa: S104
    assert edge_demo.server_url_for("::1", 8000) == "http://[::1]:8000"
    assert edge_demo.server_url_for("localhost", 81) == "http://localhost:81"


class FakeProcess:
    pids = iter(range(40000, 50000))

    def __init__(self, command, *, exit_code=None, stubborn=False, **kwargs):
        self.command, self.kwargs = command, kwargs
        self.pid = next(self.pids)
        self.exit_code, self.stubborn = exit_code, stubborn
        self.waits = []

    def poll(self):
        return self.exit_code

    def wait(self, timeout=None):
        self.waits.append(timeout)
        if self.stubborn and len(self.waits) == 1:
            raise subprocess.TimeoutExpired(self.command, timeout)
        self.exit_code = 0
        return 0


@pytest.fixture
def plan(demo_farm):
    return edge_demo.prepare(server_url=URL, base_port=21000, var_dir=demo_farm)


def test_start_runs_the_simulator_then_one_collector_per_site_and_stop_signals_their_groups(plan, monkeypatch):
    started, signals = [], []

    def popen(command, **kwargs):
        started.append(FakeProcess(command, stubborn=len(started) == 1, **kwargs))
        return started[-1]

    waited = []
    monkeypatch.setattr(edge_demo, "_wait_listening", lambda port, **kw: waited.append(port) or True)
    monkeypatch.setattr(edge_demo.os, "killpg", lambda pid, sig: signals.append((pid, sig)))
    demo = edge_demo.EdgeDemo(plan, popen=popen)
    assert demo.start() is True

    simulator, *collectors = started
    assert simulator.command == [
        sys.executable, "-m", "edge.simulator", "--inventory", str(plan.inventory_path), "--base-port", "21000",
        "--faults", str(plan.faults_path), "--ground-truth", str(plan.ground_truth_path),
        "--control-port", "20999", "--seed", "7",
    ]  # fmt: skip
    assert waited == [21000 + plan.miners - 1]  # collectors wait for the simulator's last miner
    assert [c.command for c in collectors] == [
        [sys.executable, "-m", "edge.collector", "--config", str(s.config_path)] for s in plan.sites
    ]
    for process, name in zip(started, ["simulator", *(f"collector-{s.slug}" for s in plan.sites)], strict=True):
        assert process.kwargs["start_new_session"] is True  # a process group of its own
        assert process.kwargs["stdout"].name == str(plan.log_dir / f"edge-{name}.log")
        assert process.kwargs["stderr"] == subprocess.STDOUT and process.kwargs["stdin"] == subprocess.DEVNULL
        assert process.kwargs["env"]["PYTHONUNBUFFERED"] == "1"
    assert json.loads(demo.pid_file.read_text()) == {
        "simulator": simulator.pid,
        **{f"collector-{s.slug}": c.pid for s, c in zip(plan.sites, collectors, strict=True)},
    }
    assert mode(demo.pid_file) == 0o600

    demo.stop(grace=0.5)
    sigterms = [pid for pid, sig in signals if sig == signal.SIGTERM]
    assert sigterms == [p.pid for p in started]
    assert [pid for pid, sig in signals if sig == signal.SIGKILL] == [collectors[0].pid]  # the one that lingered
    assert not demo.pid_file.exists()
    assert demo._spawn("late", ["x"]) is None  # nothing starts after stop (a start racing the shutdown)


def test_a_simulator_that_dies_at_start_gets_no_collectors(plan, monkeypatch):
    started = []

    def popen(command, **kwargs):
        started.append(FakeProcess(command, exit_code=1, **kwargs))
        return started[-1]

    demo = edge_demo.EdgeDemo(plan, popen=popen, start_timeout=5)
    assert demo.start() is False
    assert [p.command[2] for p in started] == ["edge.simulator"]


def test_leftovers_of_a_killed_run_are_stopped_and_nothing_else(plan):
    edge_dir = str(plan.edge_dir)
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "edge.collector", edge_dir], start_new_session=True
    )
    try:
        demo = edge_demo.EdgeDemo(plan)
        demo.pid_file.write_text(json.dumps({"collector-x": leftover.pid, "not-ours": os.getpid()}))
        deadline = time.monotonic() + 5
        while not edge_demo._ours(leftover.pid, edge_dir) and time.monotonic() < deadline:
            time.sleep(0.01)  # /proc shows the new command line once exec is done
        assert demo.stop_leftovers() == [leftover.pid]
        assert leftover.wait(timeout=5) == -signal.SIGTERM
        assert not demo.pid_file.exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_run_embedded_starts_the_demo_after_the_server_and_stops_it(monkeypatch, plan):
    import celery.beat
    import celery.worker
    import uvicorn

    from hashinsight.events import outbox

    calls = []
    monkeypatch.setattr(outbox, "LOCAL_WORKER", False)  # restored after the test

    class Worker:
        def __init__(self, **kwargs):
            calls.append(("worker", kwargs["queues"]))

        def start(self):
            pass

        def stop(self, **kwargs):
            calls.append(("worker.stop",))

    class Beat:
        def __init__(self, *args, **kwargs):
            pass

        def start(self):
            pass

        def stop(self):
            calls.append(("beat.stop",))

    class Server:
        def __init__(self, config):
            self.config = config

        def run(self):
            calls.append(("server.run", self.config.port))
            raise KeyboardInterrupt

    class Demo:
        def __init__(self, plan):
            calls.append(("demo", plan.server_url))

        def start_when_listening(self, server):
            calls.append(("demo.start_when_listening",))

        def stop(self):
            calls.append(("demo.stop",))

    monkeypatch.setattr(celery.worker, "WorkController", Worker)
    monkeypatch.setattr(celery.beat, "EmbeddedService", Beat)
    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(edge_demo, "EdgeDemo", Demo)
    monkeypatch.setattr(edge_demo, "prepare", lambda **kwargs: calls.append(("prepare", kwargs)) or plan)
    before = signal.getsignal(signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        call_command("run_embedded", "--port", "8765", "--host", WILDCARD, "--edge-poll-s", "15", stdout=StringIO())
    names = [c[0] for c in calls]
    assert names == [
        "prepare", "demo", "worker", "demo.start_when_listening", "server.run", "demo.stop", "beat.stop", "worker.stop"
    ]  # fmt: skip
    assert calls[0][1] == {"server_url": URL, "base_port": 14028, "poll_interval_s": 15.0}
    assert "telemetry" in calls[2][1]  # the rollups' and rules' queue
    assert signal.getsignal(signal.SIGTERM) == before

    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        call_command("run_embedded", "--no-edge", "--port", "8765", stdout=StringIO())
    assert [c[0] for c in calls] == ["worker", "server.run", "beat.stop", "worker.stop"]
