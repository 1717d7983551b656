"""``GET /api/v1/explain/roi`` (and the seed's ``/api/explain/roi``): exact parts on the shipped market days, a case
worked out by hand, the offline rate from daily uptime, validation naming the parameter, scopes and roles."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.cache import cache

from hashinsight.accounts.roles import Role
from hashinsight.tests.factories import MinerFactory, MinerModelFactory, SiteFactory, UserFactory, ZoneFactory
from intelligence.models import MarketDay, PowerMarket, PowerPrice
from intelligence.roi import _shipped_rows
from telemetry.models import Daily

URL = "/api/v1/explain/roi"
SEED_URL = "/api/explain/roi"
SHOWN = ("btc_price", "difficulty", "offline_rate", "power_price", "fees_residual")
# Two months either side of the April 2024 halving, on the shipped history (CSV fallback: the table is empty).
REAL = {
    "before_start": "2024-02-01", "before_end": "2024-03-31", "after_start": "2024-05-01", "after_end": "2024-06-30",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def get(api, user, params=None, url=URL):
    api.force_authenticate(user)
    return api.get(url, params or {})


def assert_exact(body):
    parts = [D(body["parts_usd"][k]) for k in SHOWN]
    assert sum(parts) == D(body["change_usd"]) == D(body["profit_after_usd"]) - D(body["profit_before_usd"])
    detail = body["parts_detail_usd"]
    assert D(detail["fees"]) + D(detail["residual"]) == D(body["parts_usd"]["fees_residual"])


def daily(miner, day, *, uptime=100.0, ths=200.0, kwh=84.0):
    return Daily.objects.create(
        miner=miner,
        day=day,
        site_id=miner.site_id,
        customer_id=miner.customer_id,
        sample_count=1440,
        buckets_reported=288,
        avg_hashrate_ths=ths,
        energy_kwh=kwh,
        uptime_pct=uptime,
    )


def days(start: str, end: str):
    d, last = date.fromisoformat(start), date.fromisoformat(end)
    while d <= last:
        yield d
        d += timedelta(days=1)


# --- exact sums on real data ------------------------------------------------------------------------


def test_parts_sum_exactly_on_shipped_market_days(api, farm):
    owner = farm.users["owner"]
    # Telemetry on half the fleet with some downtime: the offline rate moves, the profit stays modelled.
    miners = list(farm.miners.values())
    for m in miners[:3]:
        for d in days(REAL["after_start"], REAL["after_end"]):
            daily(m, d, uptime=90.0)
    r = get(api, owner, {**REAL, "capex_usd": "25000"})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert_exact(body)
    assert body["before"]["profit_source"] == "model"
    # Every factor moved: the halving lands in the residual, the price rise in btc_price.
    assert D(body["parts_usd"]["btc_price"]) > 0
    assert D(body["parts_usd"]["offline_rate"]) < 0
    assert D(body["parts_usd"]["fees_residual"]) < 0
    assert body["before"]["block_subsidy_btc"] == "6.25000000"
    assert body["after"]["block_subsidy_btc"] == "3.12500000"
    assert body["after"]["offline_rate"] == "0.100000"
    roi = body["roi"]
    assert (
        sum(D(v) for v in roi["parts_pp"].values()) == D(roi["change_pp"]) == D(roi["after_pct"]) - D(roi["before_pct"])
    )
    codes = {n["code"] for n in body["data_quality"]}
    assert {"no_telemetry", "telemetry_partial", "miners_without_telemetry", "fees_unknown"} <= codes
    # The shipped history has no fees after 2024-04-27: the other period's average stands in, so the missing
    # figure shows as no change in fees rather than an invented drop.
    assert body["after"]["fees_btc_per_block"] == body["before"]["fees_btc_per_block"]
    assert body["parts_detail_usd"]["fees"] == "0.00"


def test_market_table_read_when_loaded_gives_the_same_answer(api, farm):
    """The same days loaded into MarketDay (what the market helper's loader does) answer as the CSV fallback."""
    owner = farm.users["owner"]
    fallback = get(api, owner, REAL).json()
    MarketDay.objects.bulk_create(
        MarketDay(date=r.day, btc_price_usd=r.btc_price_usd, difficulty=r.difficulty, fees_btc=r.fees_btc)
        for r in _shipped_rows()
        if date(2024, 1, 1) <= r.day <= date(2024, 7, 31)
    )
    cache.clear()
    loaded = get(api, owner, REAL).json()
    for key in ("profit_before_usd", "profit_after_usd", "change_usd", "parts_usd"):
        assert loaded[key] == fallback[key]


# --- a case checked by hand -------------------------------------------------------------------------


def _market(start: str, end: str, price: str, fees_btc: str = "2.88", difficulty: str = "100000000000000"):
    for d in days(start, end):
        MarketDay.objects.create(date=d, btc_price_usd=D(price), difficulty=D(difficulty), fees_btc=D(fees_btc))


@pytest.fixture
def one_miner_site(db):
    site = SiteFactory(slug="hand")
    zone = ZoneFactory(site=site)
    model = MinerModelFactory()  # 200 TH/s, 3,500 W
    miner = MinerFactory(site=site, zone=zone, model=model)
    owner = UserFactory(username="hand-owner", role=Role.OWNER)
    return site, miner, owner


HAND = {
    "before_start": "2025-01-01", "before_end": "2025-01-10", "after_start": "2025-01-11", "after_end": "2025-01-20",
}  # fmt: skip


def test_price_doubling_by_hand(api, one_miner_site):
    """One 200 TH/s, 3.5 kW miner, 10 days each, difficulty 10¹⁴, subsidy 3.125 + fees 0.02 BTC per block, pool
    fee 2 %, power 0.05 USD/kWh (the default: no prices). BTC 50,000 → 100,000 USD, nothing else moves.

    BTC per TH/s per day = 10¹² × 86,400 ÷ (10¹⁴ × 2³²) × 3.145 = 6.3266…e-7 → hashprice 0.031633… USD at
    50,000. Profit before = 10 × (200 × 0.031633… × 0.98 − 3.5 × 24 × 0.05) = 10 × (6.20012… − 4.2) = 20.00…
    USD; after = 10 × (12.40024… − 4.2) = 82.00… USD. The whole change is the BTC price's."""
    site, _miner, owner = one_miner_site
    _market("2025-01-01", "2025-01-10", "50000")
    _market("2025-01-11", "2025-01-20", "100000")
    body = get(api, owner, {**HAND, "scope": f"site:{site.pk}"}).json()
    btc_per_th_day = D(10**12) * 86400 / (D(10**14) * 2**32) * D("3.145")
    hp0 = btc_per_th_day * 50000
    before = 10 * (200 * hp0 * D("0.98") - D("3.5") * 24 * D("0.05"))
    after = 10 * (200 * hp0 * 2 * D("0.98") - D("3.5") * 24 * D("0.05"))
    assert D(body["profit_before_usd"]) == before.quantize(D("0.01"))
    assert D(body["profit_after_usd"]) == after.quantize(D("0.01"))
    assert body["profit_before_usd"] == "20.00"  # 6.2001… − 4.2 = 2.0001… a day
    assert body["parts_usd"] == {
        "btc_price": body["change_usd"],
        "difficulty": "0.00",
        "offline_rate": "0.00",
        "power_price": "0.00",
        "fees_residual": "0.00",
    }
    assert body["before"]["power_price_source"] == "default"
    assert body["before"]["fees_btc_per_block"] == "0.02000000"
    assert body["scope"] == {
        "kind": "site",
        "id": site.pk,
        "label": site.name,
        "miners": 1,
        "miners_without_telemetry": 1,
    }


def test_power_price_from_site_prices_and_offline_rate_from_daily_uptime(api, one_miner_site):
    """Site day-ahead prices 40 → 60 USD/MWh, uptime 100 % → 75 %, market unchanged: the power part is
    −10 days × 3.5 kW × 24 h × 0.02 USD/kWh × (1 − offline) shared Shapley-wise with the offline part."""
    site, miner, owner = one_miner_site
    _market("2025-01-01", "2025-01-20", "50000")
    for d in days("2025-01-01", "2025-01-20"):
        price = D("40") if d <= date(2025, 1, 10) else D("60")
        for hour in range(0, 24, 6):
            PowerPrice.objects.create(
                site=site,
                market=PowerMarket.DAY_AHEAD,
                interval_minutes=60,
                usd_per_mwh=price,
                interval_start=f"{d.isoformat()}T{hour:02d}:00:00Z",
            )
        daily(miner, d, uptime=100.0 if d <= date(2025, 1, 10) else 75.0, ths=200.0, kwh=84.0)
    body = get(api, owner, HAND).json()
    assert body["before"]["power_price_usd_per_kwh"] == "0.040000"
    assert body["after"]["power_price_usd_per_kwh"] == "0.060000"
    assert body["before"]["power_price_source"] == body["after"]["power_price_source"] == "site"
    assert body["before"]["offline_rate"] == "0.000000"
    assert body["after"]["offline_rate"] == "0.250000"
    assert body["before"]["profit_source"] == body["after"]["profit_source"] == "telemetry"
    assert_exact(body)
    # Shapley over {offline, power}: the power part is −840 kWh × 0.02 × (1 + 0.75) / 2 = −14.70 USD.
    assert body["parts_usd"]["power_price"] == "-14.70"
    # Measured before: 200 TH/s × hashprice × 0.98 × 10 − 840 kWh × 0.04 (telemetry = the model here).
    hp = D(10**12) * 86400 / (D(10**14) * 2**32) * D("3.145") * 50000
    assert D(body["profit_before_usd"]) == (10 * (200 * hp * D("0.98")) - 840 * D("0.04")).quantize(D("0.01"))


def test_override_prices_sites_without_prices(api, one_miner_site):
    _site, _miner, owner = one_miner_site
    _market("2025-01-01", "2025-01-20", "50000")
    body = get(api, owner, {**HAND, "power_price_usd_per_kwh": "0.07"}).json()
    assert body["before"]["power_price_usd_per_kwh"] == "0.070000"
    assert body["before"]["power_price_source"] == "override"


# --- validation -------------------------------------------------------------------------------------

BAD = [
    ({**REAL, "before_start": "2024-02-30"}, "invalid_before_start"),
    ({**REAL, "after_end": "soon"}, "invalid_after_end"),
    ({**REAL, "before_end": "2024-01-15"}, "invalid_before_end"),  # before_end < before_start
    ({**REAL, "after_start": "2024-03-15"}, "invalid_after_start"),  # after starts inside before
    ({**REAL, "after_end": "2024-04-15"}, "invalid_after_end"),  # after_end < after_start
    ({**REAL, "before_start": "2022-01-01"}, "invalid_before_end"),  # a period of more than 366 days
    ({**REAL, "before_start": "2009-01-01"}, "invalid_before_start"),  # before the market data
    ({**REAL, "after_end": "2031-01-01"}, "invalid_after_end"),  # after it
    ({"before_start": "2024-02-01"}, "invalid_before_end"),  # some dates but not all
    ({**REAL, "scope": "zone:1"}, "invalid_scope"),
    ({**REAL, "power_price_usd_per_kwh": "-1"}, "invalid_power_price_usd_per_kwh"),
    ({**REAL, "capex_usd": "0"}, "invalid_capex_usd"),
    ({**REAL, "capex_usd": "NaN"}, "invalid_capex_usd"),
]


@pytest.mark.parametrize(("params", "code"), BAD)
def test_bad_input_is_a_400_naming_the_parameter(api, farm, params, code):
    r = get(api, farm.users["owner"], params)
    assert r.status_code == 400, r.json()
    body = r.json()
    assert body["error_code"] == code
    assert body["details"]["parameter"] == code.removeprefix("invalid_")
    assert body["request_id"] is not None or "request_id" in body


def test_default_periods_are_the_last_30_days_of_market_data_against_the_30_before(api, farm):
    body = get(api, farm.users["owner"]).json()
    last = _shipped_rows()[-1].day
    assert body["after"]["end"] == last.isoformat()
    assert body["after"]["days"] == body["before"]["days"] == 30
    assert date.fromisoformat(body["before"]["end"]) == last - timedelta(days=30)


# --- scopes and roles -------------------------------------------------------------------------------


def test_hosting_client_sees_only_its_own_miners(api, farm):
    """client_x's answer covers its two miners, priced at its hosting rate, whatever client_y's miners do."""
    client_x = farm.users["client_x"]
    mine = get(api, client_x, REAL).json()
    assert mine["scope"]["miners"] == 2
    assert mine["before"]["fleet_ths"] == "400.00"
    assert mine["before"]["power_price_source"] == "hosting_rate"
    assert mine["before"]["power_price_usd_per_kwh"] == "0.060000"
    owner = get(api, farm.users["owner"], REAL).json()
    assert owner["scope"]["miners"] == 6
    assert owner["profit_before_usd"] != mine["profit_before_usd"]
    # client_y's fleet changes a lot: more miners, a different model, telemetry with downtime.
    big = MinerModelFactory(code="test-s19-95", name="Test S19", hashrate_ths=D("95"), power_w=D("3250"))
    for _ in range(3):
        MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_y, model=big)
    for d in days(REAL["after_start"], REAL["after_end"]):
        daily(farm.miners[("site-a", "client-y")], d, uptime=10.0)
    cache.clear()
    again = get(api, client_x, REAL).json()
    for key in ("profit_before_usd", "profit_after_usd", "parts_usd", "before", "after"):
        assert again[key] == mine[key], key
    assert get(api, farm.users["owner"], REAL).json()["scope"]["miners"] == 9
    # Asking for its own client or a site where it has miners narrows to its own miners there.
    own = get(api, client_x, {**REAL, "scope": f"customer:{farm.client_x.pk}"}).json()
    assert own["scope"]["miners"] == 2
    at_a = get(api, client_x, {**REAL, "scope": f"site:{farm.site_a.pk}"}).json()
    assert at_a["scope"]["miners"] == 1
    assert at_a["before"]["fleet_ths"] == "200.00"


