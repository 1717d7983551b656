"""Shared test fixtures. Services: tests that need Redis or PostgreSQL skip (saying why) when the
service is unreachable, unless REQUIRE_SERVICES=1 (CI), where unreachable is a failure."""

from __future__ import annotations

import contextlib
import os
import socket
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# `make mutation` works in a copy of the tree under mutants/; a plain `pytest` must not collect it twice.
collect_ignore = ["mutants"]


def pytest_configure(config):
    """Each xdist worker gets a Redis cache database of its own (12 + its number). Every test starts
    with ``cache.clear()`` (FLUSHDB): on a shared database one worker's clear would empty the cache in
    the middle of the other worker's test."""
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    cache = settings.CACHES["default"]
    if worker.startswith("gw") and cache["BACKEND"].endswith("RedisCache"):
        parsed = urlparse(cache["LOCATION"])
        cache["LOCATION"] = parsed._replace(path=f"/{12 + int(worker[2:])}").geturl()


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, url: str | None, default_port: int) -> None:
    if url and _reachable(url, default_port):
        return
    reason = (
        f"{name} unreachable (set {name.upper()}_URL to a running server)" if url else f"{name.upper()}_URL not set"
    )
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    need_service("redis", url, 6379)
    return url


@pytest.fixture
def on_postgres(settings):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 but DATABASE_URL does not point at PostgreSQL")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _isolated_cache():
    from django.core.cache import cache

    with contextlib.suppress(Exception):  # a down Redis must not break unrelated tests
        cache.clear()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def farm(db):
    """Two sites, each with a zone and miners; two clients with miners on both sites; users per role."""
    from hashinsight.tests.factories import build_farm

    return build_farm()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness would dominate a suite that creates hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run inline in tests, unless the test is marked ``real_worker``; errors surface in the test."""
    from celery._state import _set_task_join_will_block

    from hashinsight.celery import app

    # Celery's process-global "joining a result would block" flag, set when a worker's pool starts in this
    # process: a test that started one left it set, and every later test calling .apply().get() failed with
    # "Never call result.get() within a task!" (seen in CI, depending on which files shared an xdist worker).
    _set_task_join_will_block(False)
    app.conf.task_always_eager = request.node.get_closest_marker("real_worker") is None
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a test (or a page it rendered in a thread) that activated zh-Hans
    and never deactivated it left later tests of that worker comparing Chinese text to English."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
