"""Test doubles for the collector: a tiny edge API server (stdlib http.server in a thread) that can be told to
fail, drop connections or refuse, and records what it stored; and an adapter that makes samples up."""

from __future__ import annotations

import gzip
import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from edge.collector.adapters.base import Adapter
from edge.collector.config import parse_config
from edge.collector.sample import MinerSpec, Sample

PREFIX = "/api/edge/v1/"
TOKEN = "hie_abc123_s3cr3t-token-value"


class FakeEdgeServer:
    """Answers like the server's edge API. ``script[path]`` is a list of actions used up one per request:
    ``(status, headers)`` answers that status; ``"drop"`` stores the batch and closes the connection without an
    answer (a lost response); when the list is empty the request is served normally (idempotent on miner+ts)."""

    def __init__(self):
        self.script: dict[str, list] = defaultdict(list)
        self.requests: list[dict] = []  # every request: method, path, headers, body (decoded JSON)
        self.stored: dict[tuple[str, str], dict] = {}
        self.events: dict[str, dict] = {}
        self.health: list[dict] = []
        self.inventory_pages: dict[str, dict] = {}
        self.register_answer = {"device_id": 7, "site_id": 3, "token": TOKEN, "hmac_secret": "hm4c-s3cret"}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _body(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                return json.loads(raw) if raw else None

            def _answer(self, status: int, body=None, headers: dict | None = None):
                data = json.dumps(body if body is not None else {"error_code": "x", "message": "scripted"}).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def _handle(self, method: str):
                body = self._body() if method == "POST" else None
                path = self.path[len(PREFIX) :] if self.path.startswith(PREFIX) else self.path
                route = path.split("?", 1)[0]
                with server.lock:
                    server.requests.append(
                        {"method": method, "path": path, "headers": dict(self.headers), "body": body}
                    )
                    action = server.script[route].pop(0) if server.script[route] else None
                if isinstance(action, tuple):
                    status, headers = action
                    return self._answer(status, headers=headers)
                if route == "register":
                    return self._answer(201, server.register_answer)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401)
                if route == "telemetry/ingest":
                    result = server.store_samples(body["samples"])
                    if action == "drop":
                        self.close_connection = True
                        self.connection.close()
                        return None
                    return self._answer(200, result)
                if route == "events/safety/batch":
                    new = [e for e in body["events"] if e["event_id"] not in server.events]
                    server.events.update({e["event_id"]: e for e in body["events"]})
                    return self._answer(200, {"accepted": len(new), "duplicates": len(body["events"]) - len(new)})
                if route == "health":
                    server.health.append(body)
                    return self._answer(200, {"health": body})
                if route == "inventory":
                    return self._answer(200, server.inventory_pages[path])
                return self._answer(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def store_samples(self, samples: list[dict]) -> dict:
        accepted = duplicates = 0
        rejected = []
        with self.lock:
            for index, s in enumerate(samples):
                if s["miner"].startswith("UNKNOWN"):
                    rejected.append({"index": index, "miner": s["miner"], "reason": "unknown_miner"})
                    continue
                key = (s["miner"], s["ts"])
                if key in self.stored:
                    duplicates += 1
                else:
                    self.stored[key] = s
                    accepted += 1
        return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}

    def posts(self, route: str) -> list[dict]:
        return [r for r in self.requests if r["path"].split("?", 1)[0] == route]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeAdapter(Adapter):
    """Makes a sample up for every poll: hashrate from the serial's number, the poll's ts; or offline."""

    name = "cgminer"

    def __init__(self, offline: set[str] | None = None, errors: dict[str, list[str]] | None = None):
        self.offline = offline or set()
        self.errors = errors or {}
        self.polled: list[tuple[str, str]] = []
        self.executed: list[tuple[str, str, dict]] = []

    async def poll(self, miner: MinerSpec, *, ts: str) -> Sample:
        self.polled.append((miner.serial, ts))
        if miner.serial in self.offline:
            return Sample.offline(miner.serial, ts)
        errors = self.errors.get(miner.serial, [])
        return Sample(
            miner=miner.serial,
            ts=ts,
            status="error" if "overheat" in errors else "hashing",
            hashrate_ths=0.0 if "overheat" in errors else 100.0,
            temp_chip_max_c=70.0,
            fan_rpm=[0, 5000] if "fan_failure" in errors else [5000, 5000],
            errors=errors,
        )

    async def execute(self, miner, command, params):
        self.executed.append((miner.serial, command, params))
        return {"ok": True}


def make_config(tmp_path: Path, url: str = "http://127.0.0.1:9", *, miners: int = 3, **sections):
    """A Config for tests: static inventory of ``miners`` miners (M-001…), spool and credentials in tmp_path."""
    data = {
        "inventory": "static",
        "server": {"url": url, "credentials": "creds.json", "timeout_s": 5},
        "collector": {"poll_interval_s": 60, "batch_size": 2},
        "spool": {"path": "spool.sqlite3"},
        "miners": [{"serial": f"M-{i:03d}", "host": "127.0.0.1", "port": 4028} for i in range(1, miners + 1)],
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return parse_config(data, tmp_path / "site.toml")
