"""Telemetry portal pages: the site dashboard, the live list and the miner detail render their figures
with units, for what the user may see only; hidden sites and miners are 404; no inline script."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hashinsight.portal.views.telemetry import LiveTable
from hashinsight.tests.factories import MinerFactory, ZoneFactory
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
    assert 'data-testid="result-count">3 miners<' in html  # one page: its rows are the exact count
    assert 'data-testid="pagination"' not in html
    assert "Hashrate (TH/s)" in html and "Max chip (°C)" in html and "Power (W)" in html
    assert "1,234.5" in html  # thousands separated, TH/s column
    offline = page(client, fleet, "owner", url + "?status=offline").content.decode()
    assert offline.count('data-testid="live-row"') == 1 and fleet.miners[("site-a", "own")].serial in offline
    hot = page(client, fleet, "owner", url + "?temp_above=80&sort=-temperature").content.decode()
    assert hot.count('data-testid="live-row"') == 1
    theirs = page(client, fleet, "owner", url + f"?client={fleet.client_y.pk}").content.decode()
    assert theirs.count('data-testid="live-row"') == 1 and fleet.miners[("site-a", "client-y")].serial in theirs
    slow = page(client, fleet, "owner", url + "?hashrate_below_ths=120&status=online").content.decode()
    assert slow.count('data-testid="live-row"') == 1 and fleet.miners[("site-a", "client-x")].serial in slow
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


# -- keyset pages -------------------------------------------------------------------------------------


@pytest.fixture
def long_list(farm, monkeypatch):
    """Site A with 11 miners in all, pages of 3: temperatures with ties and two without a reading."""
    monkeypatch.setattr(LiveTable, "page_size", 3)
    extra = [MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=None) for _ in range(8)]
    miners = [farm.miners[("site-a", k)] for k in ("client-x", "client-y", "own")] + extra
    temps = [70.0, None, 65.0, 70.0, 80.0, None, 55.0, 70.0, 90.0, 60.0, 65.0]
    LiveStatus.objects.bulk_create([live(m, temp=t) for m, t in zip(miners, temps, strict=True)])
    return farm, miners, temps


def rows_of(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-testid="live-row" data-miner="(\d+)"', html)]


def link(html: str, testid: str) -> str | None:
    found = re.search(rf'href="([^"]*)"[^>]*data-testid="{testid}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def walk(client, url: str, testid: str) -> list[tuple[str, list[int], str]]:
    """Follow one link from page to page: (url, rows, html) of each page."""
    pages = []
    while url is not None:
        html = client.get(url).content.decode()
        assert 'data-testid="table-problem"' not in html
        pages.append((url, rows_of(html), html))
        nxt = link(html, testid)
        url = None if nxt is None else url.split("?")[0] + nxt
    return pages


@pytest.mark.parametrize("sort", ["serial", "-serial", "temperature", "-temperature", "status", "-last_seen"])
def test_live_list_pages_forward_and_back_cover_every_row_once(client, long_list, sort):
    farm, miners, temps = long_list
    client.force_login(farm.users["owner"])
    base = f"/sites/{farm.site_a.slug}/telemetry/live/?sort={sort}"
    forward = walk(client, base, "page-next")
    seen = [pk for _, rows, _ in forward for pk in rows]
    assert sorted(seen) == sorted(m.pk for m in miners)  # every row once
    assert [len(rows) for _, rows, _ in forward] == [3, 3, 3, 2]
    if "temperature" in sort:  # readings in order (ties by miner), the miners without one last
        by_pk = {m.pk: t for m, t in zip(miners, temps, strict=True)}
        readings = [by_pk[pk] for pk in seen]
        assert readings[-2:] == [None, None]
        assert readings[:-2] == sorted(readings[:-2], reverse=sort.startswith("-"))
    assert "page-previous" not in forward[0][2] and "page-first" not in forward[0][2]
    assert "page-next" not in forward[-1][2]
    # Previous from the last page walks back through the same pages, ending on the first (no Previous there).
    backward = walk(client, forward[-1][0], "page-previous")
    assert [rows for _, rows, _ in backward] == [rows for _, rows, _ in reversed(forward)]
    assert link(forward[2][2], "page-first") == ("?" if sort == "serial" else f"?sort={sort}")


def test_live_list_pages_keep_filters_and_never_count_the_list(client, long_list):
    farm = long_list[0]
    client.force_login(farm.users["owner"])
    url = f"/sites/{farm.site_a.slug}/telemetry/live/?temp_above=60&sort=-temperature"
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "telemetry_live" in q["sql"]]
    assert "3 miners shown, more on the next pages" in html
    pages = walk(client, url, "page-next")
    assert [len(rows) for _, rows, _ in pages] == [3, 3, 1]  # 7 readings above 60 °C
    assert all("temp_above=60" in u and "sort=-temperature" in u for u, _, _ in pages)
    assert "1 miner on the last page" in pages[-1][2]
    assert "temp_above=60" in link(pages[-1][2], "page-first")
    export = link(pages[1][2], "export-csv")
    assert "cursor" not in export and "temp_above=60" in export  # the export is the whole filtered list
    body = b"".join(client.get(url.split("?")[0] + export).streaming_content).decode("utf-8-sig")
    assert len(body.strip().splitlines()) == 1 + 7


def test_live_list_bad_cursor_or_unindexed_sort_shows_the_first_page(client, long_list):
    farm = long_list[0]
    client.force_login(farm.users["owner"])
    base = f"/sites/{farm.site_a.slug}/telemetry/live/"
    html = client.get(base + "?cursor=not-a-cursor").content.decode()
    assert "This page link no longer fits the list; showing the first page." in html
    assert len(rows_of(html)) == 3 and "page-previous" not in html
    # A cursor of another sort does not fit either.
    nxt = link(client.get(base + "?sort=hashrate").content.decode(), "page-next")
    html = client.get(base + nxt.replace("sort=hashrate", "sort=temperature")).content.decode()
    assert "This page link no longer fits the list" in html
    html = client.get(base + "?sort=-power").content.decode()  # no index: not offered, old links still work
    assert 'data-testid="table-problem"' in html and len(rows_of(html)) == 3
    assert 'data-testid="sort-power"' not in html and 'data-testid="sort-zone"' not in html
    assert 'data-testid="sort-temperature"' in html and 'data-testid="sort-last_seen"' in html


def test_live_list_filter_choices_are_what_the_user_sees(client, fleet):
    ZoneFactory(site=fleet.site_a, name="A2-empty")
    url = f"/sites/{fleet.site_a.slug}/telemetry/live/"
    html = page(client, fleet, "owner", url).content.decode()
    assert ">A2-empty</option>" in html and ">A1</option>" in html
    assert 'name="client"' in html and f'value="{fleet.client_x.pk}"' in html
    html = page(client, fleet, "client_x", url).content.decode()
    assert ">A1</option>" in html and "A2-empty" not in html  # only the zones of its own miners
    assert 'name="client"' not in html  # a client sees its own miners only
