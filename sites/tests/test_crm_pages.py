"""The CRM portal pages with Django's test client: who sees what (per role, written out by hand), the forms and
buttons going through the services, refusals shown on the page, CSV, and no buttons for site owners."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashinsight.events.models import AuditEvent
from hashinsight.tests.factories import DealFactory, HostingContractFactory
from sites.models import Customer, Deal, HostingContract

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n%signed\n%%EOF\n"


@pytest.fixture
def crm(farm):
    farm.deal_a = DealFactory(customer=farm.client_x, site=farm.site_a, title="Deal at A", value=100, expected_mw=2)
    farm.deal_b = DealFactory(customer=farm.client_y, site=farm.site_b, title="Deal at B", value=50, expected_mw=1)
    farm.c_a = HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft")
    farm.c_b = HostingContractFactory(customer=farm.client_y, site=farm.site_b, status="draft")
    return farm


# Expected status per page and user (hand-written): A = objects at site A, B = at site B.
PAGES = {
    "deals": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 403, "customer": 403,
              "guest": 403},
    "deal_a": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 403,
               "customer": 403, "guest": 403},
    "deal_new": {"owner": 200, "admin": 200, "siteowner_a": 403, "siteowner_b_ro": 403, "client_x": 403,
                 "customer": 403, "guest": 403},
    "contracts": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 200, "client_x": 403,
                  "customer": 403, "guest": 403},
    "contract_a": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 403,
                   "customer": 403, "guest": 403},
    "contract_a_miners": {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 403,
                          "customer": 403, "guest": 403},
    "contract_a_edit": {"owner": 200, "admin": 200, "siteowner_a": 403, "siteowner_b_ro": 403, "client_x": 403,
                        "customer": 403, "guest": 403},
}  # fmt: skip


def _url(crm, page):
    return {
        "deals": "/crm/deals/", "deal_a": f"/crm/deals/{crm.deal_a.pk}/", "deal_new": "/crm/deals/new/",
        "contracts": "/crm/contracts/", "contract_a": f"/crm/contracts/{crm.c_a.pk}/",
        "contract_a_miners": f"/crm/contracts/{crm.c_a.pk}/miners/",
        "contract_a_edit": f"/crm/contracts/{crm.c_a.pk}/edit/",
    }[page]  # fmt: skip


@pytest.mark.parametrize("user", ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest"])
def test_page_status_per_role(client, crm, user):
    client.force_login(crm.users[user])
    for page, expected in PAGES.items():
        assert client.get(_url(crm, page)).status_code == expected[user], (page, user)


def test_anonymous_is_sent_to_login(client, crm):
    response = client.get("/crm/deals/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_deal_list_pipeline_filters_and_csv(client, crm):
    client.force_login(crm.users["owner"])
    text = client.get("/crm/deals/").content.decode()
    assert "Deal at A" in text and "Deal at B" in text and 'data-testid="new-deal"' in text
    assert "150.00 USD" in client.get("/crm/deals/").content.decode()  # the two leads' value
    filtered = client.get(f"/crm/deals/?site={crm.site_b.pk}").content.decode()
    assert "Deal at B" in filtered and "Deal at A" not in filtered
    csv = b"".join(client.get("/crm/deals/?format=csv&stage=lead&sort=value").streaming_content).decode("utf-8-sig")
    rows = csv.strip().splitlines()
    assert len(rows) == 3 and "Deal at B" in rows[1] and "Deal at A" in rows[2]


def test_site_owner_sees_no_buttons_and_cannot_post(client, crm):
    client.force_login(crm.users["siteowner_a"])
    deal = client.get(f"/crm/deals/{crm.deal_a.pk}/").content.decode()
    contract = client.get(f"/crm/contracts/{crm.c_a.pk}/").content.decode()
    for testid in ("deal-actions", "convert-deal", "edit-deal"):
        assert testid not in deal
    for testid in ("contract-actions", "activate-contract", "document-form", "edit-contract"):
        assert testid not in contract
    assert client.post(f"/crm/contracts/{crm.c_a.pk}/activate/").status_code == 403
    assert client.post(f"/crm/deals/{crm.deal_a.pk}/stage/", {"stage": "won"}).status_code == 403
    doc = client.post(f"/crm/contracts/{crm.c_a.pk}/document/", {"document": SimpleUploadedFile("s.pdf", PDF)})
    assert doc.status_code == 403
    assert client.post(f"/crm/contracts/{crm.c_a.pk}/miners/", {"miners": ""}).status_code == 403
    crm.c_a.refresh_from_db()
    assert crm.c_a.status == "draft" and not crm.c_a.signed_document


def test_deal_form_stage_and_convert(client, crm):
    client.force_login(crm.users["admin"])
    r = client.post("/crm/deals/new/", {
        "title": "Portal deal", "prospect_company": "Portal Prospect GmbH", "site": crm.site_a.pk, "stage": "lead",
        "expected_miners": "200", "expected_mw": "0.700", "value": "42000.00", "currency": "EUR",
        "owner": crm.users["admin"].pk,
    })  # fmt: skip
    deal = Deal.objects.get(title="Portal deal")
    assert r.status_code == 302 and r["Location"] == f"/crm/deals/{deal.pk}/"
    client.post(f"/crm/deals/{deal.pk}/stage/", {"stage": "negotiation"})
    deal.refresh_from_db()
    assert deal.stage == "negotiation"
    # Convert without a rate: the prospect has none, so it is refused with a message and nothing changes.
    page = client.post(f"/crm/deals/{deal.pk}/convert/", {"start_date": "2026-05-01"}, follow=True)
    assert "Give the rate per kWh in EUR." in page.content.decode()
    assert not HostingContract.objects.filter(deal=deal).exists()
    page = client.post(f"/crm/deals/{deal.pk}/convert/", {"start_date": "2026-02-30", "rate_per_kwh": "0.058"},
                       follow=True)  # fmt: skip
    assert "Enter a valid date." in page.content.decode() and not HostingContract.objects.filter(deal=deal).exists()
    r = client.post(f"/crm/deals/{deal.pk}/convert/", {"start_date": "2026-05-01", "rate_per_kwh": "0.058"})
    contract = HostingContract.objects.get(deal=deal)
    assert r["Location"] == f"/crm/contracts/{contract.pk}/"
    assert contract.customer == Customer.objects.get(company="Portal Prospect GmbH")
    assert (contract.start_date, contract.currency) == (date(2026, 5, 1), "EUR")
    assert 'data-testid="convert-form"' not in client.get(f"/crm/deals/{deal.pk}/").content.decode()
    # Its contract terminated, the deal may be converted again: the form is back.
    client.post(f"/crm/contracts/{contract.pk}/terminate/", {"reason": "client withdrew", "end_date": "2026-05-01"})
    assert 'data-testid="convert-form"' in client.get(f"/crm/deals/{deal.pk}/").content.decode()


def test_deal_form_shows_refusals_under_the_field(client, crm):
    client.force_login(crm.users["owner"])
    r = client.post("/crm/deals/new/", {"title": "No company", "stage": "lead", "expected_miners": "0",
                                        "expected_mw": "0", "value": "0", "currency": "USD",
                                        "owner": crm.users["owner"].pk})  # fmt: skip
    assert r.status_code == 200 and "Name the hosting client or, for a prospect, its company." in r.content.decode()
    assert not Deal.objects.filter(title="No company").exists()


def _contract_post(crm, **kw):
    data = {
        "number": "", "customer": crm.client_x.pk, "site": crm.site_b.pk, "start_date": "2026-01-01",
        "currency": "USD", "deposit": "1000.00", "payment_terms_days": "15", "tariff_kind": "all_in_kwh",
        "energy_basis": "metered", "rate_per_kwh": "0.06", "fixed_fee_per_miner_month": "0",
        "revenue_share_pct": "0", "sla_uptime_target_pct": "97", "sla_schedule_text": "97: 5\n95: 10",
        "curtailment_allowance_hours": "10", "curtailment_credit_kind": "rate",
        "curtailment_credit_per_miner_hour": "0.02", "curtailment_priority": "3", "sales_owner": "",
        "commission_pct": "0", "notes": "",
    }  # fmt: skip
    data.update(kw)
    return data


def test_contract_form_buttons_and_document(client, crm):
    client.force_login(crm.users["owner"])
    r = client.post("/crm/contracts/new/", _contract_post(crm))
    contract = HostingContract.objects.get(customer=crm.client_x, site=crm.site_b)
    assert r.status_code == 302, r.content.decode()[:3000]
    assert contract.sla_credit_schedule == [{"below_pct": "97", "credit_pct": "5"},
                                            {"below_pct": "95", "credit_pct": "10"}]  # fmt: skip
    bad = client.post(f"/crm/contracts/{contract.pk}/edit/", _contract_post(crm, sla_schedule_text="95: 5\n97: 10"))
    assert bad.status_code == 200 and "highest to the lowest" in bad.content.decode()
    bad = client.post(f"/crm/contracts/{contract.pk}/edit/", _contract_post(crm, rate_per_kwh="0"))
    assert bad.status_code == 200 and 'data-testid="field-error"' in bad.content.decode()
    contract.refresh_from_db()
    assert contract.rate_per_kwh > 0
    client.post(f"/crm/contracts/{contract.pk}/document/", {"document": SimpleUploadedFile("s.pdf", PDF),
                                                            "signed_at": "2026-01-02"})  # fmt: skip
    client.post(f"/crm/contracts/{contract.pk}/activate/")
    contract.refresh_from_db()
    assert contract.status == "active" and contract.signed_document_sha256
    page = client.get(f"/crm/contracts/{contract.pk}/").content.decode()
    # The invoice list filters by contract number (not id).
    assert contract.signed_document_sha256 in page and f"/finance/invoices/?contract={contract.number}" in page
    got = client.get(f"/crm/contracts/{contract.pk}/document/")
    assert got.status_code == 200 and b"".join(got.streaming_content) == PDF
    client.post(f"/crm/contracts/{contract.pk}/terminate/", {"reason": "breach", "end_date": "2026-02-28"})
    contract.refresh_from_db()
    assert contract.status == "terminated" and contract.end_date == date(2026, 2, 28)
    assert set(AuditEvent.objects.values_list("event_type", flat=True)) >= {
        "hosting_contract.document_uploaded",
        "hosting_contract.activated",
        "hosting_contract.terminated",
    }


def test_miners_page_sets_and_refuses(client, crm):
    client.force_login(crm.users["owner"])
    url = f"/crm/contracts/{crm.c_a.pk}/miners/"
    mine, other = crm.miners[("site-a", "client-x")], crm.miners[("site-a", "client-y")]
    page = client.post(url, {"miners": f"{mine.serial}\n{other.serial}"}, follow=True).content.decode()
    assert other.serial in page and not crm.c_a.miners.exists()
    client.post(url, {"miners": mine.serial})
    assert list(crm.c_a.miners.values_list("serial", flat=True)) == [mine.serial]
    assert mine.serial in client.get(url).content.decode()


def test_contract_list_filters_and_csv(client, crm):
    client.force_login(crm.users["siteowner_b_ro"])
    text = client.get("/crm/contracts/").content.decode()
    assert crm.c_b.number in text and crm.c_a.number not in text and 'data-testid="new-contract"' not in text
    client.force_login(crm.users["owner"])
    crm.c_a.miners.add(crm.miners[("site-a", "client-x")])
    csv = b"".join(client.get(f"/crm/contracts/?format=csv&site={crm.site_a.pk}").streaming_content)
    rows = csv.decode("utf-8-sig").strip().splitlines()
    assert len(rows) == 2 and rows[1].startswith(crm.c_a.number) and "All-in per kWh" in rows[1]
    assert crm.c_b.number not in client.get("/crm/contracts/?status=draft&q=" + crm.c_a.number).content.decode()


def test_every_crm_post_needs_the_csrf_token(crm):
    from django.test import Client

    deal = DealFactory(customer=crm.client_x, site=crm.site_a, currency="USD")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(crm.users["owner"])
    posts = [
        (f"/crm/deals/{deal.pk}/stage/", {"stage": "lost"}),
        (f"/crm/deals/{deal.pk}/convert/", {"rate_per_kwh": "0.05"}),
        (f"/crm/deals/{deal.pk}/edit/", {"title": "x"}),
        ("/crm/deals/new/", {"title": "x", "prospect_company": "y"}),
        ("/crm/contracts/new/", {}),
        (f"/crm/contracts/{crm.c_a.pk}/activate/", {}),
        (f"/crm/contracts/{crm.c_a.pk}/terminate/", {"reason": "x"}),
        (f"/crm/contracts/{crm.c_a.pk}/document/", {"document": SimpleUploadedFile("s.pdf", PDF)}),
        (f"/crm/contracts/{crm.c_a.pk}/miners/", {"miners": ""}),
    ]
    for url, data in posts:
        assert strict.post(url, data).status_code == 403, url
    deal.refresh_from_db()
    crm.c_a.refresh_from_db()
    assert deal.stage == "lead" and deal.title != "x" and crm.c_a.status == "draft" and not crm.c_a.signed_document
    assert Deal.objects.count() == 3 and HostingContract.objects.count() == 2


def test_the_end_form_offers_no_future_day_and_the_service_refuses_one(client, crm):
    from django.utils import timezone

    client.force_login(crm.users["owner"])
    crm.c_a.status = "active"
    crm.c_a.save(update_fields=["status"])
    page = client.get(f"/crm/contracts/{crm.c_a.pk}/").content.decode()
    assert f'max="{timezone.localdate():%Y-%m-%d}"' in page
    later = timezone.localdate().replace(year=timezone.localdate().year + 1)
    page = client.post(f"/crm/contracts/{crm.c_a.pk}/end/", {"end_date": f"{later:%Y-%m-%d}"}, follow=True)
    assert "today or a past day" in page.content.decode()
    crm.c_a.refresh_from_db()
    assert crm.c_a.status == "active" and crm.c_a.end_date is None


def test_covered_miners_page_sorts_filters_and_exports(client, crm):
    from hashinsight.tests.factories import MinerFactory

    client.force_login(crm.users["siteowner_a"])
    mine = crm.miners[("site-a", "client-x")]
    extra = MinerFactory(zone=crm.zone_a, site=crm.site_a, customer=crm.client_x, serial="ZZ-LAST", status="offline")
    url = f"/crm/contracts/{crm.c_a.pk}/miners/"
    page = client.get(url + "?sort=-serial").content.decode()
    assert page.index("ZZ-LAST") < page.index(mine.serial) and 'data-testid="miners-form"' not in page
    page = client.get(url + "?status=offline").content.decode()
    assert "ZZ-LAST" in page and mine.serial not in page
    csv = b"".join(client.get(url + "?format=csv&q=ZZ").streaming_content).decode("utf-8-sig").strip().splitlines()
    assert len(csv) == 2 and csv[1].startswith(f"{extra.pk},ZZ-LAST,") and csv[1].endswith(",Offline")
    # Another client's miner at the same site is never on the page nor in the file.
    other = crm.miners[("site-a", "client-y")]
    assert other.serial not in client.get(url).content.decode()


def test_the_invoices_link_lists_this_contracts_invoices(client, crm):
    from hashinsight.billing.tests.test_statement_export_support import make_invoice

    mine = make_invoice(customer=crm.client_x, site=crm.site_a, miners=[crm.miners[("site-a", "client-x")]],
                        contract=crm.c_a)  # fmt: skip
    other = make_invoice(customer=crm.client_y, site=crm.site_b, miners=[crm.miners[("site-b", "client-y")]],
                         contract=crm.c_b)  # fmt: skip
    client.force_login(crm.users["owner"])
    page = client.get(f"/crm/contracts/{crm.c_a.pk}/").content.decode()
    link = page.split('data-testid="invoices-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    listed = client.get(link.replace("&amp;", "&")).content.decode()
    assert mine.number in listed and other.number not in listed


def test_an_active_contracts_form_does_not_offer_its_number_client_or_site(client, crm):
    client.force_login(crm.users["owner"])
    crm.c_a.status = "active"
    crm.c_a.save(update_fields=["status"])
    page = client.get(f"/crm/contracts/{crm.c_a.pk}/edit/").content.decode()
    for name in ("number", "customer", "site"):
        tag = page.split(f'name="{name}"')[0].rsplit("<", 1)[1] + page.split(f'name="{name}"')[1].split(">", 1)[0]
        assert "disabled" in tag, name
    assert 'name="rate_per_kwh"' in page and "disabled" not in page.split('name="rate_per_kwh"')[1].split(">", 1)[0]
    # Saving the form changes the terms; the disabled fields keep their values whatever is posted.
    r = client.post(f"/crm/contracts/{crm.c_a.pk}/edit/",
                    _contract_post(crm, rate_per_kwh="0.0655", number="HC-OTHER", site=crm.site_b.pk))  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:2000]
    crm.c_a.refresh_from_db()
    assert crm.c_a.rate_per_kwh == Decimal("0.0655") and crm.c_a.site == crm.site_a and crm.c_a.number != "HC-OTHER"
    assert AuditEvent.objects.get(event_type="hosting_contract.changed").payload["changed"]["rate_per_kwh"] == "0.0655"
