"""Payments admin (read-only, actions through the services) and the chain task (owner: payments)."""

from __future__ import annotations

import pytest

from hashinsight.billing import chain
from hashinsight.billing.models import Commission, Payment
from hashinsight.billing.payment_tasks import check_chain_payments
from hashinsight.billing.payments import payment_record
from hashinsight.billing.tests.factories_payments import fill_pool, issued_invoice
from hashinsight.events.models import JobRun

TX = "7" * 64


@pytest.fixture
def pending(farm):
    invoice = issued_invoice(total="100.00")
    return payment_record(actor=farm.users["owner"], invoice=invoice, method="btc", amount="100", txid=TX)


def test_admin_lists_and_confirms_through_the_service(client, farm, pending):
    client.force_login(farm.users["admin"])
    assert client.get("/admin/billing/payment/").status_code == 200
    assert client.get("/admin/billing/payment/add/").status_code == 403
    r = client.post(
        "/admin/billing/payment/", {"action": "confirm_selected", "_selected_action": [pending.pk], "reason": ""}
    )
    assert r.status_code == 302
    pending.refresh_from_db()
    assert pending.chain_status == "confirmed" and pending.invoice.status == "paid"


def test_admin_reject_needs_a_reason(client, farm, pending):
    client.force_login(farm.users["owner"])
    client.post(
        "/admin/billing/payment/", {"action": "reject_selected", "_selected_action": [pending.pk], "reason": ""}
    )
    pending.refresh_from_db()
    assert pending.chain_status == "pending"
    client.post(
        "/admin/billing/payment/", {"action": "reject_selected", "_selected_action": [pending.pk], "reason": "gone"}
    )
    pending.refresh_from_db()
    assert pending.chain_status == "failed"


def test_site_owner_reads_payments_of_its_sites_but_not_the_pool(client, farm):
    fill_pool()
    client.force_login(farm.users["siteowner_a"])
    assert client.get("/admin/billing/payment/").status_code == 200
    assert client.get("/admin/billing/paymentaddress/").status_code == 403
    client.force_login(farm.users["owner"])
    page = client.get("/admin/billing/paymentaddress/").content.decode()
    assert "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" in page


def test_commission_paid_out_action(client, farm):
    invoice = issued_invoice(total="200.00")
    invoice.contract.sales_owner, invoice.contract.commission_pct = farm.users["admin"], 5
    invoice.contract.save()
    payment_record(actor=farm.users["owner"], invoice=invoice, method="bank", amount="200", reference="R")
    commission = Commission.objects.get()
    assert str(commission.amount) == "10.00"
    client.force_login(farm.users["owner"])
    client.post("/admin/billing/commission/", {"action": "mark_paid_out", "_selected_action": [commission.pk]})
    commission.refresh_from_db()
    assert commission.paid_out


def test_the_chain_task_records_a_job_run(settings, pending):
    settings.BILLING_CHAIN_ADAPTER = "hashinsight.billing.chain.FakeAdapter"
    chain.FakeAdapter.reset()
    chain.FakeAdapter.set(TX, confirmations=6)
    try:
        check_chain_payments.delay(trigger="manual")
    finally:
        chain.FakeAdapter.reset()
    run = JobRun.objects.get(job_type="billing_check_chain_payments")
    assert run.status == "success" and run.result["confirmed"] == 1
    assert Payment.objects.get().chain_status == "confirmed"
