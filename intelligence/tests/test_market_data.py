"""Market days: the loader (bulk, idempotent, a feed's day never replaced by the shipped one), hashprice across the
2024 halving on hand-computed figures, the calculator's snapshot from the database (and from the file while the
table is empty), the live feed job with a fake adapter, and what /api/health says about the market data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hashinsight.events.models import JobRun
from intelligence import feeds, market, market_data
from intelligence.feeds import FeedDay, FeedError
from intelligence.market_tasks import market_refresh
from intelligence.models import MarketDay

pytestmark = pytest.mark.django_db

CSV_HEADER = "date,price_usd,volume_usd,difficulty,hashrate_ths,fees_btc,fees_usd,miners_revenue_usd,fees_source\n"


def write_csv(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "btc.csv"
    path.write_text(CSV_HEADER + "".join(line + "\n" for line in lines))
    return path


# -- loader ------------------------------------------------------------------------------------------


def test_the_shipped_history_loads_in_bulk_and_a_second_load_changes_nothing():
    with CaptureQueriesContext(connection) as first:
        result = market_data.market_load_file()
    total = MarketDay.objects.count()
    # 4,062 days, of which four lack difficulty (missing at the source too): not loaded.
    assert (result.written, result.skipped, total) == (4058, 4, 4058)
    assert (result.first, result.last) == (date(2015, 1, 1), date(2026, 2, 12))
    # Bulk: about 100 days per statement on SQLite (its variable limit), 1,000 on PostgreSQL; never one per day.
    assert len(first.captured_queries) <= 60
    day = MarketDay.objects.get(date=date(2026, 2, 12))
    assert (day.btc_price_usd, day.difficulty, day.fees_btc) == (
        Decimal("66221.84"), Decimal("125864590100000"), Decimal("2.54254112"),
    )  # fmt: skip
    assert day.source == MarketDay.Source.SHIPPED and day.source_name == "btc_daily.csv"
    before = list(MarketDay.objects.order_by("date").values_list("date", "btc_price_usd", "difficulty", "fees_btc"))
    again = market_data.market_load_file()
    assert again.written == 4058 and MarketDay.objects.count() == 4058
    assert list(MarketDay.objects.order_by("date").values_list("date", "btc_price_usd", "difficulty", "fees_btc")) == (
        before
    )


def test_a_feed_or_hand_entered_day_is_never_overwritten_by_the_shipped_history(tmp_path):
    MarketDay.objects.create(date=date(2024, 1, 2), btc_price_usd=Decimal(45_000), difficulty=Decimal(7 * 10**13),
                             source=MarketDay.Source.FEED, source_name="blockchain_com")  # fmt: skip
    MarketDay.objects.create(date=date(2024, 1, 3), btc_price_usd=Decimal(1), difficulty=Decimal(1),
                             source=MarketDay.Source.MANUAL)  # fmt: skip
    path = write_csv(tmp_path, [
        "2024-01-01,42000.5,0,70000000000000,5e8,30,,,",
        "2024-01-02,43000,0,71000000000000,5e8,31,,,",
        "2024-01-03,44000,0,72000000000000,5e8,,,,",
    ])  # fmt: skip
    result = market_data.market_load_file(path)
    assert (result.written, result.kept) == (1, 2)
    feed_day = MarketDay.objects.get(date=date(2024, 1, 2))
    assert (feed_day.source, feed_day.btc_price_usd) == (MarketDay.Source.FEED, Decimal("45000.00"))
    assert MarketDay.objects.get(date=date(2024, 1, 3)).btc_price_usd == Decimal("1.00")
    assert MarketDay.objects.get(date=date(2024, 1, 1)).btc_price_usd == Decimal("42000.50")


def test_a_feed_replaces_the_shipped_day_but_not_a_hand_entered_one():
    market_data.market_load_file()
    MarketDay.objects.filter(date=date(2026, 2, 11)).update(source=MarketDay.Source.MANUAL)
    days = [
        FeedDay(date(2026, 2, 12), Decimal("70000.123"), Decimal("1.3e14"), fees_btc=Decimal("3.1")),
        FeedDay(date(2026, 2, 11), Decimal(1), Decimal(1)),
        FeedDay(date(2026, 2, 14), Decimal(71000), Decimal("1.3e14")),
    ]
    assert market_data.market_days_from_feed(days, feed_name="fake") == 2
    replaced = MarketDay.objects.get(date=date(2026, 2, 12))
    assert (replaced.source, replaced.btc_price_usd, replaced.fees_btc) == ("feed", Decimal("70000.12"), Decimal("3.1"))
    assert MarketDay.objects.get(date=date(2026, 2, 11)).source == MarketDay.Source.MANUAL
    assert market_data.latest_market_day().date == date(2026, 2, 14)
    # And the shipped history loaded again keeps the feed's figures.
    market_data.market_load_file()
    assert MarketDay.objects.get(date=date(2026, 2, 12)).btc_price_usd == Decimal("70000.12")


def test_a_bad_file_names_the_row_and_column_and_writes_nothing(tmp_path):
    path = write_csv(tmp_path, ["2024-01-01,42000,0,7e13,,,,,", "2024-01-02,lots,0,7e13,,,,,"])
    with pytest.raises(market_data.MarketFileError) as caught:
        market_data.market_load_file(path)
    assert (caught.value.row, caught.value.column) == (2, "price_usd")
    assert not MarketDay.objects.exists()


def test_load_market_command(tmp_path):
    from io import StringIO

    out = StringIO()
    call_command("load_market", "--file", str(write_csv(tmp_path, ["2024-01-01,42000,0,7e13,,,,,"])), stdout=out)
    assert "1 written" in out.getvalue()
    assert MarketDay.objects.get().difficulty == Decimal(7 * 10**13)


# -- hashprice -----------------------------------------------------------------------------------------
# difficulty 10^14: one TH/s finds 10^12 × 86,400 ÷ (10^14 × 2^32) = 2.0116567611694336e-7 blocks a day.
# Fees 72 BTC a day = 0.5 BTC per block; price 60,000 USD.
#   2024-04-19 (before): (6.25 + 0.5)         × 2.0116567611694336e-7 × 60,000 = 0.081472098827362060...
#   2024-04-20 (halving 00:09:27 UTC, 567 s at 6.25): subsidy 3.125 + 3.125 × 567/86,400 = 3.1455078125
#              (3.1455078125 + 0.5) × 2.0116567611694336e-7 × 60,000 = 0.044001062633469...
#   2024-04-21 (after):  (3.125 + 0.5)        × 2.0116567611694336e-7 × 60,000 = 0.043753534555435180...


@pytest.mark.parametrize(
    ("day", "subsidy", "expected"),
    [
        (date(2024, 4, 19), Decimal("6.25"), Decimal("0.081472")),
        (date(2024, 4, 20), Decimal("3.1455078125"), Decimal("0.044001")),
        (date(2024, 4, 21), Decimal("3.125"), Decimal("0.043754")),
    ],
)
def test_hashprice_across_the_2024_halving(day, subsidy, expected):
    MarketDay.objects.create(date=day, btc_price_usd=Decimal(60_000), difficulty=Decimal(10**14), fees_btc=Decimal(72))
    hp = market_data.hashprice_on(day)
    assert hp.block_subsidy_btc == subsidy
    assert hp.fees_btc_per_block == Decimal("0.5") and not hp.fees_estimated
    assert hp.hashprice_usd_per_th_day == expected


def test_hashprice_without_fees_uses_the_fallback_and_says_so():
    MarketDay.objects.create(date=date(2024, 5, 1), btc_price_usd=Decimal(60_000), difficulty=Decimal(10**14))
    [hp] = market_data.hashprice_series(date(2024, 1, 1), date(2024, 12, 31))
    assert hp.fees_estimated and hp.fees_btc_per_block == market.FALLBACK_FEES_BTC_PER_BLOCK
    # (3.125 + 0.02) × 2.0116567611694336e-7 × 60,000 = 0.037959963...
    assert hp.hashprice_usd_per_th_day == Decimal("0.037960")


def test_hashprice_series_is_bounded_and_ordered():
    for d in (3, 1, 2):
        MarketDay.objects.create(date=date(2024, 6, d), btc_price_usd=Decimal(60_000), difficulty=Decimal(10**14))
    assert [h.date.day for h in market_data.hashprice_series(date(2024, 6, 2), None)] == [2, 3]
    assert [h.date.day for h in market_data.hashprice_series(None, date(2024, 6, 2))] == [1, 2]


# -- the calculator's snapshot -------------------------------------------------------------------------


def test_snapshot_reads_the_file_while_the_table_is_empty_and_the_database_once_loaded():
    from_file = market.latest_snapshot()
    assert from_file.date == "2026-02-12" and from_file.block_subsidy_btc == Decimal("3.125")
    market_data.market_load_file()
    assert market.latest_snapshot() == from_file  # the same day, the same figures
    MarketDay.objects.create(date=date(2026, 3, 1), btc_price_usd=Decimal("80000.5"), difficulty=Decimal("1.4e14"),
                             fees_btc=Decimal("2.88"), source=MarketDay.Source.FEED)  # fmt: skip
    snap = market.latest_snapshot()
    assert (snap.date, snap.btc_price_usd, snap.difficulty) == ("2026-03-01", Decimal("80000.50"), Decimal("1.4e14"))
    assert snap.fees_btc_per_block == Decimal("0.02000000")


def test_forecasts_carry_the_last_weeks_median_fees_forward_not_the_last_days():
    # The week up to 2026-03-07 (03-01 … 03-07): 1.44 BTC a day (0.01 per block) on three days, spikes of 14.4 on
    # the first and the last, no figure on two. Two older spikes (02-27, 02-28) are outside it: counted, they
    # would make the median 14.4.
    days = {date(2026, 2, 27): "14.4", date(2026, 2, 28): "14.4", date(2026, 3, 1): "14.4", date(2026, 3, 2): None,
            date(2026, 3, 3): "1.44", date(2026, 3, 4): "1.44", date(2026, 3, 5): "1.44", date(2026, 3, 6): None,
            date(2026, 3, 7): "14.4"}  # fmt: skip
    for day, fees in days.items():
        MarketDay.objects.create(
            date=day, btc_price_usd=Decimal(80000), difficulty=Decimal("1.4e14"),
            fees_btc=None if fees is None else Decimal(fees), source=MarketDay.Source.FEED,
        )  # fmt: skip
    snap = market.latest_snapshot()
    assert snap.fees_btc_per_block == Decimal("0.10000000")  # the day itself: 14.4 / 144
    assert market.typical_fees_btc_per_block(snap) == Decimal("0.01000000")  # median of 14.4, 1.44 ×3, 14.4
    from intelligence import forecasting

    assert forecasting._fee_uplift() == (Decimal("3.125") + Decimal("0.01")) / Decimal("3.125")


def test_without_fee_figures_in_the_week_forecasts_use_the_snapshots_fees():
    MarketDay.objects.create(date=date(2026, 3, 1), btc_price_usd=Decimal(80000), difficulty=Decimal("1.4e14"))
    snap = market.latest_snapshot()
    assert market.typical_fees_btc_per_block(snap) == snap.fees_btc_per_block == Decimal("0.02000000")


def test_snapshot_subsidy_follows_the_halving_schedule():
    MarketDay.objects.create(date=date(2020, 5, 10), btc_price_usd=Decimal(8000), difficulty=Decimal("1.6e13"))
    assert market.latest_snapshot().block_subsidy_btc == Decimal("12.5")


def test_calculator_defaults_come_from_the_latest_market_day(client):
    MarketDay.objects.create(date=date(2026, 3, 1), btc_price_usd=Decimal("81234.56"), difficulty=Decimal("1.4e14"))
    html = client.get("/calculator/").content.decode()
    assert "81234.56" in html and "2026-03-01" in html


# -- the live feed job -----------------------------------------------------------------------------------


class FakeFeed:
    name = "fake"
    days: list = []
    error: Exception | None = None

    def fetch_latest(self, *, timeout_s=10):
        if FakeFeed.error is not None:
            raise FakeFeed.error
        return FakeFeed.days


@pytest.fixture
def fake_feed(settings):
    settings.MARKET_FEED = "intelligence.tests.test_market_data.FakeFeed"
    FakeFeed.days, FakeFeed.error = [], None
    return FakeFeed


def test_no_feed_configured_the_job_does_nothing_and_needs_no_network(settings):
    settings.MARKET_FEED = ""
    assert market_refresh.delay().get() == {"feed": None, "days": 0}
    assert not JobRun.objects.exists() and not MarketDay.objects.exists()


def test_the_feed_job_upserts_feed_rows(fake_feed):
    fake_feed.days = [FeedDay(date(2026, 11, 25), Decimal("91000.4"), Decimal("1.5e14"), Decimal("1.1e9"))]
    result = market_refresh.delay().get()
    assert result == {"feed": "fake", "days": 1, "latest": "2026-11-25"}
    row = MarketDay.objects.get()
    assert (row.source, row.source_name, row.btc_price_usd) == ("feed", "fake", Decimal("91000.40"))
    run = JobRun.objects.get(job_type="market_refresh")
    assert (run.status, run.succeeded) == (JobRun.Status.SUCCESS, 1)


def test_a_network_error_is_recorded_and_reported_never_raised(fake_feed):
    fake_feed.error = FeedError("URLError fetching https://api.blockchain.info/stats: timed out")
    result = market_refresh.delay().get()
    assert result["days"] == 0 and "timed out" in result["error"]
    assert not MarketDay.objects.exists()
    run = JobRun.objects.get(job_type="market_refresh")
    assert run.failed == 1
    health = market_data.market_health(today=date(2026, 11, 26))
    assert health["status"] == "stale" and health["latest_day"] is None
    assert health["last_refresh"]["ok"] is False and "timed out" in health["last_refresh"]["error"]


def test_the_blockchain_com_adapter_reads_its_answer_and_turns_failures_into_feed_errors(monkeypatch):
    answer = {"timestamp": 1764115200000.0, "market_price_usd": 91234.5, "difficulty": 1.52e14,
              "hash_rate": 1.1e12, "total_fees_btc": 350000000, "miners_revenue_usd": 4.1e7}  # fmt: skip
    real_get_json = feeds._get_json
    monkeypatch.setattr(feeds, "_get_json", lambda url, timeout_s: answer)
    [day] = feeds.BlockchainComFeed().fetch_latest()
    assert day.date == datetime.fromtimestamp(1764115200, tz=UTC).date() == date(2025, 11, 26)
    assert (day.btc_price_usd, day.hashrate_ths, day.fees_btc) == (Decimal("91234.5"), Decimal("1.1e9"), Decimal("3.5"))
    monkeypatch.setattr(feeds, "_get_json", lambda url, timeout_s: {**answer, "difficulty": "NaN"})
    with pytest.raises(FeedError, match="difficulty"):
        feeds.BlockchainComFeed().fetch_latest()

    def refused(url, timeout=None):
        raise feeds.urllib.error.URLError("connection refused")

    monkeypatch.setattr(feeds.urllib.request, "urlopen", refused)
    with pytest.raises(FeedError, match="connection refused"):
        real_get_json(feeds.BlockchainComFeed.url, timeout_s=1)


def test_an_unknown_feed_name_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.MARKET_FEED = "nosuchfeed"
    with pytest.raises(ImproperlyConfigured):
        feeds.configured_feed()
    settings.MARKET_FEED = "blockchain_com"
    assert isinstance(feeds.configured_feed(), feeds.BlockchainComFeed)


# -- health ----------------------------------------------------------------------------------------------


def test_health_unconfigured_fresh_and_stale(settings, fake_feed):
    settings.MARKET_FEED = ""
    market_data.market_load_file()
    health = market_data.market_health(today=date(2026, 11, 26))
    assert health["status"] == "unconfigured" and health["feed"] is None
    assert (health["latest_day"], health["age_days"], health["stale"]) == ("2026-02-12", 287, True)

    settings.MARKET_FEED = "intelligence.tests.test_market_data.FakeFeed"
    assert market_data.market_health(today=date(2026, 11, 26))["status"] == "stale"
    fake_feed.days = [FeedDay(date(2026, 11, 25), Decimal(91000), Decimal("1.5e14"))]
    market_refresh.delay().get()
    health = market_data.market_health(today=date(2026, 11, 26))
    assert (health["status"], health["age_days"], health["source"]) == ("fresh", 1, "feed")
    assert health["last_refresh"]["ok"] is True
    # Older than STALE_AFTER_DAYS (2): stale again.
    assert market_data.market_health(today=date(2026, 11, 28))["status"] == "stale"


def test_health_never_raises(monkeypatch):
    monkeypatch.setattr(market_data.MarketDay.objects, "order_by", lambda *a: 1 / 0)
    assert market_data.market_health() == {"status": "error", "error": "ZeroDivisionError"}


def _health_reports_market() -> bool:
    from hashinsight.observability import health

    return "market_health" in Path(health.__file__).read_text()


@pytest.mark.skipif(not _health_reports_market(), reason="the lead wires market_health into /api/health (notes)")
def test_api_health_reports_market_data(client, settings):
    settings.MARKET_FEED = ""
    body = client.get("/api/health").json()
    assert body["market_data"]["status"] == "unconfigured"
    settings.MARKET_FEED = "nosuchfeed"  # misconfigured: reported, never a crash
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json()["market_data"]["status"] == "error"


# -- API -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "status"), [("owner", 200), ("siteowner_b_ro", 200), ("client_x", 200),
                                              ("customer", 200), ("guest", 403), ("anonymous", None)])  # fmt: skip
def test_market_days_api_json_and_csv(api, farm, user, status):
    for day in (date(2024, 4, 19), date(2024, 4, 21)):
        MarketDay.objects.create(date=day, btc_price_usd=Decimal(60_000), difficulty=Decimal(10**14), fees_btc=72)
    if user != "anonymous":
        api.force_authenticate(farm.users[user])
    response = api.get("/api/v1/market/days?start=2024-04-20")
    if status is None:
        assert response.status_code in (401, 403)
        return
    assert response.status_code == status
    if status != 200:
        return
    [day] = response.json()["results"]
    assert (day["date"], day["block_subsidy_btc"], day["hashprice_usd_per_th_day"]) == (
        "2024-04-21",
        "3.125",
        "0.043754",
    )
    csv_lines = b"".join(api.get("/api/v1/market/days?format=csv").streaming_content).decode("utf-8-sig").splitlines()
    assert len(csv_lines) == 3 and csv_lines[1].startswith("2024-04-19,60000.00,")
    latest = api.get("/api/v1/market/latest").json()
    assert latest["day"]["date"] == "2024-04-21" and latest["health"]["status"] == "unconfigured"
    assert api.get("/api/v1/market/days?start=April").json()["error_code"] == "invalid_query"
