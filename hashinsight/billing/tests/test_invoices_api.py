"""The invoices API: who sees and changes what (owner/admin all; site owners their sites, read-only; a client only
its own issued invoices — another client's is a 404, like a missing one), bad input refused without change, the
statement file's bytes, credit notes."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest

from hashinsight.billing import invoicing, issuing, statements
from hashinsight.billing.models import CreditNote, Invoice
from hashinsight.billing.tests.factories_invoicing import add_daily, stub_sla
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db

SEP, SEP_END = date(2026, 9, 1), date(2026, 9, 30)
ALL_USERS = ("owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "guest")


@pytest.fixture
def books(farm, monkeypatch):
    """Contracts X@A (issued), Y@A (draft), Y@B (issued); one miner each, 30 daily rows each."""
    stub_sla(monkeypatch)
    contracts = {
        "xa": HostingContractFactory(customer=farm.client_x, site=farm.site_a, start_date=date(2026, 1, 1)),
        "ya": HostingContractFactory(customer=farm.client_y, site=farm.site_a, start_date=date(2026, 1, 1)),
        "yb": HostingContractFactory(customer=farm.client_y, site=farm.site_b, start_date=date(2026, 1, 1)),
    }
    add_daily(farm.miners.values(), SEP, SEP_END)
    invoices = {key: invoicing.build_draft(c, SEP) for key, c in contracts.items()}
    for key in ("xa", "yb"):
        invoices[key] = issuing.invoice_issue(invoices[key], actor=farm.users["owner"])
    farm.contracts, farm.invoices = contracts, invoices
    return farm


def as_user(api, farm, name):
    if name != "anonymous":
        api.force_authenticate(farm.users[name])
    return api


def ids_of(response):
    return {row["id"] for row in response.json()["results"]}


def test_the_list_is_scoped_per_role(api, books):
    inv = books.invoices
    expected = {
        "owner": {inv["xa"].pk, inv["ya"].pk, inv["yb"].pk},
        "admin": {inv["xa"].pk, inv["ya"].pk, inv["yb"].pk},
        "siteowner_a": {inv["xa"].pk, inv["ya"].pk},
        "siteowner_b_ro": {inv["yb"].pk},
        "client_x": {inv["xa"].pk},
        "client_y": {inv["yb"].pk},  # its draft at A is not shown
    }
    for name, ids in expected.items():
        api.force_authenticate(books.users[name])
        response = api.get("/api/v1/invoices")
        assert response.status_code == 200, name
        assert ids_of(response) == ids, name
    for name in ("customer", "guest"):
        api.force_authenticate(books.users[name])
        assert api.get("/api/v1/invoices").status_code == 403
    api.force_authenticate(None)
    assert api.get("/api/v1/invoices").status_code in (401, 403)


def test_list_filters_sort_and_csv(api, books):
    as_user(api, books, "owner")
    inv = books.invoices
    assert ids_of(api.get("/api/v1/invoices?status=issued")) == {inv["xa"].pk, inv["yb"].pk}
    assert ids_of(api.get(f"/api/v1/invoices?customer={books.client_y.pk}")) == {inv["ya"].pk, inv["yb"].pk}
    assert ids_of(api.get(f"/api/v1/invoices?site={books.site_b.pk}")) == {inv["yb"].pk}
    assert ids_of(api.get(f"/api/v1/invoices?contract={books.contracts['xa'].pk}")) == {inv["xa"].pk}
    assert ids_of(api.get("/api/v1/invoices?period=2026-09")) == {inv["xa"].pk, inv["ya"].pk, inv["yb"].pk}
    assert ids_of(api.get("/api/v1/invoices?period=2026-08")) == set()
    numbers = [r["number"] for r in api.get("/api/v1/invoices?sort=number&status=issued").json()["results"]]
    assert numbers == sorted(numbers)
    for bad in ("status=nope", "period=2026-13", "sort=evil", "customer=abc", "limit=0"):
        response = api.get(f"/api/v1/invoices?{bad}")
        assert response.status_code == 400, bad
        assert "error_code" in response.json()
    csv_body = b"".join(api.get("/api/v1/invoices?format=csv&status=issued").streaming_content).decode("utf-8-sig")
    assert inv["xa"].number in csv_body and inv["yb"].number in csv_body and len(csv_body.strip().split("\n")) == 3


def test_a_client_reads_only_its_own_issued_invoices(api, books):
    inv = books.invoices
    as_user(api, books, "client_x")
    body = api.get(f"/api/v1/invoices/{inv['xa'].pk}").json()
    assert body["number"] == inv["xa"].number and body["lines"][0]["kind"] == "energy"
    assert body["total"] == "129.60"
    for other in ("ya", "yb"):
        for suffix in ("", "/statement", "/issue", "/void"):
            method = api.post if suffix in ("/issue", "/void") else api.get
            assert method(f"/api/v1/invoices/{inv[other].pk}{suffix}").status_code == 404, (other, suffix)
    assert api.get("/api/v1/invoices/999999999").status_code == 404
    assert api.get("/api/v1/invoices/999999999999999999").status_code == 404


@pytest.mark.parametrize("name", ALL_USERS)
def test_the_statement_file_per_role(api, books, name):
    inv = books.invoices["xa"]
    as_user(api, books, name)
    response = api.get(f"/api/v1/invoices/{inv.pk}/statement")
    expected = {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 200,
                "client_y": 404, "customer": 403, "guest": 403}[name]  # fmt: skip
    assert response.status_code == expected
    if expected == 200:
        body = b"".join(response.streaming_content)
        assert body == statements.statement_bytes(inv)
        assert hashlib.sha256(body).hexdigest() == inv.statement_sha256 == response["X-Statement-SHA256"]
        assert f'filename="statement-{inv.number}.csv"' in response["Content-Disposition"]
        assert api.get(f"/api/v1/invoices/{inv.pk}/statement.csv").status_code == 200


@pytest.mark.parametrize("name", ALL_USERS)
def test_issue_and_void_per_role(api, books, name):
    draft = books.invoices["ya"]  # client Y's draft at site A
    as_user(api, books, name)
    expected = {"owner": 200, "admin": 200, "siteowner_a": 403, "siteowner_b_ro": 404, "client_x": 404,
                "client_y": 404, "customer": 403, "guest": 403}[name]  # fmt: skip
    for action in ("void", "issue"):
        response = api.post(f"/api/v1/invoices/{draft.pk}/{action}")
        if action == "void" and expected == 200:
            assert response.json()["status"] == "void"
            draft = invoicing.build_draft(books.contracts["ya"], SEP)  # a fresh draft to issue
            continue
        assert response.status_code == expected, action
    issued = Invoice.objects.get(pk=draft.pk)
    assert issued.status == ("issued" if expected == 200 else "draft")


def test_issuing_twice_and_voiding_an_issued_invoice_are_conflicts(api, books):
    as_user(api, books, "admin")
    inv = books.invoices["xa"]
    for action in ("issue", "void"):
        response = api.post(f"/api/v1/invoices/{inv.pk}/{action}")
        assert response.status_code == 409 and response.json()["error_code"] == "invoice_not_draft"
    assert issuing.verify_invoice(Invoice.objects.get(pk=inv.pk)) == {"content": True, "statement": True}


@pytest.mark.parametrize("name", ALL_USERS)
def test_build_per_role(api, books, name):
    as_user(api, books, name)
    response = api.post("/api/v1/invoices/build", {"month": "2026-09"}, format="json")
    expected = {"owner": 200, "admin": 200}.get(name, 403)
    assert response.status_code == expected
    if expected == 200:
        # The draft is rebuilt; the two issued invoices are left alone (and the farm has no other contract).
        assert response.json() == {"month": "2026-09-01", "built": 1, "skipped": 2, "failed": 0}


def test_build_one_contract_and_bad_input(api, books):
    as_user(api, books, "owner")
    before = list(Invoice.objects.order_by("pk").values_list("pk", "status", "total", "generated_at"))
    contract = books.contracts["ya"]
    never = HostingContractFactory(
        customer=books.client_x, site=books.site_b, start_date=date(2026, 1, 1), end_date=date(2026, 9, 20),
        status="terminated",
    )  # fmt: skip
    for body, code, status in [
        ({"month": "2026-9"}, "invalid_month", 400),
        ({"month": "2026-13"}, "invalid_month", 400),
        ({"month": 202609}, "invalid_month", 400),
        ({}, "invalid_month", 400),
        ({"month": "2999-01"}, "month_not_ended", 400),
        ({"month": "2026-09", "contract": "x"}, "invalid_contract", 400),
        ({"month": "2026-09", "contract": 10**30}, "invalid_contract", 400),
        ({"month": "2026-09", "contract": 987654321}, "not_found", 404),
        ({"month": "2025-09", "contract": contract.pk}, "contract_not_billed", 400),
        ({"month": "2026-09", "contract": never.pk}, "contract_not_billed", 400),  # terminated before activation
        ({"month": "2026-09", "extra": 1}, "invalid_body", 400),
    ]:
        response = api.post("/api/v1/invoices/build", body, format="json")
        assert (response.status_code, response.json()["error_code"]) == (status, code), body
    assert list(Invoice.objects.order_by("pk").values_list("pk", "status", "total", "generated_at")) == before
    response = api.post("/api/v1/invoices/build", {"month": "2026-09", "contract": contract.pk}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["built"], body["invoice"]["id"], body["invoice"]["total"]) == (1, books.invoices["ya"].pk, "129.60")


def test_credit_notes_through_the_api(api, books):
    inv = books.invoices["xa"]  # 129.60
    for name in ("siteowner_a", "client_x", "customer"):
        as_user(api, books, name)
        response = api.post("/api/v1/credit-notes", {"invoice": inv.pk, "amount": "10", "reason": "x"}, format="json")
        assert response.status_code == 403, name
    as_user(api, books, "admin")
    for body, code in [
        ({"invoice": inv.pk, "amount": "0", "reason": "x"}, "invalid_amount"),
        ({"invoice": inv.pk, "amount": "1.005", "reason": "x"}, "invalid_amount"),
        ({"invoice": inv.pk, "amount": "129.61", "reason": "x"}, "amount_exceeds_balance"),
        ({"invoice": inv.pk, "amount": "1", "reason": ""}, "invalid_reason"),
        ({"invoice": "1", "amount": "1", "reason": "x"}, "invalid_invoice"),
        ({"invoice": inv.pk, "amount": "1", "reason": "x", "more": 1}, "invalid_body"),
    ]:
        response = api.post("/api/v1/credit-notes", body, format="json")
        assert (response.status_code, response.json()["error_code"]) == (400, code), body
    response = api.post("/api/v1/credit-notes", {"invoice": books.invoices["ya"].pk, "amount": "1", "reason": "x"},
                        format="json")  # fmt: skip
    assert (response.status_code, response.json()["error_code"]) == (409, "invoice_not_open")
    assert not CreditNote.objects.exists()
    response = api.post("/api/v1/credit-notes", {"invoice": inv.pk, "amount": 29.6, "reason": "Meter fault"},
                        format="json")  # fmt: skip
    assert response.status_code == 201
    assert response.json()["amount"] == "29.60" and response.json()["number"].startswith("CN-")
    assert Invoice.objects.get(pk=inv.pk).balance_due == Decimal("100.00")
    as_user(api, books, "client_x")
    assert [n["invoice"] for n in api.get("/api/v1/credit-notes").json()["results"]] == [inv.pk]
    assert api.get(f"/api/v1/invoices/{inv.pk}").json()["credit_notes"][0]["reason"] == "Meter fault"
    as_user(api, books, "client_y")
    assert api.get("/api/v1/credit-notes").json()["results"] == []
    response = api.post("/api/v1/credit-notes", {"invoice": inv.pk, "amount": "1", "reason": "x"}, format="json")
    assert response.status_code == 403


def test_the_credit_note_list_conforms_to_its_schema(books):
    """The list is a page (count, next, previous, results), as the schema now says (it documented a bare array)."""
    from django.core import signals
    from django.db import close_old_connections

    # conforms() calls a real WSGI handler, which would close the test's connection (its transaction) on PostgreSQL.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        _check_credit_note_page(books)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _check_credit_note_page(books):
    from hashinsight.tests.test_api_fuzz import conforms

    note = issuing.credit_note_issue(
        books.invoices["xa"], amount="10.00", reason="goodwill", actor=books.users["owner"]
    )
    status, body = conforms(books, "/api/v1/credit-notes/", "GET", query={"limit": 5})
    assert status == 200 and body["count"] == 1 and body["next"] is None
    assert [(row["id"], row["amount"], row["invoice_number"]) for row in body["results"]] == [
        (note.pk, "10.00", books.invoices["xa"].number)
    ]
