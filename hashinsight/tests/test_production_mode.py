"""Production settings end to end, in real processes: collectstatic under the manifest storage,
``check --deploy``, then uvicorn serving a portal page and the probes over plain http, and the same
server with PostgreSQL unreachable answering 503. Needs PostgreSQL and Redis (CI); skips otherwise."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.db import connection

ROOT = Path(django_settings.BASE_DIR)
HOST = "ops.example.test"
METRICS_TOKEN = "scrape-secret-for-the-test"


def _database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def production_env(db, on_postgres, redis_url, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HASHINSIGHT_", "METRICS_"))}
    return env | {
        "HASHINSIGHT_ENV": "production",
        "SECRET_KEY": Fernet.generate_key().decode() * 2,  # long and random, as check --deploy wants
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": _database_url(),  # the test database pytest-django made (and migrated)
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": HOST,
        "STATIC_ROOT": str(tmp_path / "staticfiles"),
        "TRUSTED_PROXY_COUNT": "1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_LEVEL": "WARNING",
    }


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _uvicorn(env: dict, log: Path):
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "hashinsight.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--proxy-headers", "--lifespan", "off"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.time() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None and time.time() < deadline, log.read_text(errors="replace")[-3000:]
                    time.sleep(0.1)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One plain-http request, redirects not followed (a 301 to https is itself the answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_production_builds_checks_and_serves_over_plain_http_inside_the_network(production_env, tmp_path):
    collected = _manage(production_env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr[-3000:]
    manifest = json.loads((tmp_path / "staticfiles" / "staticfiles.json").read_text())["paths"]
    assert "vendor/chart.js/chart.umd.js" in manifest  # its source map was found and rewritten

    deploy = _manage(production_env, "check", "--deploy")
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    # HSTS for subdomains and preloading are the deployer's call about their domain; nothing else may warn.
    warnings = set(re.findall(r"\(security\.(W\d+)\)", deploy.stdout + deploy.stderr))
    assert warnings <= {"W005", "W021"}, deploy.stdout + deploy.stderr

    # The pool (production's default) waits DB_POOL_TIMEOUT_S for a connection before giving up.
    down_env = production_env | {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5999/nothing_listens_here",
        "DB_POOL_TIMEOUT_S": "1",
    }
    with _uvicorn(production_env, tmp_path / "web.log") as port, _uvicorn(down_env, tmp_path / "down.log") as down:
        # Probes from inside the network: plain http, the container's own address as Host.
        status, _, body = _get(port, "/ready")
        assert status == 200, body
        assert json.loads(body)["ready"] is True
        assert _get(port, "/api/health")[0] == 200
        assert _get(port, "/metrics")[0] == 401
        assert _get(port, "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})[0] == 200
        # Everything else still goes to https.
        status, headers, _ = _get(port, "/accounts/login/", {"Host": HOST})
        assert status == 301
        assert headers["location"] == f"https://{HOST}/accounts/login/"
        # Behind the load balancer (it terminates TLS and says so): the page and its hashed assets.
        https = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        status, _, page = _get(port, "/accounts/login/", https)
        assert status == 200, page[-2000:]
        css = re.search(rb'href="(/static/vendor/bootstrap/bootstrap\.min\.[0-9a-f]{12}\.css)"', page)
        assert css, page[:2000]
        assert _get(port, css.group(1).decode(), https)[0] == 200

        # PostgreSQL unreachable: 503 with Retry-After everywhere, never 500.
        status, headers, _ = _get(down, "/ready")
        assert status == 503
        assert "retry-after" in headers
        status, headers, body = _get(down, "/api/v1/sites/", https | {"Authorization": "Bearer hi_abcd1234_x"})
        assert (status, json.loads(body)["error_code"]) == (503, "database_unavailable")
        assert headers["retry-after"] == "5"
        status, headers, body = _get(down, "/", https | {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
        assert status == 503, body[-2000:]
        assert headers["retry-after"] == "5"


@pytest.mark.parametrize(
    ("missing", "message"),
    [("METRICS_TOKEN", "METRICS_PUBLIC=true"), ("TRUSTED_PROXY_COUNT", "TRUSTED_PROXY_COUNT must be set")],
)
def test_production_refuses_to_start_without_an_explicit_choice(production_env, missing, message):
    env = {k: v for k, v in production_env.items() if k != missing}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=env | {"DJANGO_SETTINGS_MODULE": "hashinsight.settings"}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
    chosen = env | ({"METRICS_PUBLIC": "true"} if missing == "METRICS_TOKEN" else {"TRUSTED_PROXY_COUNT": "0"})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=chosen | {"DJANGO_SETTINGS_MODULE": "hashinsight.settings"}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
