"""The demo's billing: contracts for the demo clients, last month's drafts, one issued; fast and idempotent."""

from __future__ import annotations

import time
from datetime import date

import pytest
from django.core.management import call_command

from hashinsight.billing.models import Invoice
from hashinsight.demo.billing_demo import seed_billing_demo
from sites.models import HostingContract

pytestmark = pytest.mark.django_db


def test_seed_billing_demo_is_fast_and_idempotent():
    call_command("seed_demo", miners=300, no_identity=True, stdout=open("/dev/null", "w"))  # noqa: SIM115
    started = time.perf_counter()
    lines = seed_billing_demo(today=date(2026, 11, 26))
    elapsed = time.perf_counter() - started
    assert elapsed < 3, elapsed
    assert HostingContract.objects.filter(number__startswith="DEMO-").count() == 3
    invoices = Invoice.objects.filter(contract__number__startswith="DEMO-")
    assert sorted(invoices.values_list("status", flat=True)) == ["draft", "draft", "issued"]
    assert all(i.period_start == date(2026, 10, 1) and i.total > 0 for i in invoices)
    assert "3 draft invoices built, 1 issued" in lines[0]
    again = seed_billing_demo(today=date(2026, 11, 26))
    assert "0 daily rows" in again[0] and "0 draft invoices built, 0 issued" in again[0]
    assert Invoice.objects.filter(contract__number__startswith="DEMO-").count() == 3
