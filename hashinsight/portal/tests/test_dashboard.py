"""The dashboard and site pages: money per site and for the fleet, scoped to what each role sees,
cached, with the market date, a stale warning, and separators in both languages."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from hashinsight.core import cache as cache_helper
from hashinsight.tests.factories import MinerModelFactory, PortfolioEntryFactory
from intelligence.market import MarketSnapshot
from miners import services, summaries
from miners.models import Miner

pytestmark = pytest.mark.django_db

MARKET = MarketSnapshot(
    date="2026-11-24",
    btc_price_usd=Decimal(50_000),
    difficulty=Decimal(10) ** 14,
    block_subsidy_btc=Decimal("3.125"),
    fees_btc_per_block=Decimal("0.125"),
)
# One 200 TH/s, 3,500 W miner (the factory model) at these figures: 1.2814254e-4 BTC = $6.41 a day,
# 84 kWh × $0.05 (the site default) = $4.20 a day.
REVENUE_PER_MINER = Decimal("6.4071267843246459960937500")


@pytest.fixture
def market(monkeypatch):
    def use(day: str):
        snapshot = MarketSnapshot(**{**MARKET.__dict__, "date": day})
        monkeypatch.setattr(summaries, "latest_snapshot", lambda: snapshot)
        monkeypatch.setattr("hashinsight.portal.views.dashboard.latest_snapshot", lambda: snapshot)
        return snapshot

    use(timezone.now().date().isoformat())
    return use


def login(username: str, language: str = "en") -> Client:
    from hashinsight.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def text_of(html: str, testid: str) -> list[str]:
    return [m.strip() for m in re.findall(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)]


def site_rows(html: str) -> list[str]:
    return re.findall(r'data-testid="site-row" data-site="([^"]+)"', html)


def test_owner_sees_money_per_site_and_for_the_fleet(farm, market):
    response = login("owner").get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert site_rows(html) == ["site-a", "site-b"]
    # Three hashing miners on each site; six in all.
    assert text_of(html, "fleet-hashing") == ["6 / 6"]
    assert text_of(html, "site-revenue") == ["$19.22", "$19.22"]
    assert text_of(html, "fleet-revenue") == ["$38.44"]
    assert text_of(html, "fleet-cost") == ["$25.20"]  # 6 × 84 kWh × $0.05
    assert text_of(html, "fleet-profit") == ["$13.24"]
    assert text_of(html, "fleet-margin") == ["margin 34.4%"]
    assert text_of(html, "fleet-breakeven-power") == ["0.0763 USD/kWh"]  # 38.4428 ÷ 504 kWh
    assert text_of(html, "fleet-breakeven-btc") == ["$32,776.00"]  # 25.20 ÷ 7.6885521e-4 BTC
    assert text_of(html, "fleet-btc") == ["0.00076886 BTC"]


def test_a_client_counts_only_its_own_miners(farm, market):
    html_x = login("client_x").get("/").content.decode()
    # client_x has one miner on each site; the sites' other four miners are not its.
    assert text_of(html_x, "fleet-hashing") == ["2 / 2"]
    assert text_of(html_x, "fleet-revenue") == ["$12.81"]
    assert text_of(html_x, "fleet-cost") == ["$10.08"]  # 2 × 84 kWh × its hosting rate of $0.06
    assert "Hosting cost / day" in html_x
    # Taking one of client_y's miners offline changes nothing for client_x.
    miner_y = farm.miners[("site-a", "client-y")]
    Miner.objects.filter(pk=miner_y.pk).update(status="offline")
    cache_helper.invalidate("customer_summary", id=farm.client_y.pk)
    cache_helper.invalidate("customer_summary", id=farm.client_x.pk)
    assert text_of(login("client_x").get("/").content.decode(), "fleet-hashing") == ["2 / 2"]
    assert text_of(login("client_y").get("/").content.decode(), "fleet-hashing") == ["1 / 2"]


def test_client_site_page_shows_its_own_miners_there(farm, market):
    response = login("client_x").get("/sites/site-a/")
    html = response.content.decode()
    assert text_of(html, "site-hashing") == ["1 / 1"]
    assert text_of(html, "site-revenue") == ["$6.41"]
    # Its zone shows its one miner (3.5 kW), not the zone's three.
    [zone_row] = re.findall(r'data-testid="zone-row">(.*?)</tr>', html)
    assert re.findall(r'text-end">([^<]*)<', zone_row) == ["5,000", "1", "4"]
    assert "site-power-price" not in html  # the site's own power price is the operator's business


def test_site_owner_sees_only_granted_sites(farm, market):
    client = login("siteowner_a")
    html = client.get("/").content.decode()
    assert site_rows(html) == ["site-a"]
    assert text_of(html, "fleet-hashing") == ["3 / 3"]
    page = client.get("/sites/site-a/")
    assert page.status_code == 200
    assert text_of(page.content.decode(), "site-revenue") == ["$19.22"]
    assert text_of(page.content.decode(), "site-power-price") == ["power at 0.0500 USD/kWh"]
    assert client.get("/sites/site-b/").status_code == 404


def test_offline_and_retired_miners_earn_nothing(farm, market):
    Miner.objects.filter(pk=farm.miners[("site-a", "own")].pk).update(status="offline")
    Miner.objects.filter(pk=farm.miners[("site-a", "client-x")].pk).update(status="retired")
    cache_helper.invalidate("site_summary", id=farm.site_a.pk)
    html = login("owner").get("/sites/site-a/").content.decode()
    assert text_of(html, "site-hashing") == ["1 / 2"]  # hashing / in service (the retired one is gone)
    assert text_of(html, "site-revenue") == ["$6.41"]


def test_market_date_is_shown_and_old_figures_warn(farm, market):
    html = login("owner").get("/").content.decode()
    assert f"Market figures of {timezone.now().date().isoformat()}" in html
    assert 'data-testid="market-stale"' not in html
    market("2026-01-01")
    cache_helper.invalidate("site_summary", id=farm.site_a.pk)
    cache_helper.get("site_summary", id=farm.site_a.pk)  # serves the stale entry, rebuilds (eager)
    html = login("owner").get("/").content.decode()
    assert "Market figures of 2026-01-01" in html
    [warning] = re.findall(r'data-testid="market-stale">([^<]*)<', html)
    assert "days old" in warning


def test_the_shipped_market_figures_are_dated_and_flagged_when_old(farm):
    """Without patching: the history in intelligence/data ends in February 2026."""
    html = login("owner").get("/").content.decode()
    shipped = summaries.latest_snapshot()
    assert f"Market figures of {shipped.date}" in html
    stale = shipped.is_stale(today=timezone.now().date())
    assert ('data-testid="market-stale"' in html) is stale


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_numbers_carry_units_and_thousands_separators_in_both_languages(farm, market, language):
    zone = farm.zone_a
    model = farm.miners[("site-a", "own")].model
    Miner.objects.bulk_create(
        Miner(site=farm.site_a, zone=zone, model=model, serial=f"BULK{i}", status="active") for i in range(1_200)
    )
    cache_helper.invalidate("site_summary", id=farm.site_a.pk)
    cache_helper.build_and_store("site_summary", id=farm.site_a.pk)
    html = login("owner", language).get("/sites/site-a/").content.decode()
    assert text_of(html, "site-hashing") == ["1,203 / 1,203"]
    assert text_of(html, "site-revenue") == ["$7,707.77"]  # 1,203 × $6.4071
    assert text_of(html, "site-cost") == ["$5,052.60"]  # 1,203 × 84 kWh × $0.05
    assert "101,052 kWh" in html
    if language == "zh-hans":
        assert '<html lang="zh-hans"' in html


def test_the_dashboard_reads_the_cache_and_a_new_miner_refreshes_it(farm, market, django_capture_on_commit_callbacks):
    builds = []
    real = cache_helper._BUILDERS["site_summary"]

    def counting(*, id):
        builds.append(id)
        return real(id=id)

    cache_helper._BUILDERS["site_summary"] = counting
    try:
        client = login("owner")
        first = client.get("/")
        assert first["X-Cache"] == "miss"
        assert sorted(builds) == sorted([farm.site_a.pk, farm.site_b.pk])
        second = client.get("/")
        assert second["X-Cache"] == "hit"
        assert len(builds) == 2  # nothing rebuilt
        with django_capture_on_commit_callbacks(execute=True):
            services.miner_create(
                actor=farm.users["owner"], site=farm.site_a, zone=farm.zone_a,
                model=MinerModelFactory(), serial="NEW-MINER",
            )  # fmt: skip
        assert builds[2:] == [farm.site_a.pk]  # the event rebuilt the one site it touched
        third = client.get("/")
        assert text_of(third.content.decode(), "fleet-hashing") == ["7 / 7"]
        assert third["X-Cache"] == "hit"
    finally:
        cache_helper._BUILDERS["site_summary"] = real


def test_a_warm_dashboard_costs_a_few_queries_whatever_the_fleet(farm, market, django_assert_max_num_queries):
    client = login("owner")
    client.get("/")
    with django_assert_max_num_queries(4):  # session, user, site list (the rest is cached)
        assert client.get("/")["X-Cache"] == "hit"


def test_customer_dashboard_shows_portfolio_money(farm, market):
    html = login("customer").get("/").content.decode()
    # The farm's entry: 10 × 200 TH/s at $0.05/kWh.
    assert text_of(html, "portfolio-revenue") == ["$64.07"]
    assert text_of(html, "portfolio-cost") == ["$42.00"]
    assert text_of(html, "portfolio-profit") == ["$22.07"]
    assert len(re.findall(r'data-testid="portfolio-row"', html)) == 1
    assert 'data-testid="money-table"' not in html  # a customer has no hosted fleet


def test_customer_without_entries_is_invited_to_add_some(db, market):
    from hashinsight.tests.factories import UserFactory

    UserFactory(username="fresh", role="CUSTOMER")
    html = login("fresh").get("/").content.decode()
    assert 'data-testid="portfolio-empty"' in html
    assert 'href="/portfolio/add/"' in html


def test_no_inline_script_on_the_dashboard(farm, market):
    PortfolioEntryFactory(user=farm.users["owner"])
    html = login("owner").get("/").content.decode()
    assert 'id="by-site-data" type="application/json"' in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert " on" not in "".join(re.findall(r"<[^>]+ on[a-z]+=", html))
