"""Invoice pages and their buttons: who may open what (every page and download, every role, hidden → 404), what the
list and the detail show (totals with currency, status badges, the statement's links to telemetry and commands,
filters), the downloads' content, and each operator button calling its service (403 for read-only readers,
refusals shown as messages, nothing changed)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.test import Client

from hashinsight.billing.models import CreditNote, Invoice, Payment
from hashinsight.billing.statements import statement_bytes
from hashinsight.billing.tests.test_statement_export_support import (
    add_credit_note,
    add_payment,
    make_command,
    make_invoice,
)

pytestmark = pytest.mark.django_db

USERS = ("owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "guest", None)


@pytest.fixture
def inv(farm):
    """Client X's issued invoice at site A (with a credit note and a payment), its draft, and client Y's at B."""
    command = make_command(farm.site_a)
    x = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                     command_ids=[command.pk])  # fmt: skip
    add_credit_note(x, "2.00")
    add_payment(x, "1.50", reference="WIRE-77")
    draft = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                         status=Invoice.Status.DRAFT, period_start=date(2026, 2, 1))  # fmt: skip
    y = make_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    return {"x": x, "draft": draft, "y": y, "command": command}


def client_for(farm, username) -> Client:
    c = Client()
    if username:
        c.force_login(farm.users[username])
    return c


# Expected status of each page for each role, written out by hand. 302: to the login page.
READ_PAGES = {
    # path key: {user: status}
    "home": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 200,
             "client_y": 200, "customer": 403, "guest": 403, None: 302},
    "list": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 200,
             "client_y": 200, "customer": 403, "guest": 403, None: 302},
    "x": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 200,
          "client_y": 404, "customer": 403, "guest": 403, None: 302},
    "draft": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 404,
              "client_y": 404, "customer": 403, "guest": 403, None: 302},
    "y": {"owner": 200, "admin": 200, "siteowner_a": 404, "siteowner_b_ro": 200, "client_x": 404,
          "client_y": 200, "customer": 403, "guest": 403, None: 302},
}  # fmt: skip


def _url(key, inv, suffix=""):
    if key == "home":
        return "/finance/"
    if key == "list":
        return "/finance/invoices/"
    return f"/finance/invoices/{inv[key].pk}/{suffix}"


@pytest.mark.parametrize("username", USERS)
def test_pages_and_downloads_per_role(farm, inv, username):
    c = client_for(farm, username)
    for key, expected in READ_PAGES.items():
        status = expected[username]
        assert c.get(_url(key, inv)).status_code == status, (key, username)
        if key in ("x", "draft", "y"):
            command = f"commands/{inv['command'].pk}/"
            for suffix in ("statement.csv", "statement.xlsx", command):
                got = c.get(_url(key, inv, suffix)).status_code
                # Only client X's issued invoice names the command.
                want = status if not (suffix == command and key != "x") else (404 if status == 200 else status)
                assert got == want, (key, suffix, username)


def test_missing_and_huge_ids_are_404(farm, inv):
    c = client_for(farm, "owner")
    assert c.get("/finance/invoices/999999/").status_code == 404
    assert c.get(f"/finance/invoices/{2**70}/").status_code == 404
    assert c.get(f"/finance/invoices/{inv['x'].pk}/commands/{2**70}/").status_code == 404
    other = make_command(farm.site_a)
    assert c.get(f"/finance/invoices/{inv['x'].pk}/commands/{other.pk}/").status_code == 404  # not in the statement


def test_list_shows_only_own_with_totals_badges_and_csv(farm, inv):
    c = client_for(farm, "client_x")
    body = c.get("/finance/invoices/").content.decode()
    assert inv["x"].number in body and inv["y"].number not in body
    assert "Draft #" not in body
    # 61.74 - 1.00 = ... by hand: 3 days, 2 full (24.5 kWh) + 1 outage (18.375 kWh) = 67.375 kWh × 0.06 = 4.0425
    # → 4.04; minus 1.00 SLA credit = 3.04 total; balance 3.04 - 1.50 paid - 2.00 credited = -0.46.
    assert inv["x"].total == Decimal("3.04")
    assert 'data-testid="totals-total">3.04 USD' in body
    assert 'data-testid="totals-balance">-0.46 USD' in body
    assert 'data-status="issued"' in body
    csv = b"".join(c.get("/finance/invoices/?format=csv").streaming_content).decode("utf-8-sig")
    lines = csv.strip().splitlines()
    assert len(lines) == 2 and inv["x"].number in lines[1] and "-0.46" in lines[1]
    assert lines[0].startswith("Invoice,Invoice id,Client,Site,Contract")


def test_list_filters_and_sort(farm, inv):
    c = client_for(farm, "owner")

    def numbers(query):
        body = c.get(f"/finance/invoices/?{query}").content.decode()
        return {k for k in ("x", "draft", "y") if f'href="/finance/invoices/{inv[k].pk}/"' in body}

    assert numbers("") == {"x", "draft", "y"}
    assert numbers("status=draft") == {"draft"}
    assert numbers(f"client={farm.client_y.pk}") == {"y"}
    assert numbers(f"site={farm.site_a.pk}") == {"x", "draft"}
    assert numbers(f"contract={inv['y'].contract.number}") == {"y"}
    assert numbers("month=2026-02") == {"draft"}
    assert numbers("month=2026-1") == {"x", "draft", "y"}  # a bad month is named and not applied
    assert "Enter a month as YYYY-MM." in c.get("/finance/invoices/?month=2026-1").content.decode()
    assert c.get("/finance/invoices/?sort=-balance").status_code == 200
    # A client's filter choices are its own.
    body = client_for(farm, "client_x").get("/finance/invoices/").content.decode()
    assert farm.client_y.company not in body


def test_detail_shows_header_lines_statement_links_notes_payments(farm, inv):
    x = inv["x"]
    body = client_for(farm, "client_x").get(f"/finance/invoices/{x.pk}/").content.decode()
    assert x.number in body and "3.04 USD" in body and "-0.46 USD" in body
    assert 'data-testid="invoice-line"' in body
    miner = farm.miners[("site-a", "client-x")]
    assert f'href="/miners/{miner.pk}/telemetry/?day=2026-01-02"' in body
    # A client has no commands pages: the command opens through the statement.
    cmd = inv["command"].pk
    assert f'href="/finance/invoices/{x.pk}/commands/{cmd}/"' in body
    assert "CN-" in body and "WIRE-77" in body
    assert 'data-testid="invoice-actions"' not in body  # no buttons for a client
    assert f'href="/finance/invoices/{x.pk}/proof.json"' in body  # the proofs part's download
    # An operator's command links go to the commands pages, and the buttons are there.
    body = client_for(farm, "owner").get(f"/finance/invoices/{x.pk}/").content.decode()
    assert f'href="/commands/{cmd}/"' in body and 'data-testid="invoice-actions"' in body
    assert 'data-testid="credit-note-form"' in body and 'data-testid="payment-form"' in body
    # A site owner reads it without buttons.
    body = client_for(farm, "siteowner_a").get(f"/finance/invoices/{x.pk}/").content.decode()
    assert 'data-testid="invoice-actions"' not in body


def test_statement_filter_and_pages(farm):
    miners = [farm.miners[("site-a", "client-x")], farm.miners[("site-b", "client-x")]]
    x = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners, days=31)
    c = client_for(farm, "client_x")
    body = c.get(f"/finance/invoices/{x.pk}/").content.decode()
    assert body.count('data-testid="statement-row"') == 50 and 'data-testid="statement-next"' in body
    body = c.get(f"/finance/invoices/{x.pk}/?page=2").content.decode()
    assert body.count('data-testid="statement-row"') == 12
    body = c.get(f"/finance/invoices/{x.pk}/?downtime=on").content.decode()
    assert body.count('data-testid="statement-row"') == 1 and "site_outage" in body
    body = c.get(f"/finance/invoices/{x.pk}/?miner={miners[1].serial}").content.decode()
    assert body.count('data-testid="statement-row"') == 31
    body = c.get(f"/finance/invoices/{x.pk}/?day=2026-01-05&page=abc").content.decode()
    assert body.count('data-testid="statement-row"') == 2
    body = c.get(f"/finance/invoices/{x.pk}/?day=not-a-day").content.decode()
    assert "The filter was not applied." in body


def test_downloads_content(farm, inv):
    x = inv["x"]
    c = client_for(farm, "client_x")
    csv = b"".join(c.get(f"/finance/invoices/{x.pk}/statement.csv").streaming_content)
    assert csv == statement_bytes(Invoice.objects.get(pk=x.pk))
    response = c.get(f"/finance/invoices/{x.pk}/statement.xlsx")
    body = b"".join(response.streaming_content)
    ws = openpyxl.load_workbook(io.BytesIO(body)).active
    title_row = next(r for r in range(1, 40) if ws.cell(r, 1).value == "Day")
    assert ws.max_row - title_row == 3
    page = c.get(f"/finance/invoices/{x.pk}/commands/{inv['command'].pk}/").content.decode()
    assert "Curtail" in page and "Completed" in page
    assert farm.miners[("site-a", "client-x")].serial in page and "2026-01-02" in page


# --- the buttons --------------------------------------------------------------------------------------------

BUTTONS = ("rebuild", "issue", "void", "credit-note", "payment", "hold")


@pytest.mark.parametrize("username", ["siteowner_a", "client_x"])
def test_read_only_readers_get_403_on_every_button(farm, inv, username):
    c = client_for(farm, username)
    target = inv["draft"] if username == "siteowner_a" else inv["x"]
    for button in BUTTONS:
        assert c.post(f"/finance/invoices/{target.pk}/{button}/").status_code == 403, button
    assert c.post("/finance/invoices/build/", {"contract": target.contract_id, "month": "2026-03"}).status_code == 403


@pytest.mark.parametrize("username", ["siteowner_b_ro", "client_y"])
def test_hidden_invoice_buttons_are_404(farm, inv, username):
    c = client_for(farm, username)
    for button in BUTTONS:
        assert c.post(f"/finance/invoices/{inv['x'].pk}/{button}/").status_code == 404, button


@pytest.mark.parametrize("username", ["customer", "guest"])
def test_no_finance_module_is_403(farm, inv, username):
    c = client_for(farm, username)
    for button in BUTTONS:
        assert c.post(f"/finance/invoices/{inv['x'].pk}/{button}/").status_code == 403, button


def test_buttons_need_post_and_csrf(farm, inv):
    c = Client(enforce_csrf_checks=True)
    c.force_login(farm.users["owner"])
    assert c.get(f"/finance/invoices/{inv['x'].pk}/payment/").status_code == 405
    assert c.post(f"/finance/invoices/{inv['x'].pk}/payment/", {"method": "bank", "amount": "1"}).status_code == 403
    assert Payment.objects.filter(invoice=inv["x"]).count() == 1


def test_refusals_are_messages_and_change_nothing(farm, inv):
    c = client_for(farm, "owner")
    x = inv["x"]
    before = (x.amount_paid, x.amount_credited, CreditNote.objects.count(), Payment.objects.count())
    for button, data in (
        ("credit-note", {"amount": "-5", "reason": "x"}),
        ("payment", {"method": "bank", "amount": "abc"}),
        ("rebuild", {}),  # an issued invoice is not rebuilt
        ("void", {}),
        ("hold", {"reason": "late"}),  # not overdue
    ):
        response = c.post(f"/finance/invoices/{x.pk}/{button}/", data, follow=True)
        assert response.status_code == 200, button
        assert response.redirect_chain[-1][0] == f"/finance/invoices/{x.pk}/"
        assert 'class="alert alert-' in response.content.decode(), button
    x.refresh_from_db()
    assert before == (x.amount_paid, x.amount_credited, CreditNote.objects.count(), Payment.objects.count())
    response = c.post("/finance/invoices/build/", {"contract": "abc", "month": "2026-13"}, follow=True)
    assert "Nothing was built" in response.content.decode()


def test_emailed_statement_links(farm, inv):
    import time
    from unittest import mock

    from hashinsight.billing import exports

    x, client_x = inv["x"], farm.users["client_x"]
    url = exports.statement_link_path(x, user_id=client_x.pk)
    assert url.startswith(f"/finance/invoices/{x.pk}/statement.csv?t=")
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    response = client_for(farm, "client_x").get(url)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == statement_bytes(Invoice.objects.get(pk=x.pk))
    xlsx = exports.statement_link_path(x, user_id=client_x.pk, fmt="xlsx")
    assert client_for(farm, "client_x").get(xlsx).status_code == 200
    # Forwarded to someone else: the link is not theirs (an operator who sees the invoice too).
    assert client_for(farm, "owner").get(url).status_code == 404
    assert client_for(farm, "client_y").get(url).status_code == 404  # and Y does not see the invoice at all
    # A token for another invoice, a tampered one.
    other = exports.statement_link_path(inv["y"], user_id=client_x.pk).split("?")[1]
    assert client_for(farm, "client_x").get(f"/finance/invoices/{x.pk}/statement.csv?{other}").status_code == 404
    assert client_for(farm, "client_x").get(url[:-3] + "abc").status_code == 404
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 8 * 86400):
        old = exports.statement_link_path(x, user_id=client_x.pk)
    expired = client_for(farm, "client_x").get(old)
    assert expired.status_code == 403 and "expired on" in expired.content.decode()
    # The API's export takes the same token.
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(client_x)
    token = url.split("?t=")[1]
    assert api.get(f"/api/v1/invoices/{x.pk}/statement.xlsx?t={token}").status_code == 200
    assert api.get(f"/api/v1/invoices/{x.pk}/statement.xlsx?t={token[:-2]}zz").status_code == 404


def test_a_day_without_telemetry_and_a_void_draft(farm):
    from hashinsight.billing.models import StatementRow

    miner = farm.miners[("site-a", "client-x")]
    draft = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[miner], status=Invoice.Status.DRAFT)
    StatementRow.objects.filter(invoice=draft, day=date(2026, 1, 3)).update(
        reported=False, energy_kwh=0, uptime_pct=0, avg_hashrate_ths=None, downtime_operator_h=24,
        downtime_reasons="no_telemetry",
    )  # fmt: skip
    c = client_for(farm, "owner")
    body = c.get(f"/finance/invoices/{draft.pk}/?downtime=on").content.decode()
    assert body.count('data-testid="statement-row"') == 2 and "no telemetry" in body and "no_telemetry" in body
    Invoice.objects.filter(pk=draft.pk).update(status=Invoice.Status.VOID)
    body = c.get(f"/finance/invoices/{draft.pk}/").content.decode()
    assert 'data-status="void"' in body and "A void draft has no actions." in body


def test_build_refuses_ids_no_row_can_have(farm):
    c = client_for(farm, "owner")
    response = c.post("/finance/invoices/build/", {"contract": str(2**70), "month": "2026-01"}, follow=True)
    assert response.status_code == 200 and "Nothing was built" in response.content.decode()
