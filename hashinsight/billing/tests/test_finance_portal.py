"""The finance home (a client's own invoices, balance due, how to pay, SLA history and proofs) and the operator
buttons' happy paths on the invoice page: build, rebuild, issue and void a draft, credit note, payment, hold."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from commands.models import Command
from hashinsight.billing.models import CreditNote, Invoice, Payment
from hashinsight.billing.tests.test_statement_export_support import make_invoice

pytestmark = pytest.mark.django_db


def client_for(farm, username) -> Client:
    c = Client()
    c.force_login(farm.users[username])
    return c


@pytest.fixture
def home(farm):
    x_open = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    Invoice.objects.filter(pk=x_open.pk).update(
        btc_address="bc1qclientxaddress0000000000000000000000", usdt_address="TXclientxaddress"
    )
    x_paid = make_invoice(customer=farm.client_x, site=farm.site_b, miners=[farm.miners[("site-b", "client-x")]],
                          status=Invoice.Status.PAID, period_start=date(2025, 12, 1))  # fmt: skip
    y_open = make_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    return {"x_open": x_open, "x_paid": x_paid, "y_open": y_open}


def test_client_home_is_its_own(farm, home):
    body = client_for(farm, "client_x").get("/finance/").content.decode()
    assert home["x_open"].number in body and home["x_paid"].number in body
    assert home["y_open"].number not in body
    # Balance due by hand: 67.375 kWh × 0.06 = 4.0425 → 4.04, minus the 1.00 SLA credit = 3.04 (the paid one: 0).
    assert 'data-testid="balance-USD">3.04 USD' in body
    assert body.count('data-testid="open-invoice"') == 1
    assert "bc1qclientxaddress0000000000000000000000" in body and "bitcoin:bc1qclientx" in body
    assert "TXclientxaddress" in body
    assert 'href="/sla/"' in body
    assert 'href="/proofs/documents/"' in body  # clients read WEB3
    assert 'data-testid="nothing-due"' not in body


def test_client_with_nothing_due(farm):
    make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                 status=Invoice.Status.PAID)  # fmt: skip
    body = client_for(farm, "client_x").get("/finance/").content.decode()
    assert 'data-testid="nothing-due"' in body and 'data-testid="instructions-card"' not in body


def test_site_owner_home_covers_its_sites(farm, home):
    body = client_for(farm, "siteowner_b_ro").get("/finance/").content.decode()
    assert home["y_open"].number in body and home["x_paid"].number in body
    assert home["x_open"].number not in body


def test_detail_shows_payment_instructions_for_open_invoices(farm, home):
    body = client_for(farm, "client_x").get(f"/finance/invoices/{home['x_open'].pk}/").content.decode()
    assert 'data-testid="payment-instructions"' in body and "bc1qclientx" in body
    body = client_for(farm, "client_x").get(f"/finance/invoices/{home['x_paid'].pk}/").content.decode()
    assert 'data-testid="payment-instructions"' not in body


# --- the buttons' happy paths ----------------------------------------------------------------------------------


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_issue_and_void_a_draft(farm):
    c = client_for(farm, "owner")
    miners = [farm.miners[("site-a", "client-x")]]
    draft = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners, status=Invoice.Status.DRAFT)
    response = c.post(f"/finance/invoices/{draft.pk}/issue/", follow=True)
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.ISSUED and draft.number, _messages(response)
    assert f"Invoice {draft.number} issued." in _messages(response)
    other = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners, status=Invoice.Status.DRAFT,
                         period_start=date(2026, 3, 1))  # fmt: skip
    response = c.post(f"/finance/invoices/{other.pk}/void/", follow=True)
    other.refresh_from_db()
    assert other.status == Invoice.Status.VOID and "Draft voided." in _messages(response)


def test_credit_note_and_payment(farm):
    c = client_for(farm, "admin")
    inv = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    response = c.post(f"/finance/invoices/{inv.pk}/credit-note/", {"amount": "1.04", "reason": "meter"}, follow=True)
    assert CreditNote.objects.filter(invoice=inv, amount=Decimal("1.04")).exists(), _messages(response)
    response = c.post(f"/finance/invoices/{inv.pk}/payment/", {"method": "bank", "amount": "2.00",
                                                                 "reference": "WIRE-1"}, follow=True)  # fmt: skip
    assert Payment.objects.filter(invoice=inv, amount=Decimal("2.00"), reference="WIRE-1").exists(), _messages(response)
    inv.refresh_from_db()
    assert inv.balance_due == Decimal("0.00")


def test_hold_proposes_a_command_for_an_overdue_client(farm):
    c = client_for(farm, "owner")
    inv = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                       status=Invoice.Status.OVERDUE, period_start=date(2025, 10, 1))  # fmt: skip
    assert inv.due_date < date.today() - timedelta(days=1)
    before = Command.objects.count()
    response = c.post(f"/finance/invoices/{inv.pk}/hold/", {"reason": "unpaid since October"}, follow=True)
    assert Command.objects.count() == before + 1, _messages(response)
    assert "Hold proposed as command #" in _messages(response)


def test_build_and_rebuild_a_draft(farm):
    from hashinsight.tests.factories import HostingContractFactory

    c = client_for(farm, "owner")
    contract = HostingContractFactory(customer=farm.client_x, site=farm.site_a, start_date=date(2025, 1, 1))
    response = c.post("/finance/invoices/build/", {"contract": contract.pk, "month": "2026-01"}, follow=True)
    draft = Invoice.objects.get(contract=contract, period_start=date(2026, 1, 1))
    assert draft.status == Invoice.Status.DRAFT and response.redirect_chain[-1][0] == f"/finance/invoices/{draft.pk}/"
    response = c.post(f"/finance/invoices/{draft.pk}/rebuild/", follow=True)
    assert "Draft rebuilt" in _messages(response)
    assert Invoice.objects.filter(contract=contract).exclude(status=Invoice.Status.VOID).count() == 1


def test_detail_links_the_sla_certificate_and_the_proof(farm, home):
    from hashinsight.billing.models import SlaCertificate

    inv = home["x_open"]
    cert = SlaCertificate.objects.create(
        customer=farm.client_x, contract=inv.contract, invoice=inv, month=date(2026, 1, 1), uptime_pct=Decimal("99"),
        target_pct=Decimal("97"), met=True, document={"payload": {}, "signature": "", "key_id": ""}, sha256="e" * 64,
    )  # fmt: skip
    body = client_for(farm, "client_x").get(f"/finance/invoices/{inv.pk}/").content.decode()
    assert f'href="/sla/certificates/{cert.pk}/download/"' in body
    assert f'href="/finance/invoices/{inv.pk}/proof.json"' in body
    assert client_for(farm, "client_x").get(f"/sla/certificates/{cert.pk}/download/").status_code == 200
    assert client_for(farm, "client_y").get(f"/sla/certificates/{cert.pk}/download/").status_code == 404
