"""A site's power prices: the loader (idempotent per site, market and interval), the CSV upload (good rows written,
any bad row a 400 naming row and column with nothing written), reads as JSON and CSV, who may read and load them per
role, the shipped ERCOT prices for the demo site, the command, and the price-feed registry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from hashinsight.events.models import AuditEvent
from intelligence import power_feeds
from intelligence import power_price_services as svc
from intelligence.models import PowerPrice

pytestmark = pytest.mark.django_db

GOOD = "timestamp_utc,usd_per_mwh\n2025-07-01T00:00:00Z,31.5\n2025-07-01T01:00:00Z,-2.25\n2025-07-01T02:00:00Z,1250\n"


def url(site, **query) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/sites/{site.pk}/power-prices" + (f"?{q}" if q else "")


def as_user(api, farm, name):
    if name != "anonymous":
        api.force_authenticate(farm.users[name])
    return api


def post_csv(api, site, text, market="day_ahead"):
    return api.post(url(site, market=market), data=text.encode(), content_type="text/csv")


# -- loading -------------------------------------------------------------------------------------------


def test_upload_writes_every_row_and_a_second_upload_changes_nothing(api, farm):
    api.force_authenticate(farm.users["owner"])
    response = post_csv(api, farm.site_a, GOOD)
    assert response.status_code == 201, response.content
    assert response.json() == {
        "site": farm.site_a.pk, "market": "day_ahead", "intervals": 3, "interval_minutes": 60,
        "first": "2025-07-01T00:00:00Z", "last": "2025-07-01T02:00:00Z",
    }  # fmt: skip
    stored = list(PowerPrice.objects.order_by("interval_start").values_list("interval_start", "usd_per_mwh"))
    assert stored == [
        (datetime(2025, 7, 1, 0, tzinfo=UTC), Decimal("31.50")),
        (datetime(2025, 7, 1, 1, tzinfo=UTC), Decimal("-2.25")),
        (datetime(2025, 7, 1, 2, tzinfo=UTC), Decimal("1250.00")),
    ]
    assert post_csv(api, farm.site_a, GOOD).status_code == 201
    assert PowerPrice.objects.count() == 3
    # A corrected file replaces the intervals it covers; the other market is separate.
    post_csv(api, farm.site_a, GOOD.replace("31.5", "40"))
    assert PowerPrice.objects.get(interval_start=datetime(2025, 7, 1, tzinfo=UTC)).usd_per_mwh == Decimal("40.00")
    post_csv(api, farm.site_a, GOOD, market="real_time")
    assert PowerPrice.objects.filter(market="real_time").count() == 3
    assert AuditEvent.objects.filter(event_type="power_prices.loaded").count() == 4


def test_multipart_upload(api, farm):
    from django.core.files.uploadedfile import SimpleUploadedFile

    api.force_authenticate(farm.users["admin"])
    upload = SimpleUploadedFile("prices.csv", GOOD.encode(), content_type="text/csv")
    response = api.post(url(farm.site_a), {"file": upload, "market": "real_time"}, format="multipart")
    assert response.status_code == 201, response.content
    assert set(PowerPrice.objects.values_list("market", "source")) == {("real_time", "upload:prices.csv")}


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        (GOOD.replace("2025-07-01T01:00:00Z", "yesterday"), 2, "timestamp_utc"),
        (GOOD.replace("1250", "lots"), 3, "usd_per_mwh"),
        (GOOD.replace("1250", "nan"), 3, "usd_per_mwh"),
        (GOOD.replace("2025-07-01T02:00:00Z", "2025-07-01T04:00:00Z"), 3, "timestamp_utc"),  # a gap
        (GOOD.replace("2025-07-01T02:00:00Z", "2025-07-01T00:30:00Z"), 3, "timestamp_utc"),  # goes back
        (GOOD.replace("1250", "123456789012"), 3, "usd_per_mwh"),  # more than the column holds
    ],
)
def test_a_bad_row_is_a_400_naming_row_and_column_and_nothing_is_written(api, farm, text, row, column):
    api.force_authenticate(farm.users["owner"])
    post_csv(api, farm.site_a, GOOD.replace("31.5", "7"))
    before = list(PowerPrice.objects.values_list("interval_start", "usd_per_mwh"))
    response = post_csv(api, farm.site_a, text.replace("-2.25", "99"))
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "invalid_price_data"
    assert (body["details"]["row"], body["details"]["column"]) == (row, column)
    assert f"row {row}" in body["message"]
    assert list(PowerPrice.objects.values_list("interval_start", "usd_per_mwh")) == before


@pytest.mark.parametrize(
    ("query", "text", "code"),
    [
        ({"market": "day_ahead"}, "time,price\n2025-07-01T00:00:00Z,1\n", "invalid_price_data"),  # columns
        ({"market": "day_ahead"}, "timestamp_utc,usd_per_mwh\n", "invalid_price_data"),  # no rows
        ({"market": "day_ahead"}, GOOD.replace(":00:00Z", ":00:00Z").replace("T01:", "T00:30:").replace(
            "T02:", "T01:"), "unsupported_interval"),  # 30-minute intervals: not a stored step
        ({}, GOOD, "missing_market"),
        ({"market": "intraday"}, GOOD, "invalid_market"),
    ],
)  # fmt: skip
def test_refused_uploads(api, farm, query, text, code):
    api.force_authenticate(farm.users["owner"])
    response = api.post(url(farm.site_a, **query), data=text.encode(), content_type="text/csv")
    assert response.status_code == 400 and response.json()["error_code"] == code
    assert not PowerPrice.objects.exists()


def test_reads_as_json_and_csv_with_market_and_range(api, farm):
    api.force_authenticate(farm.users["owner"])
    post_csv(api, farm.site_a, GOOD)
    post_csv(api, farm.site_a, GOOD.replace("2025-07-01", "2025-07-02"), market="real_time")
    body = api.get(url(farm.site_a, market="day_ahead", start="2025-07-01T01:00:00Z")).json()
    assert body["unit"] == "USD/MWh"
    assert [(r["interval_start"], r["usd_per_mwh"]) for r in body["results"]] == [
        ("2025-07-01T01:00:00Z", "-2.25"),
        ("2025-07-01T02:00:00Z", "1250.00"),
    ]
    assert len(api.get(url(farm.site_a, end="2025-07-02")).json()["results"]) == 3
    response = api.get(url(farm.site_a, market="real_time", format="csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "Market,timestamp_utc,Interval (min),usd_per_mwh,Source"
    assert lines[1] == "Real-time,2025-07-02T00:00:00Z,60,31.50,upload:csv" and len(lines) == 4
    bad = api.get(url(farm.site_a, start="soon"))
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_query"


# -- who may read and load -------------------------------------------------------------------------------

READ_A = {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 403,
          "customer": 403, "guest": 403}  # fmt: skip
READ_B = {**READ_A, "siteowner_a": 404, "siteowner_b_ro": 200}
WRITE_A = {"owner": 201, "admin": 201, "siteowner_a": 201, "siteowner_b_ro": 404, "client_x": 403,
           "customer": 403, "guest": 403}  # fmt: skip
WRITE_B = {**WRITE_A, "siteowner_a": 404, "siteowner_b_ro": 403}  # a read-only grant


@pytest.mark.parametrize("user", [*READ_A, "anonymous"])
def test_permissions_per_role(api, farm, user):
    # Client X has miners on both sites and still may not read their prices (operators only).
    api = as_user(api, farm, user)
    for site, reads, writes in ((farm.site_a, READ_A, WRITE_A), (farm.site_b, READ_B, WRITE_B)):
        read, write = api.get(url(site)), post_csv(api, site, GOOD)
        if user == "anonymous":
            assert read.status_code in (401, 403) and write.status_code in (401, 403)
            continue
        assert read.status_code == reads[user], (site.slug, read.content)
        assert write.status_code == writes[user], (site.slug, write.content)
        if write.status_code != 201:
            assert not PowerPrice.objects.filter(site=site).exists()
    written = {s for s, w in ((farm.site_a, WRITE_A), (farm.site_b, WRITE_B)) if w.get(user) == 201}
    assert set(PowerPrice.objects.values_list("site_id", flat=True).distinct()) == {s.pk for s in written}


# -- the shipped ERCOT prices, the command, the demo seed --------------------------------------------------


def test_ercot_prices_load_once_for_the_demo_site(farm):
    from intelligence.algorithms import power_prices as pp
    from intelligence.market_demo import seed_demo_market

    lines = seed_demo_market(site_slug="site-a")
    hourly, rt = pp.load_hourly("da"), pp.load_15min()
    assert PowerPrice.objects.filter(site=farm.site_a, market="day_ahead").count() == len(hourly) == 16_800
    assert PowerPrice.objects.filter(site=farm.site_a, market="real_time", interval_minutes=15).count() == 67_200
    first = PowerPrice.objects.filter(site=farm.site_a, market="real_time").order_by("interval_start").first()
    assert (first.interval_start, first.usd_per_mwh) == (datetime(2024, 1, 1, tzinfo=UTC), Decimal("28.55"))
    assert first.source == rt.name == "ercot_hb_hubavg_rt15"
    assert "16,800 ERCOT intervals of 60 min" in lines[1]
    again = seed_demo_market(site_slug="site-a")
    assert again[1:] == ["site-a day_ahead: already loaded", "site-a real_time: already loaded"]
    assert PowerPrice.objects.count() == 84_000


def test_load_power_prices_command(farm, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(GOOD)
    out = StringIO()
    call_command("load_power_prices", "--site", "site-b", "--market", "real_time", "--file", str(path), stdout=out)
    assert "3 intervals of 60 min" in out.getvalue()
    assert PowerPrice.objects.filter(site=farm.site_b, source="file:p.csv").count() == 3
    path.write_text(GOOD.replace("1250", "x"))
    with pytest.raises(CommandError, match="row 3"):
        call_command("load_power_prices", "--site", "site-b", "--market", "real_time", "--file", str(path))
    with pytest.raises(CommandError, match="No site"):
        call_command("load_power_prices", "--site", "nowhere", "--market", "real_time", "--ercot")


# -- price feeds -----------------------------------------------------------------------------------------


def test_no_price_feed_by_default_and_a_configured_one_loads_through_the_same_service(farm):
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    assert power_feeds.power_feed_for(farm.site_a) is None
    assert power_feeds.power_prices_refresh(site=farm.site_a, market="day_ahead", start=start, end=end) is None
    with override_settings(POWER_PRICE_FEEDS={"site-a": "ercot_shipped"}):
        summary = power_feeds.power_prices_refresh(site=farm.site_a, market="real_time", start=start, end=end)
    assert (summary.intervals, summary.step_minutes) == (96, 15)
    assert set(PowerPrice.objects.values_list("source", flat=True)) == {"feed:ercot_shipped"}
    with override_settings(POWER_PRICE_FEEDS={"site-a": "ercot_shipped"}), pytest.raises(power_feeds.PowerFeedError):
        power_feeds.power_prices_refresh(
            site=farm.site_a, market="day_ahead", start=datetime(2030, 1, 1, tzinfo=UTC),
            end=datetime(2030, 1, 2, tzinfo=UTC),
        )  # fmt: skip


def test_summary_per_market(farm):
    svc.power_prices_load(site=farm.site_a, market="day_ahead", series=svc.parse_upload(GOOD), source="t")
    [row] = svc.power_price_summary(site=farm.site_a)
    assert (row["market"], row["n"], row["low"], row["high"]) == ("day_ahead", 3, Decimal("-2.25"), Decimal("1250"))
