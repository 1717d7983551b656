"""edge/ is a separate deployable: it imports nothing from the Django apps, and the simulator runs as a command."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

EDGE = Path(__file__).resolve().parents[1]
ROOT = EDGE.parent
# the project's own packages and the web framework: none of them may be imported from edge/
FORBIDDEN = {"django", "rest_framework", "hashinsight", "sites", "miners", "telemetry", "commands", "intelligence"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", ""))
            in (
                "import_module",
                "__import__",
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_no_module_in_edge_imports_a_django_app():
    checked = []
    for path in sorted(EDGE.rglob("*.py")):
        relative = path.relative_to(EDGE)
        # tests of other helpers may drive the server end to end; the shipped code and these tests may not
        if relative.parts[0] == "tests" and not path.name.startswith("test_simulator"):
            continue
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"edge/{relative} imports {sorted(bad)}"
        checked.append(relative)
    assert Path("simulator/server.py") in checked and Path("cgminer.py") in checked


def test_importing_the_simulator_loads_no_django():
    code = (
        "import sys, edge.cgminer, edge.simulator.cli, edge.simulator.server, edge.simulator.api\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "print(bad); raise SystemExit(1 if bad else 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _free_port_pair() -> int:
    """Three free ports in a row, below the ephemeral range; parallel workers start apart."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    start = (int(worker) if worker.isdigit() else 0) * 1511 + os.getpid() % 997 + 6000
    for k in range(40):
        base = 20000 + (start + k * 277) % 11990
        ok = True
        for port in (base, base + 1, base + 2):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free ports")


def _ask(port: int, command: str) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(json.dumps({"command": command}).encode())
        data = b""
        while b"\x00" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data.split(b"\x00")[0])


def test_command_line_serves_writes_ground_truth_and_stops_on_sigterm(tmp_path):
    base = _free_port_pair()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"faults": [{"kind": "hashboard_failure", "start": 0, "duration": 60, "miners": [1]}]}))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            [
                {"serial": "HI0000007", "model": "antminer-s21-200t"},
                {"serial": "HI0000008", "model": "avalon-a1246-90t"},
            ]
        )
    )
    truth = tmp_path / "truth.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    args = [
        sys.executable, "-m", "edge.simulator", "--inventory", str(inventory), "--base-port", str(base),
        "--faults", str(plan), "--ground-truth", str(truth), "--control-port", str(base + 2), "--seed", "4",
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it listens (no fixed sleep)
            try:
                reply = _ask(base + 1, "stats")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                time.sleep(0.05)
        assert reply["STATS"][0]["SN"] == "HI0000008" and reply["STATS"][1]["chain_rate3"] == "0.00"
        assert _ask(base, "version")["VERSION"][0]["SN"] == "HI0000007"
        assert len(_ask(base + 2, "miners")["MINERS"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "serving 2 miners" in output
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [(r["serial"], r["kind"]) for r in rows] == [("HI0000008", "hashboard_failure")]


def test_command_line_refuses_bad_input_with_a_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps([{"serial": "X", "model": "antminer-s99-1t"}]))
    plan = tmp_path / "plan.json"
    plan.write_text('{"faults": [{"kind": "offline", "miners": [5]}]}')
    for extra, message in (
        (["--inventory", str(inventory)], "unknown model"),
        (["--miners", "2", "--faults", str(plan)], "index 5 out of range"),
        (["--miners", "0"], "at least 1"),
        (["--speed", "0"], "--speed must be positive"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "edge.simulator", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and message in done.stderr, (extra, done.stderr)
