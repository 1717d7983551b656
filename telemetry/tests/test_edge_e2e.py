"""End to end, with the real programs: the miner simulator (subprocess) serves a handful of site A's miners,
one of them overheating at once; the edge collector (subprocess) enrolls with ``--register`` and pushes to
the live server; ingest fills the live rows; the 5-minute rollup turns them into history; and the
overheat alert appears in a logged-in browser on the site dashboard without a reload.

Nothing sleeps for a fixed time: every step polls for its outcome with a deadline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from edge.tests.test_simulator import free_base_port
from hashinsight.demo.edge_demo import _wait_listening, collector_config
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.tests.factories import MinerFactory
from miners.models import Miner
from telemetry import devices, rollups
from telemetry.models import Alert, EdgeDevice, History5m, LiveStatus, RawSample
from telemetry.tests.test_telemetry_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = str(settings.BASE_DIR)


def wait_until(predicate, *, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}:\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


@contextlib.contextmanager
def child(command: list[str], log_path):
    """A child process in a group of its own, stopped (SIGTERM, then SIGKILL) whatever happens."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_simulator_to_collector_to_live_history_and_an_alert_in_the_browser(
    page,  # noqa: F811
    live_server,
    farm,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setattr("hashinsight.portal.views.telemetry.POLL_MS", 500)
    monkeypatch.setattr("telemetry.telemetry_selectors.SUMMARY_FRESH_S", 0)  # each poll rebuilds
    site = farm.site_a
    for _ in range(4):
        MinerFactory(zone=farm.zone_a, site=site, customer=farm.client_x)
    miners = list(Miner.objects.filter(site=site).select_related("model").order_by("pk"))
    hot = miners[2]
    # The other site's miners are not in this device's inventory: never polled, never written.
    other = list(Miner.objects.filter(site=farm.site_b).values_list("pk", flat=True))

    # The browser is on the dashboard before any data: everything after this arrives live.
    login(page, live_server, farm.users["owner"])
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/sites/{site.slug}/telemetry/")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("[data-testid=state-offline]").inner_text() == str(len(miners))

    base = free_base_port(len(miners))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps({"miners": [{"serial": m.serial, "model": m.model.code} for m in miners]}), encoding="utf-8"
    )
    plan = tmp_path / "faults.json"
    # Chips climb 20 °C a second from the start, past the 90 °C rule within a second or two, and cool
    # slowly after the firmware's shutdown at 110 °C: above 90 °C for about a minute.
    plan.write_text(
        json.dumps({"faults": [{"kind": "overheat", "start": 0, "miners": [hot.serial],
                                "params": {"climb_c_per_min": 1200, "limit_c": 110}}]}),
        encoding="utf-8",
    )  # fmt: skip
    config = tmp_path / "site.toml"
    config.write_text(
        collector_config(server_url=live_server.url, base_port=base, ports=len(miners), poll_interval_s=1),
        encoding="utf-8",
    )
    sim_log, col_log, reg_log = tmp_path / "simulator.log", tmp_path / "collector.log", tmp_path / "register.log"
    logs = (sim_log, col_log, reg_log)

    simulator_cmd = [sys.executable, "-m", "edge.simulator", "--inventory", str(inventory),
                     "--base-port", str(base), "--faults", str(plan)]  # fmt: skip
    with child(simulator_cmd, sim_log) as simulator:
        assert _wait_listening(base + len(miners) - 1, timeout=20, alive=lambda: simulator.poll() is None), (
            sim_log.read_text()
        )
        # Enrollment through the collector's own --register against the live server.
        _, code = devices.enrollment_code_create(site=site, actor=farm.users["owner"])
        register = subprocess.run(
            [sys.executable, "-m", "edge.collector", "--config", str(config), "--register", code, "--name", "e2e"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        reg_log.write_text(register.stdout + register.stderr)
        assert register.returncode == 0, register.stdout + register.stderr
        device = EdgeDevice.objects.get(site=site, name="e2e")
        assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0

        with child([sys.executable, "-m", "edge.collector", "--config", str(config)], col_log) as collector:
            # Live rows for every miner of the site, and nothing for the other site.
            wait_until(
                lambda: LiveStatus.objects.filter(miner__site=site, status="hashing").count() >= len(miners) - 1,
                timeout=20, what="live rows of the simulated miners", logs=logs,
            )  # fmt: skip
            live = {row.miner_id: row for row in LiveStatus.objects.filter(miner__site=site)}
            assert set(live) == {m.pk for m in miners}
            for m in miners:
                if m.pk != hot.pk:
                    assert live[m.pk].status == "hashing"
                    assert 0.8 * 200_000 < live[m.pk].hashrate_ghs < 1.2 * 200_000  # an S21 200T, in GH/s
            assert not LiveStatus.objects.filter(miner_id__in=other).exists()

            # The overheat alert, raised at ingest, shows up on the open page by itself.
            row = page.locator("[data-testid=recent-alerts] tr", has_text=hot.serial).first
            row.wait_for(timeout=20_000)
            assert "Chip temperature above" in row.inner_text() or "Overheat" in row.inner_text()
            assert Alert.objects.filter(miner=hot, alert_type="chip_temp_above", status=Alert.Status.OPEN).exists()
            assert not Alert.objects.filter(miner__in=[m for m in miners if m != hot]).exists()
            page.wait_for_function(
                "(n) => document.querySelector('[data-testid=state-offline]').textContent === String(n)",
                arg=0,  # every miner reports now (the hot one hashing or shut down: "error", not offline)
            )
            assert page.evaluate("window.__notReloaded") is True
            stop(collector)
            assert collector.returncode == 0, col_log.read_text()[-3000:]

    device.refresh_from_db()
    assert device.last_seen_at is not None  # its token was used (register, inventory, ingest, health)

    # The 5-minute rollup job for the windows the samples fall in (its clock set past their end and the
    # grace, so the windows are complete), instead of waiting five minutes.
    stamps = RawSample.objects.filter(site_id=site.pk).order_by("ts").values_list("ts", flat=True)
    first, last = stamps.first(), stamps.last()
    window_end = rollups.floor_window(last) + timedelta(minutes=5)
    result = rollups.rollup_pending_5m(now=window_end + timedelta(seconds=settings.TELEMETRY_ROLLUP_GRACE_S))
    assert result["window_start"] == rollups.floor_window(first).isoformat()
    assert result["site_ids"] == [site.pk]
    history = {h.miner_id: h for h in History5m.objects.filter(bucket=rollups.floor_window(last))}
    assert set(history) == {m.pk for m in miners}
    raw_counts = RawSample.objects.filter(site_id=site.pk, ts__gte=rollups.floor_window(last))
    for m in miners:
        assert history[m.pk].sample_count == raw_counts.filter(miner_id=m.pk).count() >= 1
    assert history[hot.pk].max_temp_chip_max_c > 90
    assert all(h.max_temp_chip_max_c < 90 for pk, h in history.items() if pk != hot.pk)
    assert timezone.now() - last < timedelta(minutes=1)
