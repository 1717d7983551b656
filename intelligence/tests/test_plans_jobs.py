"""The ``intelligence.optimize_curtailment`` job: through the spine (a JobRun), cached under the seed's key
``optimize:{site}:{date}``, idempotent (an unchanged day re-uses its plan), a day without prices answers the
refusal instead of failing; ``intelligence.plan_tomorrow`` queues only sites with prices for tomorrow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import JobRun
from intelligence import curtailment_plans as plans
from intelligence import plans_tasks
from intelligence.models import CurtailmentPlan, MarketDay, PowerPrice
from intelligence.tests.test_plans_services import breakevens, load_prices, shape

pytestmark = pytest.mark.django_db


@pytest.fixture
def day(farm):
    MarketDay.objects.create(
        date="2025-11-01", btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"), fees_btc=Decimal(4)
    )
    tomorrow = plans_tasks.tomorrow_for(farm.site_a)
    _hp, be19, be21 = breakevens()
    load_prices(farm.site_a, plans.day_window(farm.site_a, tomorrow), shape(be19, be21))
    return tomorrow


def test_the_job_caches_the_days_plan_under_the_seed_key(farm, day):
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())
    key = cache_helper.cache_key("optimize", id=farm.site_a.pk, date=day.isoformat())
    assert key == f"optimize:{farm.site_a.pk}:{day.isoformat()}"
    entry = cache.get(key)
    assert entry is not None
    plan = CurtailmentPlan.objects.get()
    assert entry["value"]["plan"]["id"] == plan.pk and entry["value"]["date"] == day.isoformat()
    assert plan.created_by is None and plan.inputs["job"] is True and plan.hours == 24
    assert plan.starts_at == plans.day_window(farm.site_a, day)  # the site's local midnight (America/Chicago)
    run = JobRun.objects.get(job_type="optimize_curtailment")
    assert run.status == "success" and run.result["plan"] == plan.pk
    # Served from the cache as a hit afterwards.
    assert cache_helper.get("optimize", id=farm.site_a.pk, date=day.isoformat()).state == "hit"


def test_the_job_is_idempotent_and_supersedes_only_when_inputs_change(farm, day):
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())
    first = CurtailmentPlan.objects.get()
    PowerPrice.objects.filter(site=farm.site_a).update(usd_per_mwh=Decimal("1.00"))
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, day.isoformat())
    first.refresh_from_db()
    second = CurtailmentPlan.objects.exclude(pk=first.pk).get()
    assert first.status == "superseded" and second.status == "draft"
    assert cache.get(f"optimize:{farm.site_a.pk}:{day.isoformat()}")["value"]["plan"]["id"] == second.pk


def test_a_day_without_prices_is_answered_not_failed(farm):
    MarketDay.objects.create(
        date="2025-11-01", btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"), fees_btc=Decimal(4)
    )
    plans_tasks.optimize_curtailment.delay(farm.site_a.pk, "2030-01-01")
    value = cache.get(f"optimize:{farm.site_a.pk}:2030-01-01")["value"]
    assert value["plan"] is None and value["error_code"] == "missing_prices"
    assert JobRun.objects.get(job_type="optimize_curtailment").failed == 1
    assert not CurtailmentPlan.objects.exists()


def test_plan_tomorrow_queues_sites_with_prices_for_tomorrow(farm, day):
    # Site B has prices, but for another day only.
    load_prices(farm.site_b, plans.day_window(farm.site_b, day) + timedelta(days=5), [40.0] * 24)
    plans_tasks.plan_tomorrow.delay()
    run = JobRun.objects.get(job_type="curtailment_plan_tomorrow")
    assert run.result["queued"] == [[farm.site_a.pk, day.isoformat()]]
    assert CurtailmentPlan.objects.filter(site=farm.site_a).count() == 1
    assert not CurtailmentPlan.objects.filter(site=farm.site_b).exists()
