"""The payments portal pages: who sees what, the forms and buttons going through the services (owner: payments)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commands.models import Command
from hashinsight.billing.models import InvoiceStatus, Payment, PaymentAddress
from hashinsight.billing.payments import payment_record
from hashinsight.billing.tests.factories_payments import issued_invoice, tron_address
from hashinsight.tests.factories import HostingContractFactory

PAGES = ["/payments/", "/payments/addresses/", "/payments/commissions/", "/payments/holds/"]
EXPECTED = {
    # path: owner, admin, siteowner_a, siteowner_b_ro, client_x, customer, guest
    "/payments/": (200, 200, 200, 200, 200, 403, 403),
    "/payments/addresses/": (200, 200, 403, 403, 403, 403, 403),
    "/payments/commissions/": (200, 200, 200, 200, 403, 403, 403),
    "/payments/holds/": (200, 200, 403, 403, 403, 403, 403),
}
USERS = ("owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest")


@pytest.fixture
def bills(farm):
    x = issued_invoice(contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a), total="1000.00")
    y = issued_invoice(
        contract=HostingContractFactory(customer=farm.client_y, site=farm.site_b), total="500.00",
        status=InvoiceStatus.OVERDUE, due_date=timezone.now().date() - timedelta(days=3),
    )  # fmt: skip
    return x, y


def test_who_may_open_each_page(client, farm, bills):
    for path, statuses in EXPECTED.items():
        for name, expected in zip(USERS, statuses, strict=True):
            client.force_login(farm.users[name])
            assert client.get(path).status_code == expected, (path, name)
        client.logout()
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r["Location"], path


def test_the_list_is_scoped_and_only_finance_full_gets_the_form_and_buttons(client, farm, bills):
    x, y = bills
    owner = farm.users["owner"]
    payment_record(actor=owner, invoice=x, method="btc", amount="10", txid="e" * 64)
    payment_record(actor=owner, invoice=y, method="bank", amount="20", reference="WIRE-Y")
    client.force_login(owner)
    page = client.get("/payments/").content.decode()
    assert page.count('data-testid="payment-row"') == 2 and 'data-testid="record-form"' in page
    assert page.count('data-testid="confirm-payment"') == 1  # only the pending crypto payment
    client.force_login(farm.users["client_x"])
    page = client.get("/payments/").content.decode()
    assert page.count('data-testid="payment-row"') == 1 and "WIRE-Y" not in page
    assert 'data-testid="record-form"' not in page and 'data-testid="confirm-payment"' not in page
    csv = b"".join(client.get("/payments/?format=csv").streaming_content).decode("utf-8-sig")
    assert len(csv.strip().splitlines()) == 2


def test_record_form_records_and_refuses_with_the_field_named(client, farm, bills):
    x, _ = bills
    client.force_login(farm.users["admin"])
    r = client.post("/payments/record/", {"invoice": x.pk, "method": "bank", "amount": "250.00", "reference": "W-1"})
    assert r.status_code == 302
    x.refresh_from_db()
    assert x.amount_paid == Decimal("250.00") and x.status == InvoiceStatus.PARTIALLY_PAID
    r = client.post("/payments/record/", {"invoice": x.pk, "method": "bank", "amount": "5000", "reference": "W-2"})
    assert r.status_code == 400 and "open balance" in r.content.decode()
    r = client.post("/payments/record/", {"invoice": x.pk, "method": "btc", "amount": "5", "txid": "nope"})
    assert r.status_code == 400 and "64 hexadecimal" in r.content.decode()
    assert Payment.objects.count() == 1
    client.force_login(farm.users["client_x"])
    r = client.post("/payments/record/", {"invoice": x.pk, "method": "bank", "amount": "1", "reference": "W-3"})
    assert r.status_code == 403 and Payment.objects.count() == 1


def test_confirm_and_reject_buttons(client, farm, bills):
    x, y = bills
    owner = farm.users["owner"]
    p1 = payment_record(actor=owner, invoice=x, method="btc", amount="1000", txid="f" * 64)
    p2 = payment_record(actor=owner, invoice=y, method="usdt", amount="5", txid="9" * 64)
    client.force_login(farm.users["client_x"])
    assert client.post(f"/payments/{p1.pk}/confirm/").status_code == 403
    assert client.post(f"/payments/{p2.pk}/confirm/").status_code == 403  # no FULL: refused before the lookup
    client.force_login(owner)
    assert client.post(f"/payments/{p1.pk}/confirm/", {"query": "sort=amount"})["Location"] == "/payments/?sort=amount"
    assert client.post(f"/payments/{p2.pk}/reject/", {"reason": "wrong chain"}).status_code == 302
    assert client.post("/payments/999999/confirm/").status_code == 404
    p1.refresh_from_db()
    p2.refresh_from_db()
    x.refresh_from_db()
    assert (p1.chain_status, p2.chain_status, x.status) == ("confirmed", "failed", InvoiceStatus.PAID)


def test_import_textarea(client, farm):
    client.force_login(farm.users["owner"])
    issued_invoice()  # issued while the pool was empty: no addresses
    page = client.get("/payments/addresses/").content.decode()
    assert 'data-testid="pool-empty"' in page and "1 without BTC, 1 without USDT" in page
    r = client.post("/payments/addresses/", {"network": "usdt", "addresses": f"{tron_address(1)}\nTnotvalid"})
    assert r.status_code == 400 and 'data-testid="import-problems"' in r.content.decode()
    assert PaymentAddress.objects.count() == 0
    r = client.post("/payments/addresses/", {"network": "usdt", "addresses": f"{tron_address(1)}\n{tron_address(2)}"})
    assert r.status_code == 302 and PaymentAddress.objects.count() == 2
    page = client.get("/payments/addresses/").content.decode()
    assert page.count('data-testid="address-row"') == 2
    client.force_login(farm.users["siteowner_a"])
    assert client.post("/payments/addresses/", {"network": "usdt", "addresses": tron_address(3)}).status_code == 403


def test_hold_buttons_propose_commands_and_link_to_them(client, farm, bills):
    client.force_login(farm.users["owner"])
    page = client.get("/payments/holds/").content.decode()
    # Client Y is overdue and has miners at both sites: one row per site.
    assert page.count('data-testid="hold-row"') == 2
    r = client.post("/payments/holds/propose/", {"customer": farm.client_y.pk, "site": farm.site_b.pk, "reason": ""})
    assert r.status_code == 302 and Command.objects.count() == 0  # no reason: refused
    r = client.post(
        "/payments/holds/propose/", {"customer": farm.client_y.pk, "site": farm.site_b.pk, "reason": "3 days late"}
    )
    command = Command.objects.get()
    assert command.command_type == "HASHING_DISABLE" and command.status == "PENDING_APPROVAL"
    page = client.get("/payments/holds/").content.decode()
    assert f'href="/commands/{command.pk}/"' in page
    r = client.post("/payments/holds/propose/", {"customer": farm.client_x.pk, "site": farm.site_a.pk, "reason": "x"})
    assert Command.objects.count() == 1  # client X is not overdue: refused with a message
    client.force_login(farm.users["siteowner_a"])
    assert (
        client.post("/payments/holds/release/", {"customer": farm.client_y.pk, "site": farm.site_a.pk}).status_code
        == 403
    )
