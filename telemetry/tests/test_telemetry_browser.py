"""Real-browser tests of the telemetry pages: the site dashboard updates itself when new live rows
arrive (no reload), and the miner charts switch range in place. Both also check that nothing overflows
a 390 px phone. Set TELEMETRY_SCREENSHOT_DIR to keep screenshots of each page (desktop and 390 px)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - shared fixtures
from hashinsight.portal.views.telemetry import LiveTable
from hashinsight.tests.factories import MinerFactory
from telemetry.models import Alert, History5m, LiveStatus, RawSample, SiteHistory5m
from telemetry.tests.test_telemetry_api import live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, live_server, user):  # noqa: F811
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def shot(page, name):  # noqa: F811
    folder = os.environ.get("TELEMETRY_SCREENSHOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def assert_fits_390(page, name):  # noqa: F811
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # charts resize on the next frame
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} is {overflow}px wider than a 390 px screen"
    shot(page, f"{name}-390")
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def site_with_data(farm):
    """Site A with a dozen more miners, live rows, 24 h of fleet history and an open alert."""
    now = timezone.now()
    extra = [MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_x) for _ in range(12)]
    rows = [live(m, ths=150.0 + 4 * i, temp=58.0 + 3 * i, power=3200.0 + 10 * i) for i, m in enumerate(extra)]
    rows.append(live(farm.miners[("site-a", "own")], ths=190.0, temp=71.0))
    LiveStatus.objects.bulk_create(rows)
    start = now.replace(second=0, microsecond=0) - timedelta(hours=24)
    start -= timedelta(minutes=start.minute % 5)
    SiteHistory5m.objects.bulk_create(
        [
            SiteHistory5m(site=farm.site_a, bucket=start + timedelta(minutes=5 * i), miners_reporting=13,
                          miners_hashing=13, hashrate_ths=2300.0 + (i % 24) * 10, power_w=42000.0, uptime_fraction=1)
            for i in range(288)
        ]
    )  # fmt: skip
    Alert.objects.create(
        site=farm.site_a, miner=extra[-1], customer=farm.client_x, alert_type="chip_temp_above",
        severity="warning", message="Chip temperature 91.0 °C above 90 °C", dedupe_key="hot-1",
        first_seen=now, last_seen=now,
    )  # fmt: skip
    return farm, extra


def test_dashboard_shows_figures_and_updates_when_new_live_rows_arrive(
    page,  # noqa: F811
    live_server,
    site_with_data,
    monkeypatch,
):
    farm, extra = site_with_data
    monkeypatch.setattr("hashinsight.portal.views.telemetry.POLL_MS", 500)
    monkeypatch.setattr("telemetry.telemetry_selectors.SUMMARY_FRESH_S", 0)  # each poll rebuilds (eagerly)
    login(page, live_server, farm.users["owner"])
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/telemetry/")
    page.evaluate("window.__notReloaded = true")
    fleet = page.locator("[data-testid=fleet-hashrate]")
    before = sum(150.0 + 4 * i for i in range(12)) + 190.0
    assert fleet.inner_text() == f"{before:,.1f}"
    assert page.locator("[data-testid=state-hashing]").inner_text() == "13"
    assert page.locator("[data-testid=alerts-warning]").inner_text() == "1"
    # Site A's two farm miners have never reported: offline.
    assert page.locator("[data-testid=state-offline]").inner_text() == "2"
    # The 24 h fleet chart and the temperature histogram are drawn.
    page.wait_for_function("() => Chart.getChart('fleet-hashrate-chart')?.data.labels.length >= 287")
    assert page.evaluate("Chart.getChart('temp-histogram').data.datasets[0].data.reduce((a, b) => a + b, 0)") == 13
    shot(page, "dashboard")

    # New rows arrive (ingest would write them): a client's miner comes online, a hot one goes silent.
    newcomer = MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_y)
    LiveStatus.objects.bulk_create([live(newcomer, ths=200.0, temp=97.0)])
    LiveStatus.objects.filter(pk=extra[0].pk).update(last_seen=timezone.now() - timedelta(hours=1))
    after = before + 200.0 - 150.0
    page.wait_for_function(
        "(expected) => document.querySelector('[data-testid=fleet-hashrate]').textContent === expected",
        arg=f"{after:,.1f}",
    )
    assert page.locator("[data-testid=state-offline]").inner_text() == "3"
    assert page.locator("[data-testid=worst-temp] tr").first.inner_text().startswith(newcomer.serial)
    assert page.evaluate("window.__notReloaded") is True
    assert_fits_390(page, "dashboard")

    page.goto(f"{live_server.url}/sites/{farm.site_a.slug}/telemetry/live/?sort=-temperature")
    assert page.locator("[data-testid=live-row]").first.inner_text().startswith(newcomer.serial)
    shot(page, "live-list")
    assert_fits_390(page, "live-list")

    # Keyset pages: Next, Next, Previous, First — each a bookmarkable URL keeping the sort.
    monkeypatch.setattr(LiveTable, "page_size", 5)
    page.reload()
    rows = page.locator("[data-testid=live-row]")
    first = rows.all_inner_texts()
    assert len(first) == 5 and first[0].startswith(newcomer.serial)
    page.click("[data-testid=page-next]")
    second = rows.all_inner_texts()
    assert len(second) == 5 and not set(second) & set(first)
    assert "cursor=" in page.url and "sort=-temperature" in page.url
    page.click("[data-testid=page-next]")
    third = rows.all_inner_texts()  # the last page: the rest of the site's rows
    assert len(third) == LiveStatus.objects.filter(site_id=farm.site_a.pk).count() - 10
    assert not set(third) & set(first + second) and page.locator("[data-testid=page-next]").count() == 0
    shot(page, "live-list-page-3")
    assert_fits_390(page, "live-list-page-3")
    page.click("[data-testid=page-previous]")
    assert rows.all_inner_texts() == second
    page.click("[data-testid=page-first]")
    assert rows.all_inner_texts() == first and page.locator("[data-testid=page-previous]").count() == 0


def test_miner_charts_switch_range_without_reload(page, live_server, site_with_data):  # noqa: F811
    farm, extra = site_with_data
    miner = extra[3]
    now = timezone.now().replace(microsecond=0)
    RawSample.objects.bulk_create(
        [RawSample(miner=miner, ts=now - timedelta(minutes=i), site_id=miner.site_id,
                   customer_id=miner.customer_id, hashrate_ths=160.0 + (i % 7),
                   temp_chip_max_c=68.0 + (i % 5), temp_inlet_c=24.0, temp_outlet_c=44.0, fan_rpm=[6000, 6100],
                   power_w=3300.0, status="hashing") for i in range(0, 24 * 60, 2)]
    )  # fmt: skip
    History5m.objects.bulk_create(
        [History5m(miner=miner, bucket=now - timedelta(minutes=5 * (i + 1)), site_id=miner.site_id,
                   customer_id=miner.customer_id, sample_count=5,
                   hashing_count=5, uptime_fraction=1, avg_hashrate_ths=150.0 + (i % 30), avg_temp_chip_max_c=70.0,
                   max_temp_chip_max_c=74.0, avg_temp_inlet_c=25.0, avg_temp_outlet_c=45.0, avg_power_w=3250.0,
                   avg_fan_rpm=6050.0) for i in range(7 * 288)]
    )  # fmt: skip
    login(page, live_server, farm.users["client_x"])
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/miners/{miner.pk}/telemetry/")
    page.evaluate("window.__notReloaded = true")
    layer = page.locator("[data-testid=chart-layer]")
    page.wait_for_function("() => document.querySelector('[data-testid=chart-layer]').dataset.layer === 'raw'")
    assert layer.get_attribute("data-points") == "720"
    assert page.locator("[data-testid=latest-hashrate]").inner_text() == "162.0 TH/s"
    assert page.evaluate("Chart.getChart('chart-temps').data.datasets.length") == 3
    shot(page, "miner-24h")

    page.click("[data-range='7d']")
    page.wait_for_function("() => document.querySelector('[data-testid=chart-layer]').dataset.layer === '5m'")
    assert int(layer.get_attribute("data-points")) in (7 * 288 - 1, 7 * 288)  # the oldest may start before "from"
    assert page.evaluate("Chart.getChart('chart-hashrate').data.datasets[1].data[0]") == 200
    assert page.locator("[data-range='7d']").get_attribute("aria-pressed") == "true"
    shot(page, "miner-7d")

    page.click("[data-range='90d']")
    page.wait_for_function("() => document.querySelector('[data-testid=chart-layer]').textContent.includes('3,600')")
    assert page.evaluate("window.__notReloaded") is True
    assert_fits_390(page, "miner")
