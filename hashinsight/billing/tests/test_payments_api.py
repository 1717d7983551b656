"""The payments API: permissions on every endpoint, scoping, bad input, idempotency (owner: payments)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hashinsight.billing.models import Commission, InvoiceStatus, Payment, PaymentAddress
from hashinsight.billing.tests.factories_payments import issued_invoice, tron_address
from hashinsight.tests.factories import HostingContractFactory

TX = "c" * 64


@pytest.fixture
def bills(farm):
    """An invoice of client X at site A and one of client Y at site B."""
    x = issued_invoice(contract=HostingContractFactory(customer=farm.client_x, site=farm.site_a), total="1000.00")
    y = issued_invoice(contract=HostingContractFactory(customer=farm.client_y, site=farm.site_b), total="500.00")
    return x, y


def _login(api, farm, name):
    api.force_authenticate(farm.users[name])
    return api


def test_only_finance_full_records_a_payment(api, farm, bills):
    x, _ = bills
    body = {"invoice": x.pk, "method": "bank", "amount": "100.00", "reference": "WIRE-7"}
    for name in ("siteowner_a", "client_x", "customer", "guest"):
        r = _login(api, farm, name).post("/api/v1/payments", body, format="json")
        assert r.status_code == 403, name
    api.force_authenticate(None)
    assert api.post("/api/v1/payments", body, format="json").status_code in (401, 403)
    assert Payment.objects.count() == 0
    r = _login(api, farm, "admin").post("/api/v1/payments", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["amount"] == "100.00" and r.json()["invoice_status"] == "partially_paid"
    assert r.json()["invoice_balance_due"] == "900.00"


def test_lists_are_scoped_and_hidden_rows_are_404(api, farm, bills):
    x, y = bills
    owner = _login(api, farm, "owner")
    px = owner.post("/api/v1/payments", {"invoice": x.pk, "method": "btc", "amount": "10", "txid": TX}, format="json")
    py = owner.post("/api/v1/payments", {"invoice": y.pk, "method": "bank", "amount": "10", "reference": "R"},
                    format="json")  # fmt: skip
    assert px.status_code == py.status_code == 201
    seen = {}
    for name in ("owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y"):
        r = _login(api, farm, name).get("/api/v1/payments")
        assert r.status_code == 200, name
        seen[name] = sorted(p["invoice"] for p in r.json()["results"])
    assert seen == {
        "owner": sorted([x.pk, y.pk]), "admin": sorted([x.pk, y.pk]), "siteowner_a": [x.pk], "siteowner_b_ro": [y.pk],
        "client_x": [x.pk], "client_y": [y.pk],
    }  # fmt: skip
    for name in ("customer", "guest"):
        assert _login(api, farm, name).get("/api/v1/payments").status_code == 403
    # Client Y does not see X's payment: 404 to read and to confirm; X sees it but may not confirm: 403.
    pid = px.json()["id"]
    assert _login(api, farm, "client_y").get(f"/api/v1/payments/{pid}").status_code == 404
    assert _login(api, farm, "client_y").post(f"/api/v1/payments/{pid}/confirm", {}, format="json").status_code == 404
    assert _login(api, farm, "client_x").post(f"/api/v1/payments/{pid}/confirm", {}, format="json").status_code == 403
    assert Payment.objects.get(pk=pid).chain_status == "pending"
    # A missing invoice is a 404 for the owner too.
    owner = _login(api, farm, "owner")
    r = owner.post("/api/v1/payments", {"invoice": 999999, "method": "bank", "amount": "1", "reference": "R"},
                   format="json")  # fmt: skip
    assert r.status_code == 404


def test_csv_export_and_filters(api, farm, bills):
    x, y = bills
    owner = _login(api, farm, "owner")
    owner.post("/api/v1/payments", {"invoice": x.pk, "method": "bank", "amount": "1.50", "reference": "=HYPERLINK()"},
               format="json")  # fmt: skip
    owner.post("/api/v1/payments", {"invoice": y.pk, "method": "usdt", "amount": "2", "txid": TX}, format="json")
    r = owner.get("/api/v1/payments?method=usdt")
    assert [p["method"] for p in r.json()["results"]] == ["usdt"]
    r = owner.get("/api/v1/payments?format=csv&sort=amount")
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Payment,Invoice,Hosting client")
    assert len(lines) == 3 and "'=HYPERLINK()" in lines[1]  # formula neutralised
    assert owner.get("/api/v1/payments?sort=nonsense").status_code == 400
    assert owner.get("/api/v1/payments?chain_status=maybe").status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"method": "bank", "amount": "1", "reference": "R"}, 400, "required"),
        ({"invoice": "abc", "method": "bank", "amount": "1", "reference": "R"}, 400, "invalid"),
        ({"invoice": None, "method": "bank", "amount": "1", "reference": "R", "colour": "red"}, 400, "invalid_body"),
        ({"method": "bank", "amount": 0, "reference": "R"}, 400, "not_positive"),
        ({"method": "bank", "amount": "5000", "reference": "R"}, 400, "exceeds_balance"),
        ({"method": "btc", "amount": "1", "txid": "nothex"}, 400, "invalid_txid"),
    ],
)
def test_bad_input_answers_400_with_a_code_and_changes_nothing(api, farm, bills, body, status, code):
    x, _ = bills
    if "invoice" not in body and code != "required":
        body = {"invoice": x.pk, **body}
    r = _login(api, farm, "owner").post("/api/v1/payments", body, format="json")
    assert r.status_code == status, r.content
    assert r.json()["error_code"] == code
    assert Payment.objects.count() == 0


def test_the_same_txid_twice_is_409(api, farm, bills):
    x, y = bills
    owner = _login(api, farm, "owner")
    assert owner.post("/api/v1/payments", {"invoice": x.pk, "method": "btc", "amount": "1", "txid": TX},
                      format="json").status_code == 201  # fmt: skip
    r = owner.post("/api/v1/payments", {"invoice": y.pk, "method": "btc", "amount": "1", "txid": TX}, format="json")
    assert r.status_code == 409 and r.json()["error_code"] == "duplicate_txid"
    assert Payment.objects.count() == 1


def test_manual_confirmation_then_paid_and_reject(api, farm, bills):
    x, y = bills
    owner = _login(api, farm, "owner")
    pid = owner.post("/api/v1/payments", {"invoice": x.pk, "method": "usdt", "amount": "1000", "txid": TX},
                     format="json").json()["id"]  # fmt: skip
    r = owner.post(f"/api/v1/payments/{pid}/confirm", {"confirmations": 5}, format="json")
    assert (r.json()["chain_status"], r.json()["confirmations"], r.json()["required_confirmations"]) == (
        "pending", 5, 20,
    )  # fmt: skip
    r = owner.post(f"/api/v1/payments/{pid}/confirm", {"reason": "seen on tronscan"}, format="json")
    assert r.json()["chain_status"] == "confirmed" and r.json()["invoice_status"] == "paid"
    r = owner.post(f"/api/v1/payments/{pid}/reject", {"reason": "oops"}, format="json")
    assert r.status_code == 409 and r.json()["error_code"] == "not_pending"
    other = owner.post("/api/v1/payments", {"invoice": y.pk, "method": "btc", "amount": "5", "txid": "d" * 64},
                       format="json").json()["id"]  # fmt: skip
    assert owner.post(f"/api/v1/payments/{other}/reject", {}, format="json").json()["error_code"] == "required"
    r = owner.post(f"/api/v1/payments/{other}/reject", {"reason": "double spend"}, format="json")
    assert r.json()["chain_status"] == "failed"
    y.refresh_from_db()
    assert y.status == InvoiceStatus.ISSUED and y.amount_paid == Decimal("0")


def test_the_address_pool_is_for_owners_and_admins(api, farm):
    for name in ("siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest"):
        c = _login(api, farm, name)
        assert c.get("/api/v1/payment-addresses").status_code == 403, name
        assert c.post("/api/v1/payment-addresses", {"network": "usdt", "addresses": [tron_address(3)]},
                      format="json").status_code == 403  # fmt: skip
    admin = _login(api, farm, "admin")
    r = admin.post(
        "/api/v1/payment-addresses", {"network": "usdt", "addresses": f"{tron_address(3)}\n{tron_address(4)}"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["created"] == 2
    r = admin.post("/api/v1/payment-addresses", {"network": "btc", "addresses": ["bc1qnotanaddress"]}, format="json")
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_address"
    assert r.json()["details"]["invalid"][0]["line"] == 1
    r = admin.get("/api/v1/payment-addresses?network=usdt")
    assert r.json()["count"] == 2 and r.json()["counts"]["usdt"] == {"free": 2, "assigned": 0}
    assert PaymentAddress.objects.count() == 2


def test_commissions_are_staff_reading_their_own_or_all(api, farm, bills):
    x, y = bills
    seller = farm.users["siteowner_a"]
    x.contract.sales_owner, x.contract.commission_pct = seller, Decimal("3")
    x.contract.save()
    y.contract.sales_owner, y.contract.commission_pct = farm.users["admin"], Decimal("1")
    y.contract.save()
    owner = _login(api, farm, "owner")
    owner.post("/api/v1/payments", {"invoice": x.pk, "method": "bank", "amount": "1000", "reference": "R"},
               format="json")  # fmt: skip
    owner.post("/api/v1/payments", {"invoice": y.pk, "method": "bank", "amount": "500", "reference": "R"},
               format="json")  # fmt: skip
    assert Commission.objects.count() == 2
    r = owner.get("/api/v1/commissions")
    assert sorted(c["amount"] for c in r.json()["results"]) == ["30.00", "5.00"]  # 3 % of 1,000; 1 % of 500
    r = _login(api, farm, "siteowner_a").get("/api/v1/commissions")
    assert [c["amount"] for c in r.json()["results"]] == ["30.00"]
    assert _login(api, farm, "siteowner_b_ro").get("/api/v1/commissions").json()["count"] == 0
    for name in ("client_x", "customer", "guest"):
        assert _login(api, farm, name).get("/api/v1/commissions").status_code == 403
    owner = _login(api, farm, "owner")
    csv = b"".join(owner.get("/api/v1/commissions?format=csv").streaming_content).decode("utf-8-sig")
    assert "30.00" in csv and "5.00" in csv