def test_hidden_client_or_site_is_a_404(api, farm):
    site_c = SiteFactory(slug="site-c")
    MinerFactory(zone=ZoneFactory(site=site_c), site=site_c, customer=farm.client_y)
    client_x = farm.users["client_x"]
    for scope in (f"customer:{farm.client_y.pk}", f"site:{site_c.pk}", "site:999999", "customer:999999"):
        r = get(api, client_x, {**REAL, "scope": scope})
        assert r.status_code == 404, scope
        assert r.json()["error_code"] == "not_found"
    so_a = farm.users["siteowner_a"]
    assert get(api, so_a, {**REAL, "scope": f"site:{farm.site_b.pk}"}).status_code == 404
    # A site owner asking for a client sees that client's miners at its own site only.
    body = get(api, so_a, {**REAL, "scope": f"customer:{farm.client_y.pk}"}).json()
    assert body["scope"]["miners"] == 1


ROLE_STATUS = {
    "owner": 200,
    "admin": 200,
    "siteowner_a": 200,
    "siteowner_b_ro": 200,
    "client_x": 200,
    "customer": 200,
    "guest": 403,
}


@pytest.mark.parametrize(("username", "status"), ROLE_STATUS.items())
def test_permissions_per_role(api, farm, username, status):
    r = get(api, farm.users[username], REAL)
    assert r.status_code == status
    if status == 200:
        assert_exact(r.json())


