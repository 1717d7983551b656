"""The embedded mode's edge demo: one miner simulator for the whole demo farm and one edge collector per
demo site, as child processes of ``manage.py run_embedded``, so a newcomer sees live telemetry within a
minute and a few alerts within a few minutes.

``prepare`` (needs the database, before the server starts) makes sure every demo site has an enrolled
EdgeDevice and writes everything the edge programs read, under ``var/edge/``:

- ``<site>/credentials.json`` (0600): the device token and HMAC secret, in the collector's own format
  (``edge.collector.credentials``). A device is enrolled through the real services (``enrollment_code_create``
  then ``device_register``); a file whose token still opens an active device of its site is reused, one whose
  device was revoked (or is gone) is replaced by a fresh enrollment.
- ``<site>/site.toml``: the collector's config (server URL, a short poll interval, the simulator's port range
  for that site); its spool lives beside it.
- ``inventory.json``: the demo miners (retired ones left out, like the server's edge inventory) in the form
  ``python -m edge.simulator --inventory`` reads, each site's miners on a contiguous port range.
- ``faults.json``: ``hashinsight/demo/data/demo_faults.json`` with each fault's miner chosen from the farm.

``EdgeDemo`` starts the processes once the server listens (logs in ``var/log/edge-*.log``), each in a
process group of its own, and stops them (SIGTERM to the group, SIGKILL after a grace period) when
run_embedded stops. Their ids are kept in ``var/edge/pids.json``, so children left behind by a run that was
killed outright are stopped at the next start instead of holding the ports and the spools' locks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

DEMO_SITES = ("tx-permian", "no-kvaloya", "py-itaipu")  # seed_demo's sites
DEVICE_NAME = "demo-collector"
DEFAULT_BASE_PORT = 14028
# Ports from here up must stay below the kernel's ephemeral range (32768 on Linux by default): a port
# taken by an outgoing connection would make the simulator fail to start.
MAX_PORT = 32767
DEFAULT_POLL_INTERVAL_S = 20
FAULT_PLAN = Path(__file__).resolve().parent / "data" / "demo_faults.json"
STOP_GRACE_S = 10.0


def enabled(*, no_edge: bool = False) -> bool:
    """On unless ``--no-edge`` or ``DEMO_EDGE=0`` (settings.DEMO_EDGE)."""
    return not no_edge and bool(getattr(settings, "DEMO_EDGE", True))


@dataclass
class SitePlan:
    slug: str
    site_id: int
    device_id: int
    directory: Path
    config_path: Path
    base_port: int
    miners: int
    enrolled: bool  # a new device this run (False: the stored credentials were reused)


@dataclass
class DemoPlan:
    edge_dir: Path
    log_dir: Path
    server_url: str
    inventory_path: Path
    faults_path: Path
    ground_truth_path: Path
    base_port: int
    control_port: int
    sites: list[SitePlan] = field(default_factory=list)

    @property
    def miners(self) -> int:
        return sum(s.miners for s in self.sites)

    def simulator_command(self) -> list[str]:
        return [
            sys.executable, "-m", "edge.simulator", "--inventory", str(self.inventory_path),
            "--base-port", str(self.base_port), "--faults", str(self.faults_path),
            "--ground-truth", str(self.ground_truth_path), "--control-port", str(self.control_port), "--seed", "7",
        ]  # fmt: skip

    def collector_command(self, site: SitePlan) -> list[str]:
        return [sys.executable, "-m", "edge.collector", "--config", str(site.config_path)]


def server_url_for(host: str, port: int) -> str:
    """The URL the collectors use: a wildcard listen address is reached on loopback."""
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - a comparison, nothing binds here
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --- Files ----------------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def collector_config(*, server_url: str, base_port: int, ports: int, poll_interval_s: float) -> str:
    """The demo collector's site.toml (every other key keeps the collector's default)."""
    return (
        "# Written by manage.py run_embedded (hashinsight/demo/edge_demo.py) at every start; edits are lost.\n"
        'inventory = "server"\n\n'
        "[server]\n"
        f'url = "{server_url}"\n'
        'credentials = "credentials.json"\n'
        "max_backoff_s = 30\n\n"
        "[collector]\n"
        f"poll_interval_s = {poll_interval_s:g}\n"
        f"poll_timeout_s = {min(5.0, poll_interval_s / 2):g}\n"
        f"health_interval_s = {max(5.0, poll_interval_s):g}\n"
        "inventory_refresh_s = 300\n\n"
        "[spool]\n"
        'path = "spool.sqlite3"\n\n'
        "[adapters]\n"
        'default = "cgminer"\n'
        f"simulator_base_port = {base_port}\n"
        'simulator_host = "127.0.0.1"\n'
        f"simulator_ports = {ports}\n"
    )


def _stored_device(path: Path, site):
    """The active device of ``site`` whose token the credentials file at ``path`` holds, or None. The
    token is checked as the edge API checks it, without recording a visit (the collector has not called)."""
    from telemetry.edge_auth import device_of_token

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    token = data.get("token") if isinstance(data, dict) else None
    device = device_of_token(token) if isinstance(token, str) else None
    return device if device is not None and device.site_id == site.pk else None


def ensure_device(site, directory: Path, server_url: str) -> tuple[int, bool]:
    """(device id, newly enrolled) for the demo collector of ``site``; its credentials at
    ``directory/credentials.json`` (0600), in the collector's format."""
    from edge.collector.credentials import save_credentials
    from telemetry import devices
    from telemetry.models import EdgeDevice

    path = directory / "credentials.json"
    device = _stored_device(path, site)
    if device is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("server_url") != server_url or path.stat().st_mode & 0o077:
            # Same token, another port this time (or loose permissions): rewrite, 0600.
            save_credentials(path, data, server_url=server_url)
        return device.pk, False
    # Earlier demo devices of this site whose credentials are lost or refused: revoke, so the site page
    # lists one live demo collector, not one per lost var/ directory.
    for old in EdgeDevice.objects.filter(site=site, name=f"{DEVICE_NAME}-{site.slug}", revoked_at__isnull=True):
        devices.device_revoke(device=old)
    _, code = devices.enrollment_code_create(site=site)
    device, token, hmac_secret = devices.device_register(code=code, name=f"{DEVICE_NAME}-{site.slug}", version="demo")
    save_credentials(
        path,
        {"token": token, "hmac_secret": hmac_secret, "device_id": device.pk, "site_id": site.pk},
        server_url=server_url,
    )
    return device.pk, True


