"""Curtailment plan jobs (thin wrappers over ``intelligence.curtailment_plans``), recorded as JobRuns.

``intelligence.optimize_curtailment(site, date)``: the site's plan for that day, made (or found unchanged) and
cached under the seed's key ``optimize:{site}:{date}`` through the one cache helper. Idempotent (an unchanged day
re-uses its stored plan) and retried with backoff when the database is briefly unavailable.

``intelligence.plan_tomorrow`` (Beat, hourly): queues the job for tomorrow, in each site's time zone, for every site
with day-ahead prices for that day. Hourly, because markets publish day-ahead prices once a day at different times;
a day whose prices have not changed costs one read and no solve."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from hashinsight.core import cache as cache_helper
from hashinsight.events.jobs import job
from intelligence import curtailment_plans as plans


@job("optimize_curtailment")
def _optimize(ctx, site: int, day: str) -> dict:
    value = cache_helper.build_and_store("optimize", id=int(site), date=day)
    ok = value.get("plan") is not None
    ctx.count(processed=1, succeeded=int(ok), failed=int(not ok))
    return {"site": int(site), "date": day, "plan": (value.get("plan") or {}).get("id"),
            "error_code": value.get("error_code")}  # fmt: skip


@shared_task(
    name="intelligence.optimize_curtailment", bind=True, acks_late=True, ignore_result=True,
    autoretry_for=(DatabaseError,), retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=5,
)  # fmt: skip
def optimize_curtailment(self, site: int, date: str, trigger: str = "manual") -> dict:
    """Plan ``site``'s day ``date`` (YYYY-MM-DD, the site's local day) and cache it as ``optimize:{site}:{date}``."""
    return _optimize(int(site), str(date), trigger=trigger, task_id=self.request.id or "", retries=self.request.retries)


def tomorrow_for(site, now=None) -> date:
    from zoneinfo import ZoneInfo

    now = now or timezone.now()
    return (now.astimezone(ZoneInfo(site.timezone or "UTC")) + timedelta(days=1)).date()


@job("curtailment_plan_tomorrow", priority=1)
def _plan_tomorrow(ctx) -> dict:
    from sites.models import Site

    queued = []
    for site in Site.objects.filter(power_prices__market="day_ahead").distinct().order_by("pk"):
        day = tomorrow_for(site)
        if plans.has_prices(site, plans.day_window(site, day), 24):
            optimize_curtailment.delay(site.pk, day.isoformat(), trigger="schedule")
            queued.append([site.pk, day.isoformat()])
    ctx.count(processed=len(queued), succeeded=len(queued))
    return {"queued": queued}


@shared_task(name="intelligence.plan_tomorrow", bind=True, acks_late=True, ignore_result=True)
def plan_tomorrow(self, trigger: str = "schedule") -> dict:
    """Queue tomorrow's plan for every site with day-ahead prices for it."""
    return _plan_tomorrow(trigger=trigger, task_id=self.request.id or "")
