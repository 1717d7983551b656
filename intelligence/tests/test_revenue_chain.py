"""The seed's chain for a site and a hosting client (issue 9 item 8, revenue subjects): an operator adds a client's
miner to a site → miner.created on the outbox → the worker refreshes revenue_forecast:site:<id> and
revenue_forecast:customer:<id> → /api/v1/forecasts and the cache serve the new fleet's revenue. Celery runs eagerly
and on-commit callbacks are executed, as in the other chain tests."""

from __future__ import annotations

import pytest

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import JobRun, OutboxEvent
from hashinsight.tests.factories import MinerModelFactory
from intelligence import revenue_tasks
from intelligence.tests.forecastreg_support import market_days
from miners import services

pytestmark = pytest.mark.django_db


def latest(api, subject):
    body = api.get(f"/api/v1/forecasts?target=revenue&subject={subject}").json()
    rows = body["results"] if isinstance(body, dict) else body
    return rows[0] if rows else None


def test_adding_a_clients_miner_refreshes_its_site_and_its_client(api, farm, django_capture_on_commit_callbacks):
    market_days()
    revenue_tasks.revenue_refresh_all.delay()
    site, client = f"site:{farm.site_a.pk}", f"customer:{farm.client_x.pk}"
    assert cache_helper.get("revenue_forecast", subject=site).value["revenue"]["fleet"]["hashrate_ths"] == "600.00"
    api.force_authenticate(farm.users["client_x"])
    before = latest(api, client)

    with django_capture_on_commit_callbacks(execute=True):
        services.miner_create(actor=farm.users["owner"], site=farm.site_a, zone=farm.zone_a, model=MinerModelFactory(),
                              serial="NEW-X-1", customer=farm.client_x)  # fmt: skip

    assert OutboxEvent.objects.get(event_type="miner.created").status == OutboxEvent.Status.DONE
    runs = JobRun.objects.filter(job_type="intelligence.revenue_refresh", status="success")
    assert sorted(r.result["subject"] for r in runs) == sorted([site, client])
    assert cache_helper.get("revenue_forecast", subject=site).state == "hit"  # the worker's entry
    assert cache_helper.get("revenue_forecast", subject=site).value["revenue"]["fleet"]["hashrate_ths"] == "800.00"
    entry = cache_helper.get("revenue_forecast", subject=client).value
    assert entry["revenue"]["fleet"]["hashrate_ths"] == "600.00" and entry["revenue"]["fleet"]["miners"] == 3

    after = latest(api, client)  # the client reads its own new forecast
    assert after["id"] != before["id"] and after["points"][0]["yhat"] > before["points"][0]["yhat"]
    assert after["id"] == entry["revenue"]["forecast_id"]
    assert latest(api, site) is None  # and never the site's
