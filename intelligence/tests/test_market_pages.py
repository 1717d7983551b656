"""The market pages: a site's power prices (who sees the page, the upload form with its row/column errors, the list's
filters and CSV, the chart's data) and the market page (latest day, hashprice, range, CSV)."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from intelligence import power_price_services as svc
from intelligence.models import MarketDay, PowerPrice

pytestmark = pytest.mark.django_db

GOOD = "timestamp_utc,usd_per_mwh\n2025-07-01T00:00:00Z,31.5\n2025-07-01T01:00:00Z,-2.25\n2025-07-01T02:00:00Z,1250\n"


def login(farm, name) -> Client:
    client = Client()
    if name != "anonymous":
        client.force_login(farm.users[name])
    return client


def page_url(site) -> str:
    return f"/sites/{site.slug}/power-prices/"


def load(site, text=GOOD, market="day_ahead"):
    return svc.power_prices_load(site=site, market=market, series=svc.parse_upload(text), source="test")


PAGE_A = {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 403,
          "customer": 403, "guest": 403}  # fmt: skip


@pytest.mark.parametrize("user", [*PAGE_A, "anonymous"])
def test_who_sees_a_sites_power_prices_page(farm, user):
    load(farm.site_a)
    response = login(farm, user).get(page_url(farm.site_a))
    if user == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        return
    assert response.status_code == PAGE_A[user]
    if response.status_code == 200:
        html = response.content.decode()
        assert len(re.findall(r'data-testid="price-row"', html)) == 3
        assert ('data-testid="upload-form"' in html) is (user in ("owner", "admin", "siteowner_a"))


def test_a_read_only_site_owner_sees_prices_but_no_upload_and_cannot_post(farm):
    load(farm.site_b)
    client = login(farm, "siteowner_b_ro")
    html = client.get(page_url(farm.site_b)).content.decode()
    assert 'data-testid="price-row"' in html and 'data-testid="upload-form"' not in html
    upload = SimpleUploadedFile("p.csv", GOOD.replace("31.5", "9").encode())
    assert client.post(page_url(farm.site_b), {"market": "day_ahead", "file": upload}).status_code == 403
    assert PowerPrice.objects.get(interval_start__hour=0).usd_per_mwh == Decimal("31.50")


def test_upload_form_loads_and_shows_row_and_column_of_a_bad_row(farm):
    client = login(farm, "siteowner_a")
    good = SimpleUploadedFile("prices.csv", GOOD.encode(), content_type="text/csv")
    response = client.post(page_url(farm.site_a), {"market": "real_time", "file": good}, follow=True)
    assert response.status_code == 200
    assert "3 intervals of 60 min loaded" in response.content.decode()
    assert PowerPrice.objects.filter(site=farm.site_a, market="real_time").count() == 3
    bad = SimpleUploadedFile("bad.csv", GOOD.replace("1250", "lots").replace("31.5", "1").encode())
    response = client.post(page_url(farm.site_a), {"market": "real_time", "file": bad})
    assert response.status_code == 400
    html = response.content.decode()
    [error] = re.findall(r'data-testid="upload-error">(.*?)</div>\s*</div>', html, re.S)
    assert "Nothing was loaded." in error and "Row 3, column usd_per_mwh" in error
    assert PowerPrice.objects.get(market="real_time", interval_start__hour=0).usd_per_mwh == Decimal("31.50")


def test_the_list_filters_sorts_and_exports_what_it_shows(farm):
    load(farm.site_a)
    load(farm.site_a, GOOD.replace("2025-07-01", "2025-07-05"), market="real_time")
    client = login(farm, "owner")
    html = client.get(page_url(farm.site_a) + "?market=day_ahead&sort=-price&above=0").content.decode()
    prices = re.findall(
        r'data-testid="price-row"><td[^>]*>[^<]*</td><td>[^<]*</td><td[^>]*>\d+</td><td[^>]*>([^<]*)<', html
    )
    assert prices == ["1,250.00", "31.50"]
    response = client.get(page_url(farm.site_a) + "?start=2025-07-05&format=csv")
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "Market,timestamp_utc,Interval (min),usd_per_mwh,Source" and len(lines) == 4
    assert all(line.startswith("Real-time,2025-07-05") for line in lines[1:])
    refused = client.get(page_url(farm.site_a) + "?start=someday&format=csv")
    assert refused.status_code == 400


def test_the_chart_shows_the_last_week_with_prices_by_default(farm):
    load(farm.site_a)
    load(farm.site_a, GOOD.replace("2025-07-01", "2025-06-01"))  # more than a week before the latest
    html = login(farm, "owner").get(page_url(farm.site_a)).content.decode()
    config = json.loads(re.search(r'id="power-prices-config" type="application/json">(.*?)</script>', html).group(1))
    assert [y for _x, y in config["series"]["day_ahead"]] == [31.5, -2.25, 1250.0]
    assert config["series"]["real_time"] == [] and config["unit"] == "USD/MWh"
    assert "2025-06-25 … 2025-07-01" in html


def test_market_page_latest_day_hashprice_range_and_csv(farm):
    for day, price in ((date(2024, 4, 19), 60_000), (date(2024, 4, 21), 61_000)):
        MarketDay.objects.create(date=day, btc_price_usd=Decimal(price), difficulty=Decimal(10**14), fees_btc=72)
    for user, status in (("client_x", 200), ("customer", 200), ("guest", 403)):
        assert login(farm, user).get("/market/").status_code == status
    client = login(farm, "owner")
    html = client.get("/market/").content.decode()
    assert re.search(r'data-testid="latest-day">2024-04-21<', html)
    assert re.search(r'data-testid="latest-hashprice">0.0445<', html)  # (3.125 + 0.5) × 2.0117e-7 × 61,000 = 0.044483
    assert 'data-testid="market-feed"' in html  # no live feed configured: said so
    config = json.loads(re.search(r'id="market-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["dates"] == ["2024-04-19", "2024-04-21"]
    assert client.get("/market/?start=2024-04-20").content.decode().count("2024-04-19") == 0
    response = client.get("/market/?start=2024-04-20&format=csv")
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and lines[1].startswith(
        "2024-04-21,61000.00,100000000000000,3.125,0.50000000,False,0.044483,shipped"
    )
    assert 'data-testid="market-problem"' in client.get("/market/?start=nope").content.decode()


def test_admin_market_days_are_read_mostly_and_prices_read_only(farm):
    load(farm.site_a)
    shipped = MarketDay.objects.create(date=date(2024, 1, 1), btc_price_usd=Decimal(42_000), difficulty=Decimal("7e13"))
    owner = farm.users["owner"]
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    client = login(farm, "owner")
    assert client.get("/admin/intelligence/marketday/").status_code == 200
    page = client.get(f"/admin/intelligence/marketday/{shipped.pk}/change/").content.decode()
    assert 'name="btc_price_usd"' not in page  # shown, not editable
    response = client.post("/admin/intelligence/marketday/add/", {"date": "2024-01-02", "btc_price_usd": "43000",
                                                                    "difficulty": "70000000000000"})  # fmt: skip
    assert response.status_code == 302
    manual = MarketDay.objects.get(date=date(2024, 1, 2))
    assert (manual.source, manual.source_name) == (MarketDay.Source.MANUAL, "admin:owner")
    prices = client.get("/admin/intelligence/powerprice/?market__exact=day_ahead")
    assert prices.status_code == 200 and 'class="field-usd_per_mwh">31.50<' in prices.content.decode()
    assert client.get("/admin/intelligence/powerprice/add/").status_code == 403


def test_the_market_page_renders_before_any_market_day_is_loaded(client, farm):
    """A fresh database (no load_market yet): the page says so instead of failing on the missing age."""
    from intelligence.models import MarketDay

    MarketDay.objects.all().delete()
    client.force_login(farm.users["owner"])
    assert client.get("/market/").status_code == 200
