"""The CRM admin: lists scoped like the API, saves and actions through the services (a refusal is a message and
changes nothing), no deletes, read-only for site owners."""

from __future__ import annotations

import pytest

from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import DealFactory, HostingContractFactory
from sites.models import Deal, HostingContract

pytestmark = pytest.mark.django_db
DEALS, CONTRACTS = "/admin/sites/deal/", "/admin/sites/hostingcontract/"


def _login(client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)


def test_owner_adds_a_deal_through_the_service(client, farm):
    _login(client, farm.users["owner"])
    assert client.get(DEALS).status_code == 200 and client.get(f"{DEALS}add/").status_code == 200
    r = client.post(f"{DEALS}add/", {
        "title": "Admin deal", "prospect_company": "Admin Prospect", "stage": "qualified", "expected_miners": "10",
        "expected_mw": "0.035", "value": "1000.00", "currency": "USD", "owner": farm.users["owner"].pk,
    })  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:2000]
    deal = Deal.objects.get(title="Admin deal")
    assert OutboxEvent.objects.filter(event_type="deal.changed", payload__deal_id=deal.pk).exists()


def test_contract_actions_and_refusals(client, farm):
    _login(client, farm.users["admin"])
    first = HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft")
    clash = HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft")
    assert client.get(CONTRACTS).status_code == 200
    assert client.get(f"{CONTRACTS}{first.pk}/change/").status_code == 200
    r = client.post(CONTRACTS, {"action": "activate", "_selected_action": [first.pk, clash.pk]}, follow=True)
    text = r.content.decode()
    assert "1 contract activated." in text and "already has a contract in force" in text
    assert sorted(HostingContract.objects.values_list("status", flat=True)) == ["active", "draft"]
    assert AuditEvent.objects.filter(event_type="hosting_contract.activated").count() == 1
    assert client.post(f"{CONTRACTS}{first.pk}/delete/").status_code == 403


def test_site_owner_reads_its_sites_rows_only(client, farm):
    mine = DealFactory(customer=farm.client_x, site=farm.site_a, title="Mine")
    theirs = DealFactory(customer=farm.client_x, site=farm.site_b, title="Theirs")
    contract = HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft")
    _login(client, farm.users["siteowner_a"])
    listing = client.get(DEALS).content.decode()
    assert "Mine" in listing and "Theirs" not in listing
    assert client.get(f"{DEALS}{theirs.pk}/change/").status_code == 404
    assert client.get(f"{DEALS}{mine.pk}/change/").status_code == 200
    assert client.get(f"{DEALS}add/").status_code == 403
    client.post(CONTRACTS, {"action": "activate", "_selected_action": [contract.pk]})
    contract.refresh_from_db()
    assert contract.status == "draft"