def resolve_fault_plan(template: dict, miners_by_site: dict[str, list]) -> dict:
    """The simulator's plan: each fault's ``demo_pick`` {site, cooling?, nth} replaced by ``miners`` [serial]
    (the nth active miner of the site, by id, air-cooled if asked). A pick that finds no miner is dropped."""
    from miners.models import Miner

    faults = []
    for spec in template.get("faults", []):
        spec = dict(spec)
        pick = spec.pop("demo_pick", None)
        if pick is not None:
            candidates = [
                m
                for m in miners_by_site.get(pick["site"], [])
                if m.status == Miner.Status.ACTIVE and (not pick.get("cooling") or m.model.cooling == pick["cooling"])
            ]
            nth = int(pick.get("nth", 0))
            if not candidates:
                logger.warning("demo fault %s: no matching miner at %s; left out", spec.get("kind"), pick["site"])
                continue
            spec["miners"] = [candidates[min(nth, len(candidates) - 1)].serial]
        faults.append(spec)
    return {"faults": faults}


def prepare(
    *,
    server_url: str,
    base_port: int = DEFAULT_BASE_PORT,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    fault_plan: Path = FAULT_PLAN,
    var_dir: Path | None = None,
) -> DemoPlan:
    """Devices, credentials and files for the demo sites that exist (none: an empty plan)."""
    from miners.models import Miner
    from sites.models import Site

    var_dir = Path(var_dir or settings.VAR_DIR)
    edge_dir = var_dir / "edge"
    plan = DemoPlan(
        edge_dir=edge_dir, log_dir=var_dir / "log", server_url=server_url,
        inventory_path=edge_dir / "inventory.json", faults_path=edge_dir / "faults.json",
        ground_truth_path=edge_dir / "ground-truth.jsonl", base_port=base_port, control_port=base_port - 1,
    )  # fmt: skip
    try:
        sites = {s.slug: s for s in Site.objects.filter(slug__in=DEMO_SITES)}
        inventory: list[dict] = []
        miners_by_site: dict[str, list] = {}
        port = base_port
        for slug in DEMO_SITES:
            site = sites.get(slug)
            if site is None:
                continue
            miners = list(
                Miner.objects.filter(site=site)
                .exclude(status=Miner.Status.RETIRED)
                .select_related("model")
                .order_by("pk")
            )
            if not miners:
                continue
            if port + len(miners) - 1 > MAX_PORT:
                logger.warning("edge demo: no ports left below %d for %s; its collector is not started", MAX_PORT, slug)
                continue
            miners_by_site[slug] = miners
            for i, m in enumerate(miners):
                inventory.append({"serial": m.serial, "model": m.model.code, "status": m.status, "port": port + i})
            directory = edge_dir / slug
            device_id, enrolled = ensure_device(site, directory, server_url)
            config_path = directory / "site.toml"
            _write_private(
                config_path,
                collector_config(
                    server_url=server_url, base_port=port, ports=len(miners), poll_interval_s=poll_interval_s
                ),
            )
            plan.sites.append(
                SitePlan(slug=slug, site_id=site.pk, device_id=device_id, directory=directory, config_path=config_path,
                         base_port=port, miners=len(miners), enrolled=enrolled)
            )  # fmt: skip
            port += len(miners)
        if plan.sites:
            _write_private(plan.inventory_path, json.dumps({"miners": inventory}, indent=1))
            template = json.loads(Path(fault_plan).read_text(encoding="utf-8"))
            _write_private(plan.faults_path, json.dumps(resolve_fault_plan(template, miners_by_site), indent=1))
    finally:
        # The server about to start opens its own connections; this thread's one is not needed again.
        # Inside a caller's transaction (a test), closing it would break the caller instead.
        if not connection.in_atomic_block:
            close_old_connections()
    return plan


