"""The cached fleet economics: a worked example by hand, grouping in SQL, client and site scope,
and invalidation when miners change."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hashinsight.accounts.roles import Role
from hashinsight.tests.factories import (
    CustomerFactory,
    MinerFactory,
    MinerModelFactory,
    SiteFactory,
    UserFactory,
    ZoneFactory,
)
from intelligence.market import MarketSnapshot
from intelligence.profitability import combine
from miners import services, summaries
from miners.models import Miner
from sites.services import customer_add_contact, site_grant

pytestmark = pytest.mark.django_db

# Round market figures so the worked example can be followed by hand.
MARKET = MarketSnapshot(
    date="2026-11-24",
    btc_price_usd=Decimal(50_000),
    difficulty=Decimal(10) ** 14,
    block_subsidy_btc=Decimal("3.125"),
    fees_btc_per_block=Decimal("0.125"),
)


@pytest.fixture(autouse=True)
def market(monkeypatch):
    monkeypatch.setattr(summaries, "latest_snapshot", lambda: MARKET)
    return MARKET


@pytest.fixture
def model_100t():
    return MinerModelFactory(code="test-100t", name="Test 100T", hashrate_ths=Decimal(100), power_w=Decimal(3000))


def _close(value, expected: str, places: str = "0.01") -> bool:
    return Decimal(value).quantize(Decimal(places)) == Decimal(expected)


def test_worked_example_counts_only_hashing_miners(model_100t):
    """Per miner: 100e12 H/s × 86,400 s = 8.64e18 hashes a day; ÷ (1e14 × 2^32 = 4.294967296e23)
    = 2.01165676e-5 blocks a day; × (3.125 + 0.125) BTC × (1 − 2 % pool fee) = 6.40712678e-5 BTC a day.

    Ten hashing miners: 6.40712678e-4 BTC × $50,000 = $32.04 a day. Power: 10 × 3 kW × 24 h = 720 kWh
    × $0.04 = $28.80. Profit $3.24, margin 3.2356 / 32.0356 = 10.10 %. Break-even power price
    32.0356 / 720 = $0.04449/kWh; break-even BTC price 28.80 / 6.40712678e-4 = $44,949.95.
    Nominal (15 in service: 10 active + 3 offline + 2 maintenance; the retired one is gone): $48.05 and $43.20."""
    site = SiteFactory(power_price_usd_per_kwh=Decimal("0.04"))
    zone = ZoneFactory(site=site)
    for status, n in (("active", 10), ("offline", 3), ("maintenance", 2), ("retired", 1)):
        for _ in range(n):
            MinerFactory(zone=zone, site=site, model=model_100t, status=status)

    value = summaries.site_summary(id=site.pk)
    expected = summaries.unpack(value["expected"])
    nominal = summaries.unpack(value["nominal"])

    assert value["by_status"] == {"active": 10, "offline": 3, "maintenance": 2, "retired": 1}
    assert value["power_price_usd_per_kwh"] == "0.04000"
    assert value["market_date"] == "2026-11-24"
    assert _close(expected.btc_per_day, "0.00064071", "0.00000001")
    assert _close(expected.revenue_usd_per_day, "32.04")
    assert expected.energy_kwh_per_day == Decimal(720)
    assert _close(expected.power_cost_usd_per_day, "28.80")
    assert _close(expected.profit_usd_per_day, "3.24")
    assert _close(expected.margin_pct, "10.10")
    assert _close(expected.break_even_electricity_usd_per_kwh, "0.04449", "0.00001")
    assert _close(expected.break_even_btc_price_usd, "44949.95")
    assert _close(nominal.revenue_usd_per_day, "48.05")
    assert _close(nominal.power_cost_usd_per_day, "43.20")
    assert _close(value["nominal_kw"], "45.00")  # 15 × 3 kW
    assert value["zones"] == [{"zone_id": zone.pk, "miners": 16, "nominal_kw": "45.0"}]  # the retired one draws nothing


def test_site_summary_is_a_constant_number_of_queries(django_assert_num_queries, model_100t):
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    other = MinerModelFactory(code="test-200t", name="Test 200T", hashrate_ths=Decimal(200), power_w=Decimal(3500))
    Miner.objects.bulk_create(
        Miner(site=site, zone=zone, model=model_100t if i % 3 else other, serial=f"Q{i}", status="active")
        for i in range(600)
    )
    # The site's price, the miners grouped by model and status, the models: whatever the fleet size.
    with django_assert_num_queries(3):
        value = summaries.site_summary(id=site.pk)
    assert value["by_status"] == {"active": 600}
    # 400 × 100 TH/s + 200 × 200 TH/s, each model priced once by the calculator.
    assert Decimal(value["expected"]["fleet_hashrate_ths"]) == Decimal(80_000)


def test_break_evens_of_a_fleet_are_the_wholes_not_an_average(model_100t):
    cheap = SiteFactory(power_price_usd_per_kwh=Decimal("0.02"))
    dear = SiteFactory(power_price_usd_per_kwh=Decimal("0.08"))
    for site, n in ((cheap, 3), (dear, 1)):
        zone = ZoneFactory(site=site)
        for _ in range(n):
            MinerFactory(zone=zone, site=site, model=model_100t)
    parts = [summaries.unpack(summaries.site_summary(id=s.pk)["expected"]) for s in (cheap, dear)]
    total = combine(parts)
    # Cost 3 × 72 kWh × $0.02 + 72 kWh × $0.08 = $10.08 for 4 × 6.40712678e-5 BTC: $39,331.20 per BTC,
    # not the mean of the sites' own break-evens ($22,474.97 and $89,899.89).
    assert _close(total.power_cost_usd_per_day, "10.08")
    assert _close(total.break_even_btc_price_usd, "39331.20")
    assert _close(total.break_even_electricity_usd_per_kwh, "0.04449", "0.00001")  # $12.81 ÷ 288 kWh
    assert _close(total.revenue_usd_per_day, "12.81")


@pytest.fixture
def hosting(model_100t):
    """One site; client X with 4 miners (1 offline), client Y with 6; 5 of the operator's own."""
    site = SiteFactory(power_price_usd_per_kwh=Decimal("0.04"))
    other_site = SiteFactory()
    zone = ZoneFactory(site=site)
    x = CustomerFactory(hosting_rate_usd_per_kwh=Decimal("0.06"))
    y = CustomerFactory(hosting_rate_usd_per_kwh=Decimal("0.07"))
    for customer, n in ((x, 3), (y, 6), (None, 5)):
        for _ in range(n):
            MinerFactory(zone=zone, site=site, customer=customer, model=model_100t)
    MinerFactory(zone=zone, site=site, customer=x, model=model_100t, status="offline")
    MinerFactory(zone=ZoneFactory(site=other_site), site=other_site, model=model_100t)
    users = {
        "client_x": UserFactory(role=Role.CLIENT),
        "client_y": UserFactory(role=Role.CLIENT),
        "siteowner": UserFactory(role=Role.MINING_SITE_OWNER),
        "owner": UserFactory(role=Role.OWNER),
    }
    customer_add_contact(user=users["client_x"], customer=x)
    customer_add_contact(user=users["client_y"], customer=y)
    site_grant(user=users["siteowner"], site=site, manage=False)
    return site, other_site, x, y, users


