"""Revenue forecasts per site and per hosting client: figures computed by hand, the site's power price (its
prices' 30-day average, else its tariff), the client's hosting rate, who may read which subject (API and page),
the refresh job and the miner-change handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import JobRun
from intelligence import forecasting, revenue_tasks
from intelligence.models import Forecast, PowerMarket, PowerPrice
from intelligence.tests.forecastreg_support import market_days

pytestmark = pytest.mark.django_db

# One hashprice day; with fees taken as nothing extra (uplift 1) and the 2 % pool fee, revenue is by hand.
HP = [{"date": "2026-01-01", "yhat": 0.05, "lo80": 0.04, "hi80": 0.06, "lo95": 0.03, "hi95": 0.07}]


@pytest.fixture
def no_fees(monkeypatch):
    monkeypatch.setattr(forecasting, "_fee_uplift", lambda: Decimal(1))


@pytest.fixture
def market():
    return market_days()


def test_a_sites_revenue_by_hand_at_its_tariff(farm, no_fees):
    # Site A: three S21 (200 TH/s, 3,500 W) — client X's, client Y's and the site's own — at 0.05 USD/kWh.
    sf = forecasting.subject_fleet(f"site:{farm.site_a.pk}")
    assert (sf.fleet.hashrate_ths, sf.fleet.power_kw, sf.fleet.entries) == (Decimal(600), Decimal("10.5"), 3)
    assert sf.price_source == "site_tariff" and sf.price_usd_per_kwh == Decimal("0.05")
    assert sf.fleet.power_cost_usd_per_day == Decimal("12.6")  # 10.5 kW × 24 h × 0.05
    [p] = forecasting.revenue_points(HP, sf.fleet)
    # 600 × 0.05 × 0.98 − 12.60 = 16.80; each interval end through the same line (600 × 0.04 × 0.98 − 12.60 …)
    assert p == {"date": "2026-01-01", "yhat": 16.8, "lo80": 10.92, "hi80": 22.68, "lo95": 5.04, "hi95": 28.56}


def test_a_sites_power_prices_beat_its_tariff_over_their_last_30_days(farm, no_fees):
    last = datetime(2025, 11, 30, tzinfo=UTC)
    for start, price in ((last, "30"), (last - timedelta(hours=1), "50"), (last - timedelta(days=40), "900")):
        PowerPrice.objects.create(site=farm.site_a, market=PowerMarket.DAY_AHEAD, interval_start=start,
                                  interval_minutes=60, usd_per_mwh=Decimal(price))  # fmt: skip
    sf = forecasting.subject_fleet(f"site:{farm.site_a.pk}")
    assert sf.price_source == "power_prices" and sf.price_usd_per_kwh == Decimal("0.04")  # (30 + 50) / 2 / 1000
    [p] = forecasting.revenue_points(HP, sf.fleet)
    assert p["yhat"] == 19.32  # 29.40 − 10.5 × 24 × 0.04


def test_a_hosting_clients_revenue_by_hand_at_its_hosting_rate(farm, no_fees):
    # Client X: one S21 on each site, hosting rate 0.06 USD/kWh; a retired miner does not count.
    from hashinsight.tests.factories import MinerFactory
    from miners.models import MinerStatus

    MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_x, status=MinerStatus.RETIRED)
    sf = forecasting.subject_fleet(f"customer:{farm.client_x.pk}")
    assert (sf.fleet.hashrate_ths, sf.fleet.power_kw, sf.fleet.entries) == (Decimal(400), Decimal(7), 2)
    assert sf.price_source == "hosting_rate" and sf.fleet.power_cost_usd_per_day == Decimal("10.08")
    [p] = forecasting.revenue_points(HP, sf.fleet)
    assert p["yhat"] == 9.52  # 400 × 0.05 × 0.98 − 7 × 24 × 0.06


def test_an_unknown_or_malformed_subject_is_refused(farm):
    from hashinsight.core.errors import DomainError

    with pytest.raises(DomainError) as missing:
        forecasting.subject_fleet("site:999999")
    assert missing.value.status == 404
    with pytest.raises(DomainError) as bad:
        forecasting.subject_fleet("zone:1")
    assert bad.value.code == "invalid_subject"


def test_the_refresh_job_stores_caches_and_announces_each_subject(farm, market):
    from hashinsight.events.models import OutboxEvent

    revenue_tasks.revenue_refresh_all.delay()
    run = JobRun.objects.get(job_type="intelligence.revenue_refresh_all")
    assert run.status == JobRun.Status.SUCCESS and run.result == {"subjects": 4}  # 2 sites, 2 clients
    subject = f"customer:{farm.client_x.pk}"
    fc = Forecast.objects.get(target="revenue", subject=subject)
    assert len(fc.points) == 30
    assert all(p["lo95"] <= p["lo80"] <= p["yhat"] <= p["hi80"] <= p["hi95"] for p in fc.points)
    cached = cache_helper.get("revenue_forecast", subject=subject)
    assert cached.state == "hit" and cached.value["revenue"]["forecast_id"] == fc.pk
    assert cached.value["revenue"]["fleet"]["power_price_source"] == "hosting_rate"
    assert OutboxEvent.objects.filter(event_type="forecast.refreshed", aggregate=subject).exists()
    assert [kind for _t, _ms, kind in forecasting.build_timings()].count("customer") == 2  # timed for /api/health


def test_a_miner_change_refreshes_its_site_and_client(farm, market, monkeypatch):
    from intelligence import forecast_handlers

    asked = []
    monkeypatch.setattr(forecast_handlers, "request_work_many", lambda reqs: asked.extend(reqs) or [])
    payload = type("P", (), {"site_id": farm.site_b.pk, "old_site_id": farm.site_a.pk,
                             "customer_id": farm.client_y.pk, "old_customer_id": None})()  # fmt: skip
    forecast_handlers.refresh_miner_subjects([(payload, type("E", (), {"pk": 1})())])
    assert sorted(args[0] for _key, _task, args in asked) == sorted(
        [f"site:{farm.site_a.pk}", f"site:{farm.site_b.pk}", f"customer:{farm.client_y.pk}"]
    )
    assert {task for _key, task, _args in asked} == {"intelligence.revenue_refresh"}


# --- who reads which subject ---------------------------------------------------------------------------------------


@pytest.fixture
def stored(farm, market):
    revenue_tasks.revenue_refresh_all.delay()
    return {
        "site_a": f"site:{farm.site_a.pk}",
        "site_b": f"site:{farm.site_b.pk}",
        "x": f"customer:{farm.client_x.pk}",
        "y": f"customer:{farm.client_y.pk}",
    }


def readable(api, user, subject) -> list:
    api.force_authenticate(user)
    r = api.get(f"/api/v1/forecasts?target=revenue&subject={subject}")
    assert r.status_code == 200, r.content
    body = r.json()
    return body["results"] if isinstance(body, dict) else body


@pytest.mark.parametrize(
    ("reader", "sees"),
    [
        ("owner", {"site_a", "site_b", "x", "y"}),
        ("siteowner_a", {"site_a", "x", "y"}),  # its site, and the clients it hosts
        ("client_x", {"x"}),  # never a site's, never another client's
        ("client_y", {"y"}),
        ("customer", set()),
    ],
)
def test_revenue_subjects_in_the_api(api, farm, stored, reader, sees):
    user = farm.users[reader]
    got = {name for name, subject in stored.items() if readable(api, user, subject)}
    assert got == sees
    hidden = [s for name, s in stored.items() if name not in sees]
    for subject in hidden:
        pk = Forecast.objects.filter(subject=subject).values_list("pk", flat=True).first()
        assert api.get(f"/api/v1/forecasts/{pk}").status_code == 404
    api.force_authenticate(user)
    everything = api.get("/api/v1/forecasts?target=revenue").json()
    rows = everything["results"] if isinstance(everything, dict) else everything
    assert not {r["subject"] for r in rows} & set(hidden)


def page(user, query: str):
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(user)
    return c.get(f"/forecasts/?{query}")


def test_the_page_picker_lists_only_what_the_reader_may_see(farm, stored):
    r = page(farm.users["client_x"], f"target=revenue&subject={stored['x']}")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="subject-select"' in html and 'data-testid="revenue-basis"' in html
    assert f'value="{stored["x"]}"' in html and farm.client_x.company in html
    for other in ("y", "site_a", "site_b"):
        assert f'value="{stored[other]}"' not in html
    assert "400.00 TH/s" in html and "0.06000 USD/kWh" in html


@pytest.mark.parametrize("subject", ["site_a", "y"])
def test_a_client_asking_for_a_site_or_another_client_gets_404(farm, stored, subject):
    assert page(farm.users["client_x"], f"target=revenue&subject={stored[subject]}").status_code == 404
    c = Client()
    c.force_login(farm.users["client_x"])
    assert c.get(f"/forecasts/csv?target=revenue&subject={stored[subject]}").status_code == 404


def test_a_site_owner_reads_its_site_and_not_the_other(farm, stored):
    owner = farm.users["siteowner_a"]
    r = page(owner, f"target=revenue&subject={stored['site_a']}")
    assert r.status_code == 200 and "600.00 TH/s" in r.content.decode()
    assert page(owner, f"target=revenue&subject={stored['site_b']}").status_code == 404
    assert page(owner, f"target=revenue&subject=user:{farm.users['customer'].pk}").status_code == 404
    assert page(farm.users["owner"], "target=revenue&subject=site:999999").status_code == 404
    c = Client()
    c.force_login(owner)
    csv = c.get(f"/forecasts/csv?target=revenue&subject={stored['site_a']}")
    assert csv.status_code == 200
    assert len(b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()) == 31


# The rows proposed for hashinsight/tests/test_permission_matrix.py (notes/revenue-shared.md), checked here.
READERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest"]
MATRIX = {
    "/forecasts/?target=revenue&subject=site:{site_a}": (200, 200, 200, 404, 404, 404, 403),
    "/forecasts/?target=revenue&subject=customer:{client_x}": (200, 200, 200, 200, 200, 404, 403),
    "/forecasts/csv?target=revenue&subject=site:{site_a}": (200, 200, 200, 404, 404, 404, 403),
}


@pytest.mark.parametrize("url", sorted(MATRIX))
def test_the_permission_matrix_rows(farm, market, url):
    c = Client()
    path = url.format(site_a=farm.site_a.pk, client_x=farm.client_x.pk)
    got = []
    for reader in READERS:
        c.force_login(farm.users[reader])
        got.append(c.get(path).status_code)
    assert tuple(got) == MATRIX[url]
    c.logout()
    assert c.get(path).status_code == 302  # anonymous: to the login page