# --- Processes ------------------------------------------------------------------------------------------


def _ours(pid: int, marker: str) -> bool:
    """Whether process ``pid`` is still one of the demo's (its command line names our edge directory)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline and "edge." in cmdline


def _wait_listening(port: int, *, timeout: float, alive) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.2)
    return False


class EdgeDemo:
    """Starts and stops the simulator and the collectors of a ``DemoPlan``."""

    def __init__(self, plan: DemoPlan, *, popen=subprocess.Popen, start_timeout: float = 30.0):
        self.plan = plan
        self._popen = popen
        self._start_timeout = start_timeout
        self.processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def pid_file(self) -> Path:
        return self.plan.edge_dir / "pids.json"

    def stop_leftovers(self) -> list[int]:
        """Stop the children a previous run left behind (killed before it could stop them)."""
        try:
            pids = json.loads(self.pid_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        stopped = []
        for pid in pids.values() if isinstance(pids, dict) else []:
            if isinstance(pid, int) and pid > 1 and _ours(pid, str(self.plan.edge_dir)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
                    stopped.append(pid)
        deadline = time.monotonic() + STOP_GRACE_S
        for pid in stopped:
            while _ours(pid, str(self.plan.edge_dir)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _ours(pid, str(self.plan.edge_dir)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen | None:
        self.plan.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.plan.log_dir / f"edge-{name}.log"
        with self._lock:
            if self._stopped:
                return None
            with log_path.open("ab") as log:
                process = self._popen(
                    command, cwd=str(settings.BASE_DIR), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,  # its own process group, stopped as one
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )  # fmt: skip
            self.processes[name] = process
            _write_private(self.pid_file, json.dumps({n: p.pid for n, p in self.processes.items()}))
        logger.info("edge demo: started %s (pid %d), log %s", name, process.pid, log_path)
        return process

    def start(self) -> bool:
        """The simulator, then (once its miners answer) one collector per site. False if it failed."""
        if not self.plan.sites:
            return False
        self.stop_leftovers()
        simulator = self._spawn("simulator", self.plan.simulator_command())
        if simulator is None:
            return False
        last_port = self.plan.base_port + self.plan.miners - 1
        if not _wait_listening(last_port, timeout=self._start_timeout, alive=lambda: simulator.poll() is None):
            logger.error(
                "edge demo: the simulator did not start (see %s); no collectors started",
                self.plan.log_dir / "edge-simulator.log",
            )
            return False
        for site in self.plan.sites:
            self._spawn(f"collector-{site.slug}", self.plan.collector_command(site))
        return True

    def start_when_listening(self, server) -> threading.Thread:
        """Start in a thread once the uvicorn ``server`` accepts connections."""

        def run():
            while not server.started:
                if server.should_exit:
                    return
                time.sleep(0.1)
            try:
                self.start()
            except Exception:
                logger.exception("edge demo: start failed")

        thread = threading.Thread(target=run, name="edge-demo", daemon=True)
        thread.start()
        return thread

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to every child's process group, SIGKILL to those still there after ``grace`` seconds."""
        with self._lock:
            self._stopped = True
            processes = list(self.processes.items())
        for _, process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("edge demo: %s did not stop in %.0f s; killing it", name, grace)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.pid_file.unlink(missing_ok=True)
