"""The statement API: /api/v1/invoices/{id}/statement.xlsx, …/statement/rows and …/statement/commands/{id}, for every
role (hidden → 404, no FINANCE → 403, anonymous → 401/403), the rows' figures and links, filters, bad input."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest
from rest_framework.test import APIClient

from hashinsight.billing.models import Invoice
from hashinsight.billing.tests.test_statement_export_support import make_command, make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def inv(farm):
    command = make_command(farm.site_a)
    x = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")],
                     farm.miners[("site-b", "client-x")]], command_ids=[command.pk])  # fmt: skip
    draft = make_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]],
                         status=Invoice.Status.DRAFT, period_start=date(2026, 2, 1))  # fmt: skip
    y = make_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    return {"x": x, "draft": draft, "y": y, "command": command}


def api_for(farm, username) -> APIClient:
    c = APIClient()
    if username:
        c.force_authenticate(farm.users[username])
    return c


# Written out by hand: the status of each invoice's statement endpoints for each role.
EXPECTED = {
    "owner": {"x": 200, "draft": 200, "y": 200},
    "admin": {"x": 200, "draft": 200, "y": 200},
    "siteowner_a": {"x": 200, "draft": 200, "y": 404},
    "siteowner_b_ro": {"x": 404, "draft": 404, "y": 200},
    "client_x": {"x": 200, "draft": 404, "y": 404},
    "client_y": {"x": 404, "draft": 404, "y": 200},
    "customer": {"x": 403, "draft": 403, "y": 403},
    "guest": {"x": 403, "draft": 403, "y": 403},
}


@pytest.mark.parametrize("username", [*EXPECTED, None])
def test_every_endpoint_per_role(farm, inv, username):
    c = api_for(farm, username)
    cmd = inv["command"].pk
    for key in ("x", "draft", "y"):
        pk = inv[key].pk
        want = EXPECTED[username][key] if username else None
        for path in ("statement.xlsx", "statement/rows", f"statement/commands/{cmd}"):
            got = c.get(f"/api/v1/invoices/{pk}/{path}").status_code
            if username is None:
                assert got in (401, 403), (key, path)
                continue
            expected = want
            if path.startswith("statement/commands") and key != "x" and want == 200:
                expected = 404  # only X's statement names the command
            assert got == expected, (key, path, username)
        # Writes are not offered: a visible invoice answers 405, a hidden one 404 (never a hint that it exists).
        post = c.post(f"/api/v1/invoices/{pk}/statement/rows").status_code
        if username and want == 200:
            assert post in (403, 405)
        elif username and want == 404:
            assert post in (403, 404)


def test_rows_figures_links_and_order(farm, inv):
    x = inv["x"]
    data = api_for(farm, "client_x").get(f"/api/v1/invoices/{x.pk}/statement/rows?limit=100").json()
    assert data["count"] == 6
    rows = data["results"]
    assert [r["day"] for r in rows] == sorted(r["day"] for r in rows)
    outage = [r for r in rows if r["downtime_reasons"]]
    assert len(outage) == 1
    r = outage[0]
    first = min(farm.miners[("site-a", "client-x")], farm.miners[("site-b", "client-x")], key=lambda m: m.serial)
    assert r["serial"] == first.serial and r["day"] == "2026-01-02"
    assert r["energy_kwh"] == "18.375" and r["uptime_pct"] == "75.000" and r["downtime_operator_h"] == "6.000"
    assert r["curtailed_h"] == "2.000" and r["downtime_reasons"] == ["site_outage"] and r["currency"] == "USD"
    assert r["energy_amount"] == "1.102500"
    assert r["links"]["telemetry"] == f"/api/v1/telemetry/daily?miner={first.pk}&from=2026-01-02&to=2026-01-02"
    assert r["links"]["telemetry_page"] == f"/miners/{first.pk}/telemetry/?day=2026-01-02"
    cmd = inv["command"].pk
    # A client cannot use the commands API: its link reads the command through the statement.
    assert r["links"]["commands"] == [f"/api/v1/invoices/{x.pk}/statement/commands/{cmd}"]
    owner = api_for(farm, "owner").get(f"/api/v1/invoices/{x.pk}/statement/rows?downtime=true").json()
    assert owner["results"][0]["links"]["commands"] == [f"/api/v1/commands/{cmd}"]
    # The links work for the reader they were given to.
    c = api_for(farm, "client_x")
    assert c.get(r["links"]["telemetry"]).status_code == 200
    command = c.get(r["links"]["commands"][0]).json()
    assert command["id"] == cmd and command["type"] == "CURTAIL"
    assert command["miner_days"] == [{"serial": first.serial, "day": "2026-01-02"}]


def test_rows_filters_and_bad_input(farm, inv):
    x = inv["x"]
    c = api_for(farm, "owner")
    serial = farm.miners[("site-b", "client-x")].serial
    assert c.get(f"/api/v1/invoices/{x.pk}/statement/rows?miner={serial}").json()["count"] == 3
    assert c.get(f"/api/v1/invoices/{x.pk}/statement/rows?miner=SN*").json()["count"] == 6
    assert c.get(f"/api/v1/invoices/{x.pk}/statement/rows?day=2026-01-03").json()["count"] == 2
    assert c.get(f"/api/v1/invoices/{x.pk}/statement/rows?downtime=1").json()["count"] == 1
    for bad in ("day=2026-13-01", "downtime=maybe", "miner=" + "x" * 70, "miner=a%00b"):
        response = c.get(f"/api/v1/invoices/{x.pk}/statement/rows?{bad}")
        assert response.status_code == 400, bad
        assert set(response.json()) >= {"error_code", "message", "request_id", "details"}
    assert c.get(f"/api/v1/invoices/{2**70}/statement/rows").status_code == 404
    assert c.get(f"/api/v1/invoices/{x.pk}/statement/commands/{2**70}").status_code == 404
    page = c.get(f"/api/v1/invoices/{x.pk}/statement/rows?limit=4&offset=4").json()
    assert len(page["results"]) == 2 and page["next"] is None


def test_xlsx_download(farm, inv):
    response = api_for(farm, "client_x").get(f"/api/v1/invoices/{inv['x'].pk}/statement.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    title_row = next(r for r in range(1, 40) if ws.cell(r, 1).value == "Day")
    assert ws.max_row - title_row == 6


def test_routes_do_not_collide_with_the_invoicing_part(farm, inv):
    from django.urls import resolve

    assert resolve(f"/api/v1/invoices/{inv['x'].pk}/statement.xlsx").url_name == "invoice-statement-xlsx"
    assert resolve(f"/api/v1/invoices/{inv['x'].pk}/statement/rows").url_name == "invoice-statement-rows"
    assert resolve(f"/api/v1/invoices/{inv['x'].pk}/statement.csv").url_name == "invoice-statement"
