"""Payments as services: recording, refusals, partial → paid, chain confirmations, the address pool and
``payment_instructions`` (owner: payments). Figures are hand-computed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from hashinsight.billing import chain, payments
from hashinsight.billing.models import Commission, InvoiceStatus, Payment, PaymentAddress
from hashinsight.billing.tests.factories_payments import fill_pool, issued_invoice, tron_address
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent

TX1 = "a" * 64
TX2 = "b" * 64


@pytest.fixture
def owner(farm):
    return farm.users["owner"]


@pytest.fixture
def invoice(db):
    return issued_invoice(total="1000.00")


def _events(kind: str) -> list[dict]:
    return [e.payload for e in OutboxEvent.objects.filter(event_type=kind).order_by("created_at", "pk")]


def test_bank_payments_take_an_invoice_from_issued_to_partially_paid_to_paid(owner, invoice):
    first = payments.payment_record(actor=owner, invoice=invoice, method="bank", amount="400.00", reference="WIRE-1")
    invoice.refresh_from_db()
    assert first.chain_status == Payment.ChainStatus.NOT_APPLICABLE
    assert (invoice.status, invoice.amount_paid, invoice.balance_due) == (
        InvoiceStatus.PARTIALLY_PAID, Decimal("400.00"), Decimal("600.00"),
    )  # fmt: skip
    payments.payment_record(actor=owner, invoice=invoice, method="bank", amount=Decimal("600"), reference="WIRE-2")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.balance_due) == (
        InvoiceStatus.PAID, Decimal("1000.00"), Decimal("0.00"),
    )  # fmt: skip
    statuses = [(p["previous_status"], p["status"]) for p in _events("invoice.changed")]
    assert statuses == [("issued", "partially_paid"), ("partially_paid", "paid")]
    recorded = _events("payment.recorded")
    assert [(p["amount"], p["chain_status"]) for p in recorded] == [("400.00", "n/a"), ("600.00", "n/a")]
    assert AuditEvent.objects.filter(event_type="payment.recorded").count() == 2


def test_a_crypto_payment_counts_only_once_confirmed(owner, invoice):
    p = payments.payment_record(
        actor=owner, invoice=invoice, method="btc", amount="1000.00", txid=TX1.upper(), crypto_amount="0.01000000"
    )
    invoice.refresh_from_db()
    assert p.chain_status == Payment.ChainStatus.PENDING and p.txid == TX1
    assert invoice.amount_paid == Decimal("0") and invoice.status == InvoiceStatus.ISSUED
    # Below the threshold (BTC: 3): stored, still pending.
    payments.payment_confirm(actor=owner, payment=p, confirmations=2)
    p.refresh_from_db()
    invoice.refresh_from_db()
    assert (p.chain_status, p.confirmations, invoice.amount_paid) == ("pending", 2, Decimal("0"))
    payments.payment_confirm(actor=owner, payment=p)
    p.refresh_from_db()
    invoice.refresh_from_db()
    assert (p.chain_status, p.confirmations) == ("confirmed", 3)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Decimal("1000.00"))
    # Confirming again changes nothing.
    before = OutboxEvent.objects.count()
    payments.payment_confirm(actor=owner, payment=p)
    assert OutboxEvent.objects.count() == before


def test_the_same_txid_twice_is_refused_and_changes_nothing(owner, invoice):
    payments.payment_record(actor=owner, invoice=invoice, method="usdt", amount="100", txid=TX1)
    other = issued_invoice()
    counts = (Payment.objects.count(), OutboxEvent.objects.count(), AuditEvent.objects.count())
    with pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=other, method="usdt", amount="100", txid="0x" + TX1)
    assert (exc.value.code, exc.value.status) == ("duplicate_txid", 409)
    assert (Payment.objects.count(), OutboxEvent.objects.count(), AuditEvent.objects.count()) == counts
    # The same txid on the other chain is another transaction.
    payments.payment_record(actor=owner, invoice=other, method="btc", amount="100", txid=TX1)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"method": "bank", "amount": "0", "reference": "R"}, "not_positive"),
        ({"method": "bank", "amount": "-5", "reference": "R"}, "not_positive"),
        ({"method": "bank", "amount": "1.005", "reference": "R"}, "too_precise"),
        ({"method": "bank", "amount": "abc", "reference": "R"}, "invalid"),
        ({"method": "bank", "amount": "NaN", "reference": "R"}, "invalid"),
        ({"method": "bank", "amount": True, "reference": "R"}, "invalid"),
        ({"method": "bank", "amount": "10"}, "required"),
        ({"method": "bank", "amount": "10", "reference": "R", "txid": TX1}, "unexpected_field"),
        ({"method": "cash", "amount": "10"}, "invalid_choice"),
        ({"method": "btc", "amount": "10"}, "required"),
        ({"method": "btc", "amount": "10", "txid": "xyz"}, "invalid_txid"),
        ({"method": "btc", "amount": "10", "txid": TX2, "confirmations": -1}, "invalid"),
        ({"method": "btc", "amount": "10", "txid": TX2, "crypto_amount": "0.123456789"}, "too_precise"),
        ({"method": "bank", "amount": "1000.01", "reference": "R"}, "exceeds_balance"),
        ({"method": "bank", "amount": "10", "reference": "R", "received_at": "2999-01-01T00:00:00Z"}, "in_future"),
        ({"method": "bank", "amount": "10", "reference": "R", "received_at": "yesterday"}, "invalid"),
        ({"method": "bank", "amount": "10", "reference": "R\x00"}, "invalid"),
    ],
)
def test_bad_input_is_refused_with_a_code_and_changes_nothing(owner, invoice, kwargs, code):
    before = (Payment.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=invoice, **kwargs)
    assert exc.value.code == code
    assert (Payment.objects.count(), OutboxEvent.objects.count()) == before


def test_pending_crypto_payments_hold_back_the_open_balance_and_overpayment_is_explicit(owner, invoice):
    payments.payment_record(actor=owner, invoice=invoice, method="btc", amount="700", txid=TX1)
    with pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=invoice, method="bank", amount="300.01", reference="R")
    assert exc.value.code == "exceeds_balance" and exc.value.details["open_balance"] == "300.00"
    payments.payment_record(
        actor=owner, invoice=invoice, method="bank", amount="350", reference="R", allow_overpayment=True
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID and invoice.amount_paid == Decimal("350.00")


def test_only_issued_invoices_take_payments(owner, db):
    draft = issued_invoice(status=InvoiceStatus.DRAFT, number=None)
    with pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=draft, method="bank", amount="1", reference="R")
    assert (exc.value.code, exc.value.status) == ("invoice_not_issued", 409)
    paid = issued_invoice(total="10.00", status=InvoiceStatus.PAID, amount_paid=Decimal("10.00"))
    with pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=paid, method="bank", amount="1", reference="R")
    assert exc.value.code == "invoice_paid"


def test_roles_without_finance_full_cannot_record(farm, invoice):
    for name in ("siteowner_a", "client_x", "customer", "guest"):
        with pytest.raises(DomainError) as exc:
            payments.payment_record(actor=farm.users[name], invoice=invoice, method="bank", amount="1", reference="R")
        assert exc.value.status == 403


def test_a_payment_to_an_overdue_invoice_that_pays_part_keeps_it_overdue(owner, db):
    late = issued_invoice(total="500.00", status=InvoiceStatus.OVERDUE, due_date=timezone.now().date() - timedelta(3))
    payments.payment_record(actor=owner, invoice=late, method="bank", amount="100", reference="R")
    late.refresh_from_db()
    assert late.status == InvoiceStatus.OVERDUE and late.balance_due == Decimal("400.00")
    payments.payment_record(actor=owner, invoice=late, method="bank", amount="400", reference="R2")
    late.refresh_from_db()
    assert late.status == InvoiceStatus.PAID


# --- the chain check -------------------------------------------------------------------------------


@pytest.fixture
def fake_chain(settings):
    settings.BILLING_CHAIN_ADAPTER = "hashinsight.billing.chain.FakeAdapter"
    chain.FakeAdapter.reset()
    yield chain.FakeAdapter
    chain.FakeAdapter.reset()


def test_the_chain_check_confirms_fails_and_leaves_pending_as_the_adapter_reports(owner, fake_chain, db):
    a, b, c, d = (issued_invoice(total="100.00") for _ in range(4))
    pa = payments.payment_record(actor=owner, invoice=a, method="btc", amount="100", txid="1" * 64)
    pb = payments.payment_record(actor=owner, invoice=b, method="usdt", amount="100", txid="2" * 64)
    pc = payments.payment_record(actor=owner, invoice=c, method="usdt", amount="100", txid="3" * 64)
    pd = payments.payment_record(actor=owner, invoice=d, method="btc", amount="100", txid="4" * 64)
    fake_chain.set("1" * 64, confirmations=3)  # BTC needs 3: confirmed
    fake_chain.set("2" * 64, confirmations=19)  # USDT needs 20: pending, count stored
    fake_chain.set("3" * 64, failed=True)
    # "4"*64 unknown to the adapter: pending
    result = payments.check_chain_payments()
    assert result == {"adapter": "fake", "checked": 4, "confirmed": 1, "failed": 1, "pending": 2, "skipped": 0}
    for p in (pa, pb, pc, pd):
        p.refresh_from_db()
    assert [(p.chain_status, p.confirmations) for p in (pa, pb, pc, pd)] == [
        ("confirmed", 3), ("pending", 19), ("failed", 0), ("pending", 0),
    ]  # fmt: skip
    a.refresh_from_db()
    c.refresh_from_db()
    assert a.status == InvoiceStatus.PAID and c.status == InvoiceStatus.ISSUED
    # A second run changes nothing more.
    again = payments.check_chain_payments()
    assert again["confirmed"] == 0 and again["checked"] == 2


def test_the_manual_adapter_confirms_what_the_operator_entered(owner, settings, invoice):
    settings.BILLING_CONFIRMATIONS = {"btc": 2, "usdt": 20}
    p = payments.payment_record(actor=owner, invoice=invoice, method="btc", amount="1000", txid=TX1, confirmations=2)
    assert payments.check_chain_payments()["confirmed"] == 1
    p.refresh_from_db()
    assert p.chain_status == "confirmed"


def test_the_http_adapter_turns_errors_into_pending_and_is_not_called_unconfigured(settings, monkeypatch):
    settings.BILLING_CHAIN_EXPLORER_URL = ""
    calls = []
    adapter = chain.HttpExplorerAdapter()
    monkeypatch.setattr(adapter, "_get", lambda path: calls.append(path))
    assert adapter.observe(method="btc", txid=TX1) == chain.Observation()
    assert calls == []

    configured = chain.HttpExplorerAdapter(base_url="http://127.0.0.1:9", timeout=0.2)

    def boom(path):
        raise TimeoutError("timed out")

    monkeypatch.setattr(configured, "_get", boom)
    assert configured.observe(method="btc", txid=TX1).confirmations is None
    answers = {f"/tx/{TX1}/status": {"confirmed": True, "block_height": 100}, "/blocks/tip/height": 102}
    monkeypatch.setattr(configured, "_get", answers.get)
    assert configured.observe(method="btc", txid=TX1).confirmations == 3
    answers[f"/tx/{TX1}/status"] = {"confirmed": False}
    assert configured.observe(method="btc", txid=TX1).confirmations == 0
    answers[f"/tx/{TX1}/status"] = ["nonsense"]
    assert configured.observe(method="btc", txid=TX1).confirmations is None
    assert configured.observe(method="usdt", txid=TX1) == chain.Observation()


def test_the_http_adapter_survives_a_refused_connection():
    # Port 9 on the loopback: nothing listens, the connection is refused at once.
    adapter = chain.HttpExplorerAdapter(base_url="http://127.0.0.1:9/api", timeout=0.5)
    assert adapter.observe(method="btc", txid=TX1).confirmations is None


# --- the pool ------------------------------------------------------------------------------------


def test_import_checks_every_line_and_refuses_the_whole_batch_on_one_bad_line(owner):
    with pytest.raises(DomainError) as exc:
        payments.address_import(
            actor=owner, network="btc",
            addresses="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\n1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3\n",
        )  # fmt: skip
    assert exc.value.code == "invalid_address"
    assert exc.value.details["invalid"] == [
        {"line": 2, "address": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "code": "bad_checksum",
         "reason": "has a wrong checksum"},
    ]  # fmt: skip
    assert PaymentAddress.objects.count() == 0
    result = payments.address_import(
        actor=owner, network="btc",
        addresses="BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4\n# comment\n\n3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    )  # fmt: skip
    assert result.created == ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]
    again = payments.address_import(actor=owner, network="btc", addresses=["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"])
    assert again.created == [] and again.already_known == ["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]
    with pytest.raises(DomainError) as exc:
        payments.address_import(actor=owner, network="usdt", addresses="0x52908400098527886E0F7030069857D2E4169EE7")
    assert exc.value.details["invalid"][0]["code"] == "unsupported_network"
    assert AuditEvent.objects.filter(event_type="payment_addresses.imported").count() == 1


def test_only_owners_and_admins_import(farm):
    for name in ("siteowner_a", "client_x"):
        with pytest.raises(DomainError) as exc:
            payments.address_import(actor=farm.users[name], network="usdt", addresses=tron_address(1))
        assert exc.value.status == 403


def test_assign_addresses_gives_distinct_addresses_and_never_fails_issuing(db):
    fill_pool(usdt=[tron_address(1)])
    first, second = issued_invoice(), issued_invoice()
    with transaction.atomic():
        assert payments.assign_addresses(first) == ()
    with transaction.atomic():
        missing = payments.assign_addresses(second)
    assert missing == ("usdt",)  # one USDT address in the pool: the second invoice issues without one
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.btc_address == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" and first.usdt_address == tron_address(1)
    assert second.btc_address == "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
    assert second.usdt_address == ""
    # A repeat changes nothing: the invoice keeps its addresses.
    with transaction.atomic():
        payments.assign_addresses(first)
    first.refresh_from_db()
    assert first.btc_address == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert PaymentAddress.objects.filter(assigned_at__isnull=False).count() == 3
    assert set(PaymentAddress.objects.filter(invoice=first).values_list("network", flat=True)) == {"btc", "usdt"}


def test_payment_instructions_give_bank_details_amounts_and_a_bip21_uri(settings, monkeypatch, db):
    settings.BILLING_BANK_DETAILS = {"Beneficiary": "HashInsight Hosting Ltd.", "IBAN": "DE89370400440532013000"}
    invoice = issued_invoice(total="1234.56", btc_address=BTC_ADDRESS, usdt_address=tron_address(7))
    monkeypatch.setattr(payments, "_btc_price", lambda: (Decimal("61728.00"), "2026-11-25"))
    out = payments.payment_instructions(invoice)
    assert out["bank"] == {
        "Beneficiary": "HashInsight Hosting Ltd.", "IBAN": "DE89370400440532013000", "reference": invoice.number,
    }  # fmt: skip
    # 1234.56 / 61728 = 0.0200000… → 0.02000000 BTC (rounded up to the satoshi).
    assert out["btc"]["amount_btc"] == "0.02000000"
    assert out["btc"]["uri"] == (
        f"bitcoin:{BTC_ADDRESS}?amount=0.02000000&label=HashInsight&message=Invoice%20{invoice.number}"
    )
    assert out["usdt"]["amount"] == "1234.56" and out["usdt"]["network"] == "TRC-20 (TRON)"
    monkeypatch.setattr(payments, "_btc_price", lambda: (Decimal("30000.00"), "2026-11-25"))
    # 1234.56 / 30000 = 0.041152 exactly; 1234.57 / 30000 = 0.0411523333… → 0.04115234 (up, not 0.04115233).
    assert payments.payment_instructions(invoice)["btc"]["amount_btc"] == "0.04115200"
    invoice.total = Decimal("1234.57")
    assert payments.payment_instructions(invoice)["btc"]["amount_btc"] == "0.04115234"
    bare = issued_invoice(currency="EUR")
    settings.BILLING_BANK_DETAILS = {}
    out = payments.payment_instructions(bare)
    assert out["btc"] is None and out["usdt"] is None and out["bank"] is None
    assert set(out["notes"]) == {"no_bank_details", "no_btc_address", "no_usdt_address"}


BTC_ADDRESS = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_commission_is_earned_once_when_the_invoice_is_paid(farm, db):
    owner = farm.users["owner"]
    seller = farm.users["admin"]
    invoice = issued_invoice(total="1000.00")
    invoice.contract.sales_owner, invoice.contract.commission_pct = seller, Decimal("2.50")
    invoice.contract.save()
    payments.payment_record(actor=owner, invoice=invoice, method="bank", amount="999.99", reference="R1")
    assert Commission.objects.count() == 0  # not paid yet
    payments.payment_record(actor=owner, invoice=invoice, method="bank", amount="0.01", reference="R2")
    payments.payment_record(
        actor=owner, invoice=invoice, method="bank", amount="50", reference="R3", allow_overpayment=True
    )
    commission = Commission.objects.get()
    # 2.5 % of the 1,000.00 due (the 50.00 overpayment earns nothing) = 25.00.
    assert (commission.sales_owner, commission.base_amount, commission.amount) == (
        seller, Decimal("1000.00"), Decimal("25.00"),
    )  # fmt: skip
    from hashinsight.billing.commissions import commission_earn

    invoice.refresh_from_db()
    assert commission_earn(invoice) == commission and Commission.objects.count() == 1


def test_issuing_takes_addresses_from_the_pool_and_issues_without_when_it_is_empty(farm, monkeypatch):
    """Through the invoicing part's real issue: addresses are given inside its transaction; an empty USDT pool
    still issues the invoice, without a USDT address."""
    from datetime import date

    from hashinsight.billing import invoicing, issuing
    from hashinsight.billing.tests.factories_invoicing import add_daily, stub_sla
    from hashinsight.tests.factories import HostingContractFactory

    stub_sla(monkeypatch)
    fill_pool(usdt=[tron_address(5)])
    sep = date(2026, 9, 1)
    contracts = [
        HostingContractFactory(customer=farm.client_x, site=farm.site_a, start_date=date(2026, 1, 1)),
        HostingContractFactory(customer=farm.client_y, site=farm.site_b, start_date=date(2026, 1, 1)),
    ]
    add_daily(farm.miners.values(), sep, date(2026, 9, 30))
    first, second = (issuing.invoice_issue(invoicing.build_draft(c, sep), actor=farm.users["owner"]) for c in contracts)
    assert first.status == second.status == InvoiceStatus.ISSUED
    assert first.btc_address == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" and first.usdt_address == tron_address(5)
    assert second.btc_address == "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
    assert second.usdt_address == ""
    assert set(PaymentAddress.objects.filter(invoice=first).values_list("network", flat=True)) == {"btc", "usdt"}
    instructions = payments.payment_instructions(second)
    assert instructions["usdt"] is None and "no_usdt_address" in instructions["notes"]


def test_a_txid_landing_between_the_check_and_the_insert_is_a_409_not_a_500(owner, invoice):
    """Another operator's payment with the same txid commits after our check passed: the unique constraint
    decides, and ours is refused with the same code, nothing written."""
    from unittest import mock

    from django.db.models.query import QuerySet

    other = issued_invoice()
    payments.payment_record(actor=owner, invoice=other, method="btc", amount="5", txid=TX2)
    # The check misses the other writer's row.
    with mock.patch.object(QuerySet, "exists", lambda self: False), pytest.raises(DomainError) as exc:
        payments.payment_record(actor=owner, invoice=invoice, method="btc", amount="5", txid=TX2)
    assert (exc.value.code, exc.value.status) == ("duplicate_txid", 409)
    assert Payment.objects.filter(txid=TX2).count() == 1
    assert not OutboxEvent.objects.filter(event_type="payment.recorded", payload__invoice_id=invoice.pk).exists()


def test_demo_pool_addresses_pass_the_checks_and_seed_once(db):
    from hashinsight.billing.addresses import validate_btc, validate_usdt

    assert all(validate_btc(a) == a for a in payments.demo_addresses("btc", 5))
    assert all(validate_usdt(a) == a for a in payments.demo_addresses("usdt", 5))
    assert payments.seed_demo_pool(count=3) == 6
    assert payments.seed_demo_pool(count=3) == 0 and PaymentAddress.objects.count() == 6


@pytest.mark.parametrize(
    ("template", "key"),
    [
        ("portal/finance/_instructions.html", "pi"),
        ("email/billing/overdue_reminder.txt", "instructions"),
        ("email/billing/overdue_reminder.html", "instructions"),
    ],
)
def test_a_btc_amount_names_the_day_of_its_btc_price(template, key):
    """The BTC amount is the balance at the latest market price, which may be months old (the shipped market data
    end on 2026-02-12): the invoice page and the reminder e-mails say which day's price it is, in both languages."""
    from django.template.loader import render_to_string
    from django.utils import translation

    btc = {"address": BTC_ADDRESS, "amount_btc": "0.02000000", "price_usd": "61728.00", "price_date": "2026-02-12",
           "uri": f"bitcoin:{BTC_ADDRESS}", "confirmations": 3}  # fmt: skip
    context = {key: {"btc": btc, "number": "INV-1", "balance_due": "1234.56", "currency": "USD"}, "days_overdue": 3}
    with translation.override("en"):
        assert "(BTC price as of 2026-02-12)" in render_to_string(template, context)
    with translation.override("zh-hans"):
        assert "BTC 价格截至 2026-02-12" in render_to_string(template, context)
