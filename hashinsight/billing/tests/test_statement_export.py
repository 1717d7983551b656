"""Statement exports and the invoice selectors: who sees which invoice, the XLSX's header block, titles, row count
and sums against the invoice's own figures (read back with openpyxl), and the CSV being the canonical file."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest

from hashinsight.billing import exports, selectors
from hashinsight.billing.models import Invoice
from hashinsight.billing.statements import statement_bytes
from hashinsight.billing.tests.test_statement_export_support import make_invoice
from hashinsight.core.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoices(farm):
    """Client X at site A (issued and a draft), client Y at site B (issued)."""
    x_a = [farm.miners[("site-a", "client-x")]]
    y_b = [farm.miners[("site-b", "client-y")]]
    return {
        "x_a": make_invoice(customer=farm.client_x, site=farm.site_a, miners=x_a, command_ids=[41, 42]),
        "x_a_draft": make_invoice(
            customer=farm.client_x,
            site=farm.site_a,
            miners=x_a,
            status=Invoice.Status.DRAFT,
            period_start=date(2026, 2, 1),
        ),
        "y_b": make_invoice(customer=farm.client_y, site=farm.site_b, miners=y_b),
    }


# Who sees what, written out by hand (not derived from the selector).
VISIBLE = {
    "owner": {"x_a", "x_a_draft", "y_b"},
    "admin": {"x_a", "x_a_draft", "y_b"},
    "siteowner_a": {"x_a", "x_a_draft"},
    "siteowner_b_ro": {"y_b"},
    "client_x": {"x_a"},  # not its draft
    "client_y": {"y_b"},
    "customer": set(),
    "guest": set(),
}


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_invoice_list_and_get_follow_the_scope(farm, invoices, username):
    user = farm.users[username]
    seen = set(selectors.invoice_list(user=user).values_list("pk", flat=True))
    assert seen == {invoices[k].pk for k in VISIBLE[username]}
    for key, invoice in invoices.items():
        if key in VISIBLE[username]:
            assert selectors.invoice_get(user=user, pk=invoice.pk) == invoice
        else:
            with pytest.raises(DomainError) as err:
                selectors.invoice_get(user=user, pk=invoice.pk)
            assert err.value.status == 404


def test_anonymous_and_huge_ids_see_nothing(farm, invoices):
    from django.contrib.auth.models import AnonymousUser

    assert not selectors.invoice_list(user=AnonymousUser()).exists()
    with pytest.raises(DomainError):
        selectors.invoice_get(user=farm.users["owner"], pk=2**70)


def test_may_manage_is_finance_full(farm):
    assert {u for u, user in farm.users.items() if selectors.may_manage(user=user)} == {"owner", "admin"}


def test_statement_filters(farm, invoices):
    inv = invoices["x_a"]
    assert selectors.statement_rows(invoice=inv).count() == 3
    only = selectors.statement_rows_filtered(invoice=inv, downtime_only=True)
    assert [(r.day, r.downtime_operator_h) for r in only] == [(date(2026, 1, 2), Decimal("6.000"))]
    serial = farm.miners[("site-a", "client-x")].serial
    assert selectors.statement_rows_filtered(invoice=inv, serial=serial).count() == 3
    assert selectors.statement_rows_filtered(invoice=inv, serial=serial[:4] + "*").count() == 3
    assert selectors.statement_rows_filtered(invoice=inv, serial="nope").count() == 0
    assert selectors.statement_rows_filtered(invoice=inv, day=date(2026, 1, 3)).count() == 1
    assert selectors.statement_has_command(invoice=inv, command_id=42)
    assert not selectors.statement_has_command(invoice=inv, command_id=43)
    assert not selectors.statement_has_command(invoice=invoices["y_b"], command_id=42)


def _xlsx(invoice):
    buf = io.BytesIO()
    written = exports.write_statement_xlsx(invoice, buf)
    buf.seek(0)
    return written, openpyxl.load_workbook(buf)


def _header(ws) -> dict:
    out = {}
    for row in ws.iter_rows(min_row=1, max_row=40, values_only=True):
        if row[0] and row[3] is not None:
            out[row[0]] = row[3]
    return out


def test_xlsx_header_titles_rows_and_sums(farm):
    miners = [farm.miners[("site-a", "client-x")], farm.miners[("site-b", "client-x")]]
    inv = make_invoice(customer=farm.client_x, site=farm.site_a, miners=miners, days=31, command_ids=[7])
    written, wb = _xlsx(inv)
    ws = wb.active
    assert written == 62
    header = _header(ws)
    assert header["Hosting client"] == farm.client_x.company
    assert header["Contract"] == inv.contract.number
    assert header["Invoice"] == inv.number
    assert header["Period"] == "2026-01-01 – 2026-01-31"
    assert header["Statement rows (miner-days)"] == 62
    # By hand: 61 full days × 24.5 + one outage day 18.375 = 1,512.875 kWh; × 0.06 = 90.7725 → 90.77 USD.
    assert Decimal(str(header["Energy (kWh)"])) == Decimal("1512.875") == inv.energy_kwh
    assert Decimal(str(header["Energy charge (USD)"])).quantize(Decimal("0.01")) == Decimal("90.77") == inv.subtotal
    assert Decimal(str(header["Total due (USD)"])).quantize(Decimal("0.01")) == inv.total == Decimal("89.77")
    assert header["Operator downtime (h)"] == 6
    # The title row: frozen, units in the titles; the data below it.
    title_row = next(r for r in range(1, 40) if ws.cell(r, 1).value == "Day")
    assert ws.freeze_panes == f"A{title_row + 1}"
    titles = [c.value for c in ws[title_row]]
    assert titles[:6] == ["Day", "Serial", "Miner id", "Energy (kWh)", "Uptime (%)", "Average hashrate (TH/s)"]
    assert "Energy charge (USD, before rounding)" in titles
    data = list(ws.iter_rows(min_row=title_row + 1, values_only=True))
    assert len(data) == 62
    col = {t: i for i, t in enumerate(titles)}
    assert sum(Decimal(str(r[col["Energy (kWh)"]])) for r in data) == inv.energy_kwh
    assert round(sum(r[col["Energy charge (USD, before rounding)"]] for r in data), 2) == float(inv.subtotal)
    # Ordered by day, then serial; dates are dates; the outage row carries its reason and command.
    assert data[0][0].date() == date(2026, 1, 1) and data[-1][0].date() == date(2026, 1, 31)
    assert [r[1] for r in data[:2]] == sorted(m.serial for m in miners)
    outage = [r for r in data if r[col["Operator downtime (h)"]]]
    assert len(outage) == 1
    assert outage[0][col["Downtime reasons"]] == "site_outage"
    assert outage[0][col["Commands"]] == "#7"
    assert outage[0][col["Curtailed at operator's request (h)"]] == 2
    assert outage[0][col["Telemetry reported"]] is True
    # Number formats with the units' places.
    assert ws.cell(title_row + 1, col["Energy (kWh)"] + 1).number_format == "#,##0.000"
    assert ws.cell(title_row + 1, 1).number_format == "yyyy-mm-dd"


def test_xlsx_text_is_escaped_and_empty_statement_works(farm):
    farm.client_x.company = 'A&B <Mining> "Ltd" \x01'
    farm.client_x.save()
    miner = farm.miners[("site-a", "client-x")]
    miner.serial = "=cmd|' /C calc'!A0 & <x>"
    miner.save()
    inv = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[miner], days=1)
    _written, wb = _xlsx(inv)
    ws = wb.active
    assert _header(ws)["Hosting client"].startswith("A&B <Mining>")
    title_row = next(r for r in range(1, 40) if ws.cell(r, 1).value == "Day")
    cell = ws.cell(title_row + 1, 2)
    assert cell.value == "=cmd|' /C calc'!A0 & <x>" and cell.data_type == "s"  # text, never a formula
    empty = make_invoice(customer=farm.client_y, site=farm.site_b, miners=[], days=1)
    written, wb = _xlsx(empty)
    assert written == 0 and _header(wb.active)["Statement rows (miner-days)"] == 0


def test_csv_is_the_canonical_file(rf, farm, invoices):
    inv = invoices["x_a"]
    response = exports.statement_csv_response(rf.get("/"), inv)
    body = b"".join(response.streaming_content)
    assert body == statement_bytes(inv)
    assert response["Content-Disposition"].startswith(f'attachment; filename="statement-{inv.number}')


def test_xlsx_response_is_a_file(farm, invoices):
    response = exports.statement_xlsx_response(invoices["x_a"])
    body = b"".join(response.streaming_content)
    response.close()
    assert response["Content-Type"] == exports.XLSX_CONTENT_TYPE
    assert response["Cache-Control"] == "no-store"
    assert f"statement-{invoices['x_a'].number}.xlsx" in response["Content-Disposition"]
    assert openpyxl.load_workbook(io.BytesIO(body)).active.max_row > 20


def test_xlsx_costs_a_constant_number_of_queries(farm, django_assert_max_num_queries):
    """No per-row ORM work: 2 rows and 62 rows cost the same queries (summary, rows)."""
    small = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]], days=1)
    miners = [farm.miners[("site-a", "client-x")], farm.miners[("site-b", "client-x")]]
    big = make_invoice(customer=farm.client_y, site=farm.site_b, miners=miners, days=31)
    for invoice in (small, big):
        invoice = Invoice.objects.select_related("customer", "contract", "site").get(pk=invoice.pk)
        with django_assert_max_num_queries(4):
            exports.write_statement_xlsx(invoice, io.BytesIO())