def test_scope_per_role(api, farm):
    miners = {u: get(api, farm.users[u], REAL).json()["scope"]["miners"] for u in ("owner", "siteowner_a", "client_x")}
    assert miners == {"owner": 6, "siteowner_a": 3, "client_x": 2}
    customer = get(api, farm.users["customer"], REAL).json()  # an app customer: its portfolio
    entry = farm.portfolio["customer"]
    assert customer["scope"]["miners"] == entry.quantity
    assert customer["before"]["power_price_source"] == "portfolio"
    assert D(customer["before"]["fleet_ths"]) == (entry.model.hashrate_ths * entry.quantity).quantize(D("0.01"))
    assert get(api, farm.users["customer"], {**REAL, "scope": f"site:{farm.site_a.pk}"}).status_code == 404


def test_anonymous_is_refused(api, farm):
    r = api.get(URL, REAL)
    assert r.status_code in (401, 403)


def test_seed_path_and_cache(api, farm):
    owner = farm.users["owner"]
    first = get(api, owner, REAL, url=SEED_URL)
    assert first.status_code == 200
    assert first["X-Cache"] == "miss"
    second = get(api, owner, REAL)
    assert second["X-Cache"] == "hit"
    assert second.json() == first.json()
    # The key holds the scope: a client asking the same periods is not served the owner's entry.
    mine = get(api, farm.users["client_x"], REAL)
    assert mine["X-Cache"] == "miss"
    assert mine.json()["scope"]["miners"] == 2
    # And the language: the notes and labels are in the reader's language.
    api.force_authenticate(owner)
    assert api.get(URL, REAL, HTTP_ACCEPT_LANGUAGE="zh-hans")["X-Cache"] == "miss"
    assert api.get(URL, REAL, HTTP_ACCEPT_LANGUAGE="zh-hans")["X-Cache"] == "hit"


