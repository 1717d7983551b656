"""Invoicing: Celery tasks (owner: invoicing), recorded as JobRuns through ``@job``.

``billing.build_monthly_invoices`` (Beat, hourly): from ``SETTLE_HOURS`` past midnight UTC on the 1st (the daily
rollup of the month's last day has run by then), builds the previous month's draft for every contract that overlaps
it and has no invoice for it yet. Idempotent: a contract that has one (draft, issued or paid) is skipped, so the
hourly runs after the first do nothing; each draft is built in its own transaction, and a contract that fails is
counted and retried at the next run. Drafts are rebuilt on purpose only (the API's build, the admin action)."""

from __future__ import annotations

import logging
from datetime import date, datetime

from celery import shared_task
from django.utils import timezone

from hashinsight.billing import (
    invoicing,
    issuing,  # noqa: F401  (registers the issued-invoice immutability guard)
)
from hashinsight.billing.models import Invoice
from hashinsight.events.jobs import job

log = logging.getLogger(__name__)
SETTLE_HOURS = 2


def contracts_missing_invoice(month: date) -> list[int]:
    first, last = invoicing.month_bounds(month)
    have = (
        Invoice.objects.filter(period_start__gte=first, period_start__lte=last)
        .exclude(status=Invoice.Status.VOID)
        .values("contract_id")
    )
    return list(invoicing.contracts_for_month(month).exclude(pk__in=have).values_list("pk", flat=True))


def monthly_run(*, now: datetime | None = None, month: date | None = None) -> dict:
    """What the job does (callable without Celery): the previous month's missing drafts, once the month settled."""
    now = now or timezone.now()
    if month is None:
        if now.day == 1 and now.hour < SETTLE_HOURS:
            return {"skipped": "the month's last daily rollup may not have run yet", "built": 0, "failed": 0}
        month = invoicing.previous_month(now.date())
    missing = contracts_missing_invoice(month)
    if not missing:
        return {"month": month.isoformat(), "built": 0, "skipped": 0, "failed": 0}
    return invoicing.build_drafts(month, contract_ids=missing)


@job("billing.build_monthly_invoices", priority=1)
def _build_monthly(ctx, month: str | None = None) -> dict:
    result = monthly_run(month=date.fromisoformat(month) if month else None)
    ctx.count(processed=result.get("built", 0) + result.get("failed", 0), succeeded=result.get("built", 0),
              failed=result.get("failed", 0))  # fmt: skip
    log.info("monthly invoices", extra={"job_run_id": ctx.run.pk, **result})
    return result


@shared_task(name="billing.build_monthly_invoices", bind=True, acks_late=True, ignore_result=True)
def build_monthly_invoices(self, month: str | None = None, trigger: str = "schedule") -> dict:
    """Beat (hourly): the previous month's draft invoices for contracts that have none (``month``: YYYY-MM-DD of
    any day of another month, for a manual run)."""
    return _build_monthly(month, trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)
