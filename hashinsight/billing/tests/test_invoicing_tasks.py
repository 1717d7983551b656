"""The monthly Beat job: waits for the month to settle, builds only missing drafts, repeats are no-ops, recorded as
a JobRun."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from hashinsight.billing import invoice_tasks, issuing
from hashinsight.billing.models import Invoice
from hashinsight.billing.tests.factories_invoicing import add_daily, make_fleet, stub_sla
from hashinsight.events.models import JobRun
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SEP, SEP_END = date(2026, 9, 1), date(2026, 9, 30)


def test_the_job_builds_the_previous_months_missing_drafts_once(monkeypatch):
    stub_sla(monkeypatch)
    a, b = make_fleet(), make_fleet()
    add_daily(a.miners + b.miners, SEP, SEP_END)
    early = datetime(2026, 10, 1, 1, 30, tzinfo=UTC)
    assert invoice_tasks.monthly_run(now=early)["built"] == 0
    assert not Invoice.objects.exists()
    later = datetime(2026, 10, 1, 2, 5, tzinfo=UTC)
    assert invoice_tasks.monthly_run(now=later) == {"month": "2026-09-01", "built": 2, "skipped": 0, "failed": 0}
    issuing.invoice_issue(Invoice.objects.get(contract=a.contract), actor=UserFactory(role="ADMIN"))
    draft = Invoice.objects.get(contract=b.contract)
    again = invoice_tasks.monthly_run(now=datetime(2026, 10, 5, 9, tzinfo=UTC))
    assert again == {"month": "2026-09-01", "built": 0, "skipped": 0, "failed": 0}
    assert Invoice.objects.get(pk=draft.pk).updated_at == draft.updated_at  # not rebuilt
    assert Invoice.objects.count() == 2


def test_the_celery_task_records_a_job_run(monkeypatch):
    stub_sla(monkeypatch)
    fleet = make_fleet()
    add_daily(fleet.miners, SEP, SEP_END)
    invoice_tasks.build_monthly_invoices.delay(month="2026-09-15")
    run = JobRun.objects.get(job_type="billing.build_monthly_invoices")
    assert run.status == JobRun.Status.SUCCESS and run.succeeded == 1
    assert Invoice.objects.get(contract=fleet.contract).total > 0