def test_csv_of_the_parts(api, farm):
    r = get(api, farm.users["owner"], {**REAL, "format": "csv", "capex_usd": "10000"})
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert rows[0][2] == "Amount (USD)"
    keys = [row[1] for row in rows[1:]]
    assert keys == ["profit_before", *SHOWN, "profit_after", "change"]
    values = {row[1]: D(row[2]) for row in rows[1:]}
    assert sum(values[k] for k in SHOWN) == values["change"] == values["profit_after"] - values["profit_before"]


def test_offline_rate_weighs_each_miner_day_and_missing_market_days_are_named(api, one_miner_site):
    """Miner A reports 10 days at 100 %, miner B 5 days at 40 %: offline = 1 − (10 × 1 + 5 × 0.4) ÷ 15 = 0.2
    (not the mean of the two miners' means, 0.3). Two market days missing in the after period are named."""
    site, miner_a, owner = one_miner_site
    miner_b = MinerFactory(site=site, zone=miner_a.zone, model=miner_a.model)
    _market("2025-01-01", "2025-01-10", "50000")
    _market("2025-01-11", "2025-01-14", "50000")
    _market("2025-01-17", "2025-01-20", "50000")  # 2025-01-15 and -16 missing
    for d in days("2025-01-11", "2025-01-20"):
        daily(miner_a, d, uptime=100.0)
    for d in days("2025-01-11", "2025-01-15"):
        daily(miner_b, d, uptime=40.0)
    body = get(api, owner, HAND).json()
    assert body["after"]["offline_rate"] == "0.200000"
    assert body["after"]["telemetry_miner_days"] == 15
    assert body["after"]["profit_source"] == "model"  # 15 of 20 miner-days: below the 95 % needed to measure
    assert body["after"]["market_days"] == 8
    notes = {n["code"]: n for n in body["data_quality"]}
    assert notes["market_days_missing"]["days"] == 2
    assert notes["telemetry_partial"]["period"] == "after"
    assert body["scope"]["miners_without_telemetry"] == 0
    assert_exact(body)
