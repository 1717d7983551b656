"""The invoices admin: read-only pages scoped like the API, actions through the services (issued invoices are left
alone), no actions for read-only users, credit notes read-only."""

from __future__ import annotations

from datetime import date

import pytest

from hashinsight.billing import invoicing, issuing
from hashinsight.billing.models import Invoice
from hashinsight.billing.tests.factories_invoicing import add_daily, stub_sla
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db
INVOICES, NOTES = "/admin/billing/invoice/", "/admin/billing/creditnote/"
SEP, SEP_END = date(2026, 9, 1), date(2026, 9, 30)


def _login(client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)


@pytest.fixture
def drafts(farm, monkeypatch):
    stub_sla(monkeypatch)
    add_daily(farm.miners.values(), SEP, SEP_END)
    a = invoicing.build_draft(HostingContractFactory(customer=farm.client_x, site=farm.site_a), SEP)
    b = invoicing.build_draft(HostingContractFactory(customer=farm.client_y, site=farm.site_b), SEP)
    return a, b


def test_admin_issues_drafts_through_the_service(client, farm, drafts):
    a, b = drafts
    _login(client, farm.users["admin"])
    assert client.get(INVOICES).status_code == 200
    page = client.get(f"{INVOICES}{a.pk}/change/")
    assert page.status_code == 200 and "Energy" in page.content.decode()
    issuing.invoice_issue(b, actor=farm.users["admin"])
    r = client.post(INVOICES, {"action": "issue_selected", "_selected_action": [a.pk, b.pk]}, follow=True)
    assert "1 invoices issued." in r.content.decode()
    a.refresh_from_db()
    assert a.status == "issued" and a.number.startswith("INV-")
    note = issuing.credit_note_issue(a, amount="1.00", reason="admin test", actor=farm.users["admin"])
    assert client.get(NOTES).status_code == 200
    assert client.get(f"{NOTES}{note.pk}/change/").status_code == 200
    assert client.post(f"{INVOICES}{a.pk}/delete/").status_code == 403
    assert client.post(f"{NOTES}{note.pk}/delete/").status_code == 403


def test_site_owner_reads_its_sites_invoices_without_actions(client, farm, drafts):
    a, b = drafts
    _login(client, farm.users["siteowner_a"])
    assert client.get(f"{INVOICES}{a.pk}/change/").status_code == 200
    assert client.get(f"{INVOICES}{b.pk}/change/").status_code == 404
    client.post(INVOICES, {"action": "issue_selected", "_selected_action": [a.pk]})
    assert Invoice.objects.get(pk=a.pk).status == "draft"
