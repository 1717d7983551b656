"""Payments, chain confirmations and overdue reminders: Celery tasks (owner: payments), recorded as JobRuns.

- ``billing.check_chain_payments`` (Beat, every 10 min): every pending crypto payment through the configured chain
  adapter (``hashinsight.billing.chain``); enough confirmations (``BILLING_CONFIRMATIONS``) confirm it and refresh
  its invoice, a failure report fails it, anything else leaves it pending. The default adapter needs no network.
- ``billing.mark_overdue_and_remind`` (Beat, hourly): issued/partially paid invoices past due become overdue, and
  the reminders due at 1, 7 and 14 days overdue are e-mailed once each (``hashinsight.billing.reminders``).

Both are idempotent (a second run changes nothing more) and safe to overlap (rows locked with ``skip_locked``);
retried with backoff when the database is briefly unavailable."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from hashinsight.events.jobs import job


@job("billing_check_chain_payments")
def _check(ctx) -> dict:
    from hashinsight.billing.payments import check_chain_payments

    result = check_chain_payments()
    ctx.count(processed=result["checked"], succeeded=result["confirmed"], failed=result["failed"])
    return result


@job("billing_mark_overdue_and_remind")
def _remind(ctx) -> dict:
    from hashinsight.billing.reminders import mark_overdue_and_remind

    result = mark_overdue_and_remind()
    ctx.count(processed=result["overdue"] + result["reminded"], succeeded=result["emails"])
    return result


@shared_task(
    name="billing.check_chain_payments", bind=True, acks_late=True, ignore_result=True,
    autoretry_for=(DatabaseError,), retry_backoff=5, retry_backoff_max=120, retry_jitter=True, max_retries=3,
    soft_time_limit=540, time_limit=600,
)  # fmt: skip
def check_chain_payments(self, trigger: str = "schedule") -> dict:
    """Move pending crypto payments to confirmed or failed as the chain adapter reports."""
    return _check(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries)


@shared_task(
    name="billing.mark_overdue_and_remind", bind=True, acks_late=True, ignore_result=True,
    autoretry_for=(DatabaseError,), retry_backoff=5, retry_backoff_max=120, retry_jitter=True, max_retries=3,
    soft_time_limit=1200, time_limit=1500,
)  # fmt: skip
def mark_overdue_and_remind(self, trigger: str = "schedule") -> dict:
    """Mark invoices overdue and send the reminders due."""
    return _remind(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries)
