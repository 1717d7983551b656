"""The demo's billing: contracts for the demo clients, last month's drafts, one issued; fast and idempotent."""

from __future__ import annotations

import time
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from hashinsight.billing import invoicing
from hashinsight.billing.models import Invoice
from hashinsight.demo.billing_demo import seed_billing_demo
from sites.models import HostingContract

pytestmark = pytest.mark.django_db


def test_seed_billing_demo_is_fast_and_idempotent():
    call_command("seed_demo", miners=300, no_identity=True, no_models=True, stdout=StringIO())
    seed_billing_demo()  # seed_demo calls it too; either way the state below holds
    last_month = invoicing.previous_month(timezone.now().date())
    assert HostingContract.objects.filter(number__startswith="DEMO-").count() == 3
    invoices = Invoice.objects.filter(contract__number__startswith="DEMO-", period_start__gte=last_month)
    assert sorted(invoices.values_list("status", flat=True)) == ["draft", "draft", "issued"]
    assert all(i.total > 0 for i in invoices)
    again = seed_billing_demo()
    assert "0 daily rows" in again[0] and "0 draft invoices built, 0 issued" in again[0]
    # A month not built yet: its daily rows and three drafts, timed.
    started = time.perf_counter()
    lines = seed_billing_demo(today=date(2027, 1, 10))
    elapsed = time.perf_counter() - started
    assert "3 draft invoices built, 0 issued" in lines[0]
    assert elapsed < 3, elapsed
    assert Invoice.objects.filter(contract__number__startswith="DEMO-", period_start=date(2026, 12, 1)).count() == 3
