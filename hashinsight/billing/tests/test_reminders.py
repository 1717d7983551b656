"""The overdue job and its reminder e-mails: once each at 1, 7 and 14 days (owner: payments)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail

from hashinsight.billing import reminders
from hashinsight.billing.models import InvoiceStatus
from hashinsight.billing.payment_tasks import mark_overdue_and_remind
from hashinsight.billing.tests.factories_payments import issued_invoice, tron_address
from hashinsight.events.models import JobRun, OutboxEvent
from hashinsight.tests.factories import HostingContractFactory, UserFactory

DUE = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PORTAL_BASE_URL = "https://portal.example.test"
    settings.BILLING_BANK_DETAILS = {"Beneficiary": "HashInsight Hosting Ltd.", "Account": "123-456"}


@pytest.fixture
def late(farm):
    farm.client_x.email = "billing@client-x.test"
    farm.client_x.save()
    zh = farm.users["client_x"]
    zh.language = "zh-hans"
    zh.save()
    return issued_invoice(
        contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a), total="1000.00", due_date=DUE,
        usdt_address=tron_address(9),
    )  # fmt: skip


def test_past_due_becomes_overdue_once_with_an_outbox_event(late, db):
    paid = issued_invoice(total="10.00", due_date=DUE, status=InvoiceStatus.PAID)
    partial = issued_invoice(total="10.00", due_date=DUE, status=InvoiceStatus.PARTIALLY_PAID)
    on_time = issued_invoice(total="10.00", due_date=DUE + timedelta(days=1))
    assert reminders.mark_overdue(today=DUE) == 0  # on the due day itself it is not late
    assert reminders.mark_overdue(today=DUE + timedelta(days=1)) == 2
    for inv in (late, paid, partial, on_time):
        inv.refresh_from_db()
    assert [late.status, paid.status, partial.status, on_time.status] == ["overdue", "paid", "overdue", "issued"]
    events = OutboxEvent.objects.filter(event_type="invoice.changed")
    assert sorted(e.payload["invoice_id"] for e in events) == sorted([late.pk, partial.pk])
    assert all(e.payload["status"] == "overdue" for e in events)
    assert reminders.mark_overdue(today=DUE + timedelta(days=2)) == 1  # on_time, a day later
    assert reminders.mark_overdue(today=DUE + timedelta(days=3)) == 0


def test_reminders_at_1_7_and_14_days_each_once_to_billing_and_contacts(late, farm):
    other_contact = UserFactory(role="CLIENT", email="ops@client-x.test")
    from sites.services import customer_add_contact

    customer_add_contact(user=other_contact, customer=farm.client_x)
    for day in range(0, 20):
        reminders.mark_overdue_and_remind(today=DUE + timedelta(days=day))
    late.refresh_from_db()
    assert late.reminders_sent == 3 and late.last_reminder_at is not None
    # Three steps × three recipients (billing e-mail, client_x, the second contact).
    assert len(mail.outbox) == 9
    by_step = [sorted(m.to[0] for m in mail.outbox[i : i + 3]) for i in (0, 3, 6)]
    assert all(step == ["billing@client-x.test", "client_x@example.test", "ops@client-x.test"] for step in by_step)
    first = next(m for m in mail.outbox if m.to == ["billing@client-x.test"])
    assert first.subject == f"Reminder: invoice {late.number} is 1 day overdue"
    url = reminders.invoice_url(late)
    assert url in first.body and url.startswith("https://portal.example.test/") and f"/invoices/{late.pk}/" in url
    assert "1,000.00 USD" in first.body and tron_address(9) in first.body and "Beneficiary: HashInsight" in first.body
    html, mime = first.alternatives[0]
    assert mime == "text/html" and reminders.invoice_url(late) in html
    subjects = sorted({m.subject for m in mail.outbox if m.to == ["billing@client-x.test"]})
    assert subjects == sorted(
        f"Reminder: invoice {late.number} is {d} {'day' if d == 1 else 'days'} overdue" for d in (1, 7, 14)
    )
    chinese = next(m for m in mail.outbox if m.to == ["client_x@example.test"])
    # Rendered in the contact's language (the wording is Chinese once the catalogue has the strings).
    assert 'lang="zh-hans"' in chinese.alternatives[0][0] and 'lang="en"' in html


def test_a_job_down_for_a_week_sends_one_reminder_for_the_latest_step(late):
    reminders.mark_overdue_and_remind(today=DUE + timedelta(days=8))
    late.refresh_from_db()
    assert late.reminders_sent == 2  # the 1- and 7-day steps are both passed
    assert len(mail.outbox) == 2  # one message to each of the two recipients, not two each
    reminders.mark_overdue_and_remind(today=DUE + timedelta(days=9))
    assert len(mail.outbox) == 2


def test_a_paid_invoice_gets_no_reminder(late, farm):
    from hashinsight.billing.payments import payment_record

    reminders.mark_overdue(today=DUE + timedelta(days=1))
    late.refresh_from_db()
    payment_record(actor=farm.users["owner"], invoice=late, method="bank", amount="1000", reference="R")
    late.refresh_from_db()
    assert late.status == InvoiceStatus.PAID
    reminders.mark_overdue_and_remind(today=DUE + timedelta(days=30))
    assert mail.outbox == []


def test_the_task_records_a_job_run(late, monkeypatch):
    from datetime import UTC, datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 11, 9, tzinfo=UTC))
    mark_overdue_and_remind.delay(trigger="manual")
    run = JobRun.objects.get(job_type="billing_mark_overdue_and_remind")
    assert run.status == "success" and run.result["overdue"] == 1 and run.result["emails"] == 2
