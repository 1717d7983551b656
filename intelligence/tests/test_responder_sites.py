"""The responder's site list is a list page like the others: one row per site the user sees (a site never set up
shows the defaults, disabled), with its settings, its last decision and its latest real-time price in USD/MWh;
sorted, filtered (enabled, site) and exported as CSV with the same rows. Expectations written out by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from intelligence.models import PowerMarket, PowerPrice, RealtimeResponder
from intelligence.tests.test_responder_pages import decision

pytestmark = pytest.mark.django_db
URL = "/curtailment/responder/"


def price(site, usd, minutes_ago=10, market=PowerMarket.REAL_TIME):
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    return PowerPrice.objects.create(
        site=site, market=market, interval_start=start, interval_minutes=5, usd_per_mwh=Decimal(usd), source="test"
    )


@pytest.fixture
def set_up(farm):
    """Site A: enabled by its site owner, soft mode, two decisions, a real-time and a (higher) day-ahead price.
    Site B: never set up, an older real-time price only."""
    RealtimeResponder.objects.create(
        site=farm.site_a, enabled=True, hysteresis_usd_per_mwh=Decimal("2.50"), min_on_minutes=30,
        min_off_minutes=20, ramp_kw_per_hour=Decimal("500"), command_mode="soft",
        updated_by=farm.users["siteowner_a"],
    )  # fmt: skip
    decision(farm.site_a, 0, acted=False)
    decision(farm.site_a, 15, acted=True)  # the later one: its move is the row's
    price(farm.site_a, "87.25", minutes_ago=40)
    price(farm.site_a, "91.40", minutes_ago=10)  # the latest real-time price
    price(farm.site_a, "999", minutes_ago=5, market=PowerMarket.DAY_AHEAD)  # not real time: not shown
    price(farm.site_b, "42.10", minutes_ago=70)
    return farm


def rows_of(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_csv_has_one_row_per_visible_site_with_settings_decision_and_price(client, set_up):
    client.force_login(set_up.users["owner"])
    rows = {r["Site"]: r for r in rows_of(client.get(URL, {"format": "csv"}))}
    assert set(rows) == {set_up.site_a.name, set_up.site_b.name}
    a, b = rows[set_up.site_a.name], rows[set_up.site_b.name]
    assert a["Enabled"] == "Yes" and a["Command mode"] == "Soft: throttle first"
    assert (a["Hysteresis (USD/MWh)"], a["Minimum on (min)"], a["Minimum off (min)"]) == ("2.50", "30", "20")
    assert a["Ramp limit (kW/h)"] == "500.000" and a["Changed by"] == "siteowner_a"
    assert a["Last decision for (UTC)"] == "2026-01-05T12:15:00Z"
    assert a["Last decision's moves (group from→to miners on)"] == "m1-z1-own 4→0"
    assert a["Real-time price (USD/MWh)"] == "91.40" and a["Real-time price interval start (UTC)"].endswith("Z")
    # Never set up: the defaults, disabled; no decision; its own latest price.
    assert b["Enabled"] == "No" and b["Command mode"] == "Hard: stop the miners"
    assert (b["Minimum on (min)"], b["Ramp limit (kW/h)"], b["Changed by"], b["Last decision for (UTC)"]) == (
        "15", "", "", ""
    )  # fmt: skip
    assert b["Real-time price (USD/MWh)"] == "42.10"


def test_a_user_sees_only_their_sites_on_the_page_and_in_the_csv(client, set_up):
    client.force_login(set_up.users["siteowner_b_ro"])
    assert [r["Site"] for r in rows_of(client.get(URL, {"format": "csv"}))] == [set_up.site_b.name]
    page = client.get(URL).content.decode()
    assert page.count('data-testid="responder-site-row"') == 1 and set_up.site_a.name not in page
    # A site outside the user's scope is no filter value for them: refused and named, nothing exported.
    assert client.get(URL, {"site": set_up.site_a.pk, "format": "csv"}).status_code == 400
    client.force_login(set_up.users["client_x"])
    assert client.get(URL, {"format": "csv"}).status_code == 403


def test_filters_and_sort(client, set_up):
    client.force_login(set_up.users["owner"])
    names = lambda params: [r["Site"] for r in rows_of(client.get(URL, {**params, "format": "csv"}))]  # noqa: E731
    assert names({"enabled": "yes"}) == [set_up.site_a.name]
    assert names({"enabled": "no"}) == [set_up.site_b.name]
    assert names({"site": set_up.site_b.pk}) == [set_up.site_b.name]
    assert names({"sort": "price"}) == [set_up.site_b.name, set_up.site_a.name]  # 42.10, 91.40
    assert names({"sort": "-price"}) == [set_up.site_a.name, set_up.site_b.name]
    assert names({"sort": "-last_decision"}) == [set_up.site_a.name, set_up.site_b.name]  # none last


def test_the_page_shows_units_sort_links_filters_and_the_export(client, set_up):
    client.force_login(set_up.users["owner"])
    r = client.get(URL, {"enabled": "yes"})
    html = r.content.decode()
    assert r.status_code == 200 and html.count('data-testid="responder-site-row"') == 1
    assert 'data-testid="table-filters"' in html and "?enabled=yes&amp;format=csv" in html
    assert "?enabled=yes&amp;sort=price" in html  # a sort header keeps the filter
    assert "91.40 USD/MWh" in html and "Real-time price (USD/MWh)" in html
    assert "m1-z1-own 4→0" in html and "siteowner_a" in html
    assert f'href="/curtailment/responder/{set_up.site_a.pk}/"' in html


def test_a_stale_price_is_dated_and_a_future_one_is_not_current(client, set_up):
    PowerPrice.objects.create(
        site=set_up.site_b, market=PowerMarket.REAL_TIME, usd_per_mwh=Decimal("500"), source="test",
        interval_start=timezone.now() + timedelta(hours=2), interval_minutes=5,
    )  # fmt: skip
    client.force_login(set_up.users["owner"])
    rows = {r["Site"]: r for r in rows_of(client.get(URL, {"format": "csv"}))}
    assert rows[set_up.site_b.name]["Real-time price (USD/MWh)"] == "42.10"
    started = datetime.fromisoformat(rows[set_up.site_b.name]["Real-time price interval start (UTC)"])
    assert started.tzinfo is not None and started < datetime.now(UTC) - timedelta(minutes=60)


def test_the_page_in_chinese(client, set_up):
    client.force_login(set_up.users["owner"])
    r = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = r.content.decode()
    assert r.status_code == 200 and 'lang="zh-hans"' in html and "91.40 USD/MWh" in html