def test_customer_summary_holds_only_its_miners_at_its_hosting_rate(hosting):
    site, _other, x, _y, _users = hosting
    value = summaries.customer_summary(id=x.pk)
    assert value["power_price_usd_per_kwh"] == "0.06000"
    [part] = value["sites"]
    assert part["site_id"] == site.pk
    assert part["by_status"] == {"active": 3, "offline": 1}
    expected = summaries.unpack(part["expected"])
    assert expected.fleet_hashrate_ths == Decimal(300)
    assert _close(expected.power_cost_usd_per_day, "12.96")  # 3 × 3 kW × 24 h × $0.06


def test_a_client_sees_its_own_miners_only_and_never_another_clients(hosting):
    site, _other, _x, _y, users = hosting
    money = summaries.fleet_money(user=users["client_x"])
    assert money.hosting
    assert [row.site for row in money.sites] == [site]  # not the other site, where it has no miners
    assert money.by_status == {"active": 3, "offline": 1}
    assert money.expected.fleet_hashrate_ths == Decimal(300)
    assert money.power_price_usd_per_kwh == Decimal("0.06")
    other = summaries.fleet_money(user=users["client_y"])
    assert other.by_status == {"active": 6}
    assert _close(other.expected.power_cost_usd_per_day, "30.24")  # 6 × 72 kWh × $0.07


def test_a_site_owner_sees_whole_granted_sites_only(hosting):
    site, other_site, *_rest, users = hosting
    money = summaries.fleet_money(user=users["siteowner"])
    assert not money.hosting
    assert [row.site for row in money.sites] == [site]
    assert money.by_status == {"active": 14, "offline": 1}  # every client's and the operator's own
    assert money.power_price_usd_per_kwh == Decimal("0.04")
    owner = summaries.fleet_money(user=users["owner"])
    assert {row.site for row in owner.sites} == {site, other_site}
    assert owner.in_service == 16


def test_roles_without_a_fleet_get_none():
    assert summaries.fleet_money(user=UserFactory(role=Role.CUSTOMER)) is None


def test_fleet_money_reads_the_cache_and_a_miner_change_refreshes_it(
    hosting, model_100t, django_capture_on_commit_callbacks
):
    site, _other, x, _y, users = hosting
    first = summaries.fleet_money(user=users["client_x"])
    assert first.cache_state == "miss"
    assert summaries.fleet_money(user=users["client_x"]).cache_state == "hit"
    assert summaries.fleet_money(user=users["owner"]).cache_state == "miss"

    zone = site.zones.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.miner_create(actor=users["owner"], site=site, zone=zone, customer=x, model=model_100t, serial="NEW-1")

    after = summaries.fleet_money(user=users["client_x"])
    assert after.by_status == {"active": 4, "offline": 1}
    assert summaries.fleet_money(user=users["owner"]).in_service == 17
    # The other client's figures did not move.
    assert summaries.fleet_money(user=users["client_y"]).by_status == {"active": 6}


def test_portfolio_summary_has_totals_and_one_row_per_entry(model_100t):
    from hashinsight.tests.factories import PortfolioEntryFactory

    user = UserFactory(role=Role.CUSTOMER)
    a = PortfolioEntryFactory(user=user, model=model_100t, quantity=10, power_price_usd_per_kwh=Decimal("0.04"))
    b = PortfolioEntryFactory(user=user, model=model_100t, quantity=5, power_price_usd_per_kwh=Decimal("0.10"))
    value = summaries.portfolio_summary(id=user.pk)
    assert value["entries"] == 2
    assert value["revenue_usd_per_day"] == "48.05"  # 15 × 3.2036
    assert value["power_cost_usd_per_day"] == "64.80"  # 720 kWh × 0.04 + 360 kWh × 0.10
    assert value["profit_usd_per_day"] == "-16.75"
    assert value["margin_pct"] == "-34.8"  # -16.7465 / 48.0535
    rows = {row["id"]: row for row in value["by_entry"]}
    assert rows[a.pk]["profit_usd_per_day"] == "3.24"
    assert rows[b.pk]["power_cost_usd_per_day"] == "36.00"
