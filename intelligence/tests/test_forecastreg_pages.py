"""The forecasts page (EN and 中文), its CSV, the registry buttons for owners and admins, and the admin actions."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from hashinsight.events.models import AuditEvent
from intelligence.models import ForecastModel
from intelligence.tests.forecastreg_support import market_days, registry_model

pytestmark = pytest.mark.django_db
Status = ForecastModel.Status


@pytest.fixture
def market():
    return market_days()


def client_for(user, lang="en") -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE=lang)
    c.force_login(user)
    return c


def chart_config(html: str) -> dict:
    m = re.search(r'<script id="forecast-chart-config" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_a_customer_sees_the_chart_the_fallback_reason_and_the_backtest(farm, market):
    registry_model(status=Status.ACTIVE, data_until=market, mape=9.0, naive_mape=5.0)
    r = client_for(farm.users["customer"]).get("/forecasts/?target=hashprice")
    assert r.status_code == 200
    html = r.content.decode()
    config = chart_config(html)
    assert len(config["history"]) == 120 and len(config["points"]) == 30 and config["unit"] == "USD/TH/s/day"
    assert 'data-testid="fallback-reason"' in html and "does not beat naive" in html
    assert html.count('data-testid="backtest-row"') == 3
    assert 'data-testid="registry-table"' not in html  # the registry is for owners and admins
    assert "<script>" not in html  # CSP: no inline scripts (json_script data only)


def test_the_revenue_target_shows_the_users_fleet(farm, market):
    r = client_for(farm.users["customer"]).get("/forecasts/?target=revenue")
    html = r.content.decode()
    assert "2000.00 TH/s" in html and chart_config(html)["unit"] == "USD/day"


def test_the_page_in_chinese(farm, market):
    r = client_for(farm.users["customer"], "zh-hans").get("/forecasts/")
    assert r.status_code == 200 and 'lang="zh-hans"' in r.content.decode().lower()


def test_the_forecast_points_as_csv(farm, market):
    r = client_for(farm.users["customer"]).get("/forecasts/csv?target=btc_price")
    lines = b"".join(r.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 31 and lines[1].startswith("btc_price,USD,")


def test_unknown_target_and_no_ai_module(farm, market):
    assert client_for(farm.users["customer"]).get("/forecasts/?target=weather").status_code == 404
    assert client_for(farm.users["guest"]).get("/forecasts/").status_code == 403


def test_owner_activates_and_rolls_back_from_the_page(farm, market):
    v1 = registry_model(data_until=market)
    c = client_for(farm.users["owner"])
    html = c.get("/forecasts/?target=hashprice").content.decode()
    assert f'data-testid="activate-{v1.pk}"' in html
    r = c.post(f"/forecasts/models/{v1.pk}/activate/")
    assert r.status_code == 302 and r["Location"].endswith("?target=hashprice")
    v1.refresh_from_db()
    assert v1.status == Status.ACTIVE
    assert f'data-testid="rollback-{v1.pk}"' in c.get("/forecasts/?target=hashprice").content.decode()
    c.post(f"/forecasts/models/{v1.pk}/rollback/")
    v1.refresh_from_db()
    assert v1.status == Status.RETIRED
    assert AuditEvent.objects.filter(reference=f"forecast_model:{v1.pk}").count() == 2


@pytest.mark.parametrize("who,code", [("siteowner_a", 404), ("customer", 403)])
def test_others_cannot_use_the_registry_buttons(farm, market, who, code):
    v1 = registry_model(data_until=market)
    assert client_for(farm.users[who]).post(f"/forecasts/models/{v1.pk}/activate/").status_code == code
    v1.refresh_from_db()
    assert v1.status == Status.CANDIDATE


def test_admin_actions_go_through_the_service(farm, market):
    owner = farm.users["owner"]
    owner.is_staff = True
    owner.save()
    v1 = registry_model(data_until=market)
    c = client_for(owner)
    listing = c.get("/admin/intelligence/forecastmodel/")
    assert listing.status_code == 200 and "5.00" in listing.content.decode()  # naive MAPE 7 d column
    r = c.post("/admin/intelligence/forecastmodel/", {"action": "activate", "_selected_action": [v1.pk]})
    assert r.status_code == 302
    v1.refresh_from_db()
    assert v1.status == Status.ACTIVE
    assert AuditEvent.objects.get(event_type="forecast_model.activated").actor_id == str(owner.pk)


def test_the_target_selector_offers_only_the_targets_the_page_serves(farm, market):
    """Issue 9 audit: "Uploaded series" was offered and answered 404; every option offered now answers 200."""
    c = client_for(farm.users["customer"])
    html = c.get("/forecasts/").content.decode()
    offered = re.findall(r'<option value="([a-z_]+)"', html.split('name="target"', 1)[1].split("</select>", 1)[0])
    assert offered == ["btc_price", "difficulty", "hashprice", "revenue"]
    assert all(c.get(f"/forecasts/?target={t}").status_code == 200 for t in offered)
    assert c.get("/forecasts/?target=upload").status_code == 404
