"""The CRM API: who may read and write deals and contracts, the actions, CSV, the signed document's upload and
download, and that refusals change nothing. Expectations written out per role, not derived from the code."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashinsight.events.models import AuditEvent
from hashinsight.tests.factories import DealFactory, HostingContractFactory
from sites import crm_services as svc
from sites.models import Deal, HostingContract

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.7\n%signed\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def crm(farm):
    farm.deal_a = DealFactory(customer=farm.client_x, site=farm.site_a, title="Deal A")
    farm.deal_b = DealFactory(customer=farm.client_y, site=farm.site_b, title="Deal B")
    farm.deal_none = DealFactory(prospect_company="Prospect Co", title="Deal none")
    farm.c_a = HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft")
    farm.c_b = HostingContractFactory(customer=farm.client_y, site=farm.site_b, status="draft")
    return farm


LISTS = {
    # user: (deal titles listed, contract numbers listed by key) or 403
    "owner": ({"Deal A", "Deal B", "Deal none"}, {"a", "b"}),
    "admin": ({"Deal A", "Deal B", "Deal none"}, {"a", "b"}),
    "siteowner_a": ({"Deal A"}, {"a"}),
    "siteowner_b_ro": ({"Deal B"}, {"b"}),
    "client_x": 403,
    "client_y": 403,
    "customer": 403,
    "guest": 403,
}


@pytest.mark.parametrize("user", list(LISTS))
def test_lists_and_reads_per_role(api, crm, user):
    api.force_authenticate(crm.users[user])
    deals, contracts = api.get("/api/v1/deals"), api.get("/api/v1/contracts")
    expected = LISTS[user]
    if expected == 403:
        assert deals.status_code == contracts.status_code == 403
        assert api.get(f"/api/v1/deals/{crm.deal_a.pk}").status_code == 403
        assert api.get(f"/api/v1/contracts/{crm.c_a.pk}/document").status_code == 403
        return
    titles = {d["title"] for d in deals.json()["results"]}
    numbers = {c["number"] for c in contracts.json()["results"]}
    assert titles == expected[0]
    assert numbers == {{"a": crm.c_a.number, "b": crm.c_b.number}[k] for k in expected[1]}
    for deal in (crm.deal_a, crm.deal_b, crm.deal_none):
        code = api.get(f"/api/v1/deals/{deal.pk}").status_code
        assert code == (200 if deal.title in expected[0] else 404), (user, deal.title)


@pytest.mark.parametrize("user", ["siteowner_a", "siteowner_b_ro"])
def test_site_owners_read_but_never_write(api, crm, user):
    api.force_authenticate(crm.users[user])
    mine = crm.c_a if user == "siteowner_a" else crm.c_b
    theirs = crm.c_b if user == "siteowner_a" else crm.c_a
    assert api.post("/api/v1/deals", {"title": "x", "prospect_company": "y"}, format="json").status_code == 403
    assert api.post(f"/api/v1/contracts/{mine.pk}/activate").status_code == 403
    assert api.patch(f"/api/v1/contracts/{mine.pk}", {"notes": "x"}, format="json").status_code == 403
    assert api.post(f"/api/v1/contracts/{theirs.pk}/activate").status_code == 404
    assert api.put(f"/api/v1/contracts/{theirs.pk}/miners", {"miners": []}, format="json").status_code == 404
    mine.refresh_from_db()
    assert mine.status == "draft" and mine.notes == "" and Deal.objects.count() == 3


def test_deal_create_stage_convert_over_the_api(api, crm):
    api.force_authenticate(crm.users["admin"])
    body = {"title": "Expansion", "customer": crm.client_x.pk, "site": crm.site_a.pk, "expected_miners": 500,
            "expected_mw": "1.750", "value": "90000.00", "currency": "USD"}  # fmt: skip
    created = api.post("/api/v1/deals", body, format="json")
    assert created.status_code == 201, created.json()
    deal_id = created.json()["id"]
    assert created.json()["owner"] == crm.users["admin"].pk and created.json()["stage"] == "lead"
    moved = api.post(f"/api/v1/deals/{deal_id}/stage", {"stage": "negotiation"}, format="json")
    assert moved.json()["stage"] == "negotiation"
    assert api.post(f"/api/v1/deals/{deal_id}/stage", {"stage": "nope"}, format="json").status_code == 400
    converted = api.post(f"/api/v1/deals/{deal_id}/convert", {"start_date": "2026-04-01", "rate_per_kwh": "0.062"},
                         format="json")  # fmt: skip
    assert converted.status_code == 201, converted.json()
    contract = converted.json()
    assert contract["status"] == "draft" and contract["deal"] == deal_id and contract["rate_per_kwh"] == "0.06200"
    again = api.post(f"/api/v1/deals/{deal_id}/convert", {}, format="json")
    assert again.status_code == 200 and again.json()["id"] == contract["id"]
    assert api.get(f"/api/v1/deals/{deal_id}").json()["stage"] == "won"


def test_a_hidden_client_or_site_reads_as_missing(api, crm):
    api.force_authenticate(crm.users["owner"])
    response = api.post("/api/v1/deals", {"title": "x", "customer": 999999, "prospect_company": ""}, format="json")
    assert response.status_code == 400 and "customer" in response.json()["details"]


def test_contract_lifecycle_and_refusals_over_the_api(api, crm):
    api.force_authenticate(crm.users["owner"])
    body = {"customer": crm.client_x.pk, "site": crm.site_b.pk, "start_date": "2026-01-01", "tariff_kind":
            "kwh_plus_fixed", "rate_per_kwh": "0.05", "fixed_fee_per_miner_month": "3.00",
            "sla_credit_schedule": [{"below_pct": "99", "credit_pct": "2"}, {"below_pct": "95", "credit_pct": "10"}],
            "sales_owner": crm.users["admin"].pk, "commission_pct": "3.5"}  # fmt: skip
    created = api.post("/api/v1/contracts", body, format="json")
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    assert created.json()["number"].startswith("HC-2026-") and created.json()["status"] == "draft"
    bad = api.patch(f"/api/v1/contracts/{cid}", {"fixed_fee_per_miner_month": "0"}, format="json")
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_tariff"
    bad = api.patch(f"/api/v1/contracts/{cid}", {"sla_credit_schedule": [{"below_pct": "90", "credit_pct": "1"},
                                                                         {"below_pct": "95", "credit_pct": "2"}]},
                    format="json")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_sla_schedule"
    assert api.post(f"/api/v1/contracts/{cid}/activate").json()["status"] == "active"
    clash = HostingContractFactory(customer=crm.client_x, site=crm.site_b, status="draft", start_date=date(2026, 5, 1))
    refused = api.post(f"/api/v1/contracts/{clash.pk}/activate")
    assert refused.status_code == 409 and refused.json()["error_code"] == "contract_overlap"
    assert api.post(f"/api/v1/contracts/{cid}/terminate", {}, format="json").status_code == 400
    ended = api.post(f"/api/v1/contracts/{cid}/terminate", {"reason": "non-payment", "end_date": "2026-03-31"},
                     format="json")  # fmt: skip
    assert ended.json()["status"] == "terminated" and ended.json()["end_date"] == "2026-03-31"
    assert HostingContract.objects.get(pk=cid).fixed_fee_per_miner_month == 3


def test_miners_put_and_get(api, crm):
    api.force_authenticate(crm.users["owner"])
    mine = crm.miners[("site-a", "client-x")]
    other = crm.miners[("site-a", "client-y")]
    url = f"/api/v1/contracts/{crm.c_a.pk}/miners"
    assert api.get(url).json() == {"miners_listed": 0, "miners_covered": 1, "miners": []}
    ok = api.put(url, {"miners": [mine.serial]}, format="json")
    assert ok.json() == {"miners_listed": 1, "miners_covered": 1, "miners": [{"id": mine.pk, "serial": mine.serial}]}
    refused = api.put(url, {"miners": [mine.pk, other.pk]}, format="json")
    assert refused.status_code == 400 and refused.json()["error_code"] == "miner_not_covered"
    assert refused.json()["details"]["miners"] == [other.serial]
    assert list(crm.c_a.miners.values_list("pk", flat=True)) == [mine.pk]
    assert api.get(f"/api/v1/contracts/{crm.c_a.pk}").json()["miners_listed"] == 1


def test_document_upload_and_download(api, crm):
    api.force_authenticate(crm.users["owner"])
    url = f"/api/v1/contracts/{crm.c_a.pk}/document"
    assert api.get(url).status_code == 404
    refused = api.post(url, {"document": SimpleUploadedFile("evil.pdf", b"<html>hi</html>")}, format="multipart")
    assert refused.status_code == 415 and refused.json()["error_code"] == "document_type"
    uploaded = api.post(url, {"document": SimpleUploadedFile("scan.png", PNG), "signed_at": "2026-01-05"},
                        format="multipart")  # fmt: skip
    assert uploaded.status_code == 200, uploaded.json()
    assert uploaded.json()["signed_document_sha256"] == hashlib.sha256(PNG).hexdigest()
    assert uploaded.json()["has_document"] is True and "signed_document" not in uploaded.json()
    for user in ("owner", "siteowner_a"):
        api.force_authenticate(crm.users[user])
        got = api.get(url)
        assert got.status_code == 200 and b"".join(got.streaming_content) == PNG
        assert got["Content-Type"] == "image/png" and got["X-Content-Type-Options"] == "nosniff"
        assert got["Content-Disposition"].startswith("attachment;") and crm.c_a.number in got["Content-Disposition"]
    api.force_authenticate(crm.users["siteowner_b_ro"])
    assert api.get(url).status_code == 404
    assert api.post(url, {"document": SimpleUploadedFile("s.pdf", PDF)}, format="multipart").status_code == 404
    assert AuditEvent.objects.filter(event_type="hosting_contract.document_uploaded").count() == 1


def test_csv_exports_follow_the_filters_and_scope(api, crm):
    svc.deal_set_stage(actor=crm.users["owner"], deal=crm.deal_b, stage="proposal")
    api.force_authenticate(crm.users["owner"])
    response = api.get("/api/v1/deals?format=csv&stage=proposal")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("Deal,Title,Stage") and len(lines) == 2 and "Deal B" in lines[1]
    assert "Proposal sent" in lines[1]
    api.force_authenticate(crm.users["siteowner_a"])
    contracts = b"".join(api.get("/api/v1/contracts?format=csv").streaming_content).decode("utf-8-sig")
    assert crm.c_a.number in contracts and crm.c_b.number not in contracts
    bad = api.get(f"/api/v1/contracts?format=csv&site={crm.site_b.pk}")
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/json")


def test_filters_and_ordering(api, crm):
    api.force_authenticate(crm.users["owner"])
    crm.deal_a.value, crm.deal_b.value, crm.deal_none.value = 10, 30, 20
    Deal.objects.bulk_update([crm.deal_a, crm.deal_b, crm.deal_none], ["value"])

    def titles(query):
        return [d["title"] for d in api.get(f"/api/v1/deals?{query}").json()["results"]]

    assert titles("ordering=value") == ["Deal A", "Deal none", "Deal B"]
    assert titles("ordering=-value") == ["Deal B", "Deal none", "Deal A"]
    assert titles(f"customer={crm.client_x.pk}") == ["Deal A"]
    assert titles(f"site={crm.site_b.pk}") == ["Deal B"]
    assert titles(f"owner={crm.deal_none.owner_id}") == ["Deal none"]
    assert api.get(f"/api/v1/contracts?status=draft&site={crm.site_a.pk}").json()["count"] == 1
    assert api.get("/api/v1/contracts?status=active").json()["count"] == 0


def test_no_delete_and_anonymous_is_401(api, crm):
    assert api.get("/api/v1/deals").status_code == 401
    api.force_authenticate(crm.users["owner"])
    assert api.delete(f"/api/v1/deals/{crm.deal_a.pk}").status_code == 405
    assert api.delete(f"/api/v1/contracts/{crm.c_a.pk}").status_code == 405
    assert Deal.objects.filter(pk=crm.deal_a.pk).exists() and HostingContract.objects.filter(pk=crm.c_a.pk).exists()


def test_an_oversized_upload_is_refused_before_its_body_is_read(api, crm):
    api.force_authenticate(crm.users["owner"])
    url = f"/api/v1/contracts/{crm.c_a.pk}/document"
    declared = str(svc.DOCUMENT_MAX_BYTES + 1024 * 1024)
    refused = api.post(url, {"document": SimpleUploadedFile("s.pdf", PDF)}, format="multipart", CONTENT_LENGTH=declared)
    assert refused.status_code == 413 and refused.json()["error_code"] == "document_too_large"
    crm.c_a.refresh_from_db()
    assert not crm.c_a.signed_document
    assert not AuditEvent.objects.filter(event_type="hosting_contract.document_uploaded").exists()


def test_the_download_name_is_the_number_made_safe(api, crm):
    api.force_authenticate(crm.users["owner"])
    crm.c_a.number = "HC/2026/0042"
    crm.c_a.save(update_fields=["number"])
    svc.contract_upload_document(actor=crm.users["owner"], contract=crm.c_a, upload=SimpleUploadedFile("a.pdf", PDF))
    got = api.get(f"/api/v1/contracts/{crm.c_a.pk}/document")
    assert got["Content-Disposition"] == 'attachment; filename="HC-2026-0042-signed.pdf"'
    assert got["Cache-Control"] == "private, no-store"


def test_a_number_with_a_line_break_is_refused(api, crm):
    api.force_authenticate(crm.users["owner"])
    bad = api.patch(f"/api/v1/contracts/{crm.c_a.pk}", {"number": "HC-1\r\nX-Evil: 1"}, format="json")
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "number"
    assert HostingContract.objects.get(pk=crm.c_a.pk).number == crm.c_a.number


def test_a_session_write_without_the_csrf_token_is_refused(crm):
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(crm.users["owner"])
    assert strict.get("/api/v1/contracts").status_code == 200
    assert strict.post(f"/api/v1/contracts/{crm.c_a.pk}/activate").status_code == 403
    assert strict.patch(f"/api/v1/deals/{crm.deal_a.pk}", {"title": "x"}, format="json").status_code == 403
    crm.c_a.refresh_from_db()
    assert crm.c_a.status == "draft" and Deal.objects.get(pk=crm.deal_a.pk).title == "Deal A"
