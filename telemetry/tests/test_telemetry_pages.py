"""Telemetry portal pages: the site dashboard, the live list and the miner detail render their figures
with units, for what the user may see only; hidden sites and miners are 404; no inline script."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry.models import Alert, LiveStatus
from telemetry.tests.test_telemetry_api import live

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(farm):
    m = farm.miners
    LiveStatus.objects.bulk_create(
        [
            live(m[("site-a", "client-x")], ths=100.0, temp=81.5, power=3000.0),
            live(m[("site-a", "client-y")], ths=150.0, temp=62.0, power=3100.0),
            live(m[("site-a", "own")], ths=1234.5, temp=55.0, power=2500.0, age_s=3600),
        ]
    )
    now = timezone.now()
    miner = m[("site-a", "client-x")]
    Alert.objects.create(
        site=farm.site_a, miner=miner, customer=miner.customer, alert_type="chip_temp_above", severity="critical",
        message="Chip at 81.5 °C", dedupe_key="x-hot", first_seen=now - timedelta(minutes=9), last_seen=now,
    )  # fmt: skip
    return farm


def page(client, farm, user, url):
    client.force_login(farm.users[user])
    return client.get(url)


def assert_no_inline_code(html: str):
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html and " style=" not in html


def test_site_dashboard_shows_fleet_figures_with_units(client, fleet):
    response = page(client, fleet, "owner", f"/sites/{fleet.site_a.slug}/telemetry/")
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_inline_code(html)
    # Only fresh miners count: 100 + 150 TH/s of 600 TH/s nominal; 6.1 kW; 2 of 3 online.
    assert re.search(r'data-testid="fleet-hashrate">250\.0</span> TH/s', html)
    assert re.search(r'data-testid="fleet-pct">41\.7</span>%', html)
    assert re.search(r'data-testid="fleet-power">6\.1</span> kW', html)
    assert re.search(r'data-testid="online-pct">66\.7</span>%', html)
    assert 'data-testid="state-offline">1<' in html
    assert 'data-testid="alerts-critical">1<' in html
    assert "Chip at 81.5 °C" in html
    assert fleet.miners[("site-a", "client-y")].serial in html
    assert 'id="telemetry-config"' in html and 'id="temp-histogram-data"' in html
    assert "js/telemetry-dashboard.js" in html and "vendor/chart.js/chart.umd.js" in html


def test_client_dashboard_holds_its_own_miners_only(client, fleet):
    response = page(client, fleet, "client_y", f"/sites/{fleet.site_a.slug}/telemetry/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your miners at this site only." in html
    assert fleet.miners[("site-a", "client-y")].serial in html
    assert fleet.miners[("site-a", "client-x")].serial not in html
    assert "Chip at 81.5 °C" not in html  # the other client's alert
    assert re.search(r'data-testid="fleet-hashrate">150\.0</span> TH/s', html)


@pytest.mark.parametrize("path", ["/sites/{slug}/telemetry/", "/sites/{slug}/telemetry/live/"])
def test_site_pages_are_404_without_a_grant(client, fleet, path):
    url = path.format(slug=fleet.site_a.slug)
    assert page(client, fleet, "siteowner_b_ro", url).status_code == 404
    assert page(client, fleet, "siteowner_b_ro", url + "?format=csv").status_code == 404
    assert page(client, fleet, "siteowner_a", url).status_code == 200
    assert page(client, fleet, "guest", url).status_code == 403


def test_miner_detail_is_404_for_whoever_may_not_see_the_miner(client, fleet):
    url = f"/miners/{fleet.miners[('site-a', 'client-x')].pk}/telemetry/"
    assert page(client, fleet, "client_y", url).status_code == 404
    assert page(client, fleet, "siteowner_b_ro", url).status_code == 404
    assert page(client, fleet, "client_x", url).status_code == 200


def test_miner_detail_shows_latest_values_with_units_and_open_alerts(client, fleet):
    miner = fleet.miners[("site-a", "client-x")]
    response = page(client, fleet, "client_x", f"/miners/{miner.pk}/telemetry/")
    html = response.content.decode()
    assert_no_inline_code(html)
    assert re.search(r'data-testid="latest-hashrate">100\.0 TH/s', html)
    assert re.search(r'data-testid="latest-chip">81\.5 °C', html)
    assert re.search(r'data-testid="latest-power">3,000 W', html)
    assert re.search(r'data-testid="latest-fans">6,000 / 6,200 rpm', html)
    assert "Nominal 200 TH/s · 50.0%" in html
    assert html.count('data-testid="miner-alert"') == 1 and "Chip at 81.5 °C" in html
    assert 'data-range="24h"' in html and 'data-range="7d"' in html and 'data-range="90d"' in html
    assert f'"historyUrl": "/api/v1/telemetry/miners/{miner.pk}/history"' in html


def test_miner_without_telemetry_renders(client, fleet):
    miner = fleet.miners[("site-b", "own")]
    response = page(client, fleet, "owner", f"/miners/{miner.pk}/telemetry/")
    assert response.status_code == 200
    assert "No telemetry yet" in response.content.decode()


def test_live_list_rows_filters_and_csv_are_scoped(client, fleet):
    url = f"/sites/{fleet.site_a.slug}/telemetry/live/"
    html = page(client, fleet, "owner", url).content.decode()
    assert html.count('data-testid="live-row"') == 3
    assert "Hashrate (TH/s)" in html and "Max chip (°C)" in html and "Power (W)" in html
    assert "1,234.5" in html  # thousands separated, TH/s column
    offline = page(client, fleet, "owner", url + "?status=offline").content.decode()
    assert offline.count('data-testid="live-row"') == 1 and fleet.miners[("site-a", "own")].serial in offline
    hot = page(client, fleet, "owner", url + "?temp_above=80&sort=-temperature").content.decode()
    assert hot.count('data-testid="live-row"') == 1
    html = page(client, fleet, "client_x", url).content.decode()
    assert html.count('data-testid="live-row"') == 1
    assert fleet.miners[("site-a", "client-y")].serial not in html
    response = page(client, fleet, "client_x", url + "?format=csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("Serial,Zone,Hosting client,Status")
    assert len(lines) == 2 and lines[1].startswith(fleet.miners[("site-a", "client-x")].serial)


def test_site_page_and_miner_list_link_to_telemetry(client, fleet):
    html = page(client, fleet, "owner", f"/sites/{fleet.site_a.slug}/").content.decode()
    assert f'href="/sites/{fleet.site_a.slug}/telemetry/"' in html
    html = page(client, fleet, "client_x", "/miners/").content.decode()
    assert f'href="/miners/{fleet.miners[("site-a", "client-x")].pk}/telemetry/"' in html


def test_pages_render_in_chinese(client, fleet):
    client.force_login(fleet.users["owner"])
    client.cookies["django_language"] = "zh-hans"
    for url in (f"/sites/{fleet.site_a.slug}/telemetry/", f"/sites/{fleet.site_a.slug}/telemetry/live/",
                f"/miners/{fleet.miners[('site-a', 'own')].pk}/telemetry/"):  # fmt: skip
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200
        assert '<html lang="zh-hans"' in response.content.decode()
