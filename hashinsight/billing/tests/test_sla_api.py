"""The SLA API: force-majeure windows and SLA certificates, per role (expectations written out by hand), the
refusals that change nothing, the frozen windows, the signed document and its verification."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from hashinsight.billing import certificates
from hashinsight.billing.models import ForceMajeureWindow
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db
FEB = date(2026, 2, 1)


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "sla.json")


@pytest.fixture
def sla(farm):
    farm.w_a = ForceMajeureWindow.objects.create(
        site=farm.site_a, start=datetime(2026, 3, 3, 6, tzinfo=UTC), end=datetime(2026, 3, 3, 18, tzinfo=UTC),
        reason="Ice storm A",
    )  # fmt: skip
    farm.w_b = ForceMajeureWindow.objects.create(
        site=farm.site_b, start=datetime(2026, 3, 4, tzinfo=UTC), end=datetime(2026, 3, 5, tzinfo=UTC),
        reason="Grid emergency B",
    )  # fmt: skip
    farm.c_x = HostingContractFactory(customer=farm.client_x, site=farm.site_a, number="HC-X")
    farm.c_y = HostingContractFactory(customer=farm.client_y, site=farm.site_b, number="HC-Y")
    with transaction.atomic():
        farm.cert_x = certificates.issue_certificate(issued_invoice(farm.c_x, month=FEB, number="INV-X"))
        farm.cert_y = certificates.issue_certificate(issued_invoice(farm.c_y, month=FEB, number="INV-Y"))
    return farm


WINDOWS_SEEN = {
    "owner": {"Ice storm A", "Grid emergency B"},
    "admin": {"Ice storm A", "Grid emergency B"},
    "siteowner_a": {"Ice storm A"},
    "siteowner_b_ro": {"Grid emergency B"},
    "client_x": {"Ice storm A", "Grid emergency B"},  # its miners stand on both sites
    "client_y": {"Ice storm A", "Grid emergency B"},
    "customer": 403,
    "guest": 403,
}
CERTS_SEEN = {
    "owner": {"HC-X", "HC-Y"},
    "admin": {"HC-X", "HC-Y"},
    "siteowner_a": {"HC-X"},
    "siteowner_b_ro": {"HC-Y"},
    "client_x": {"HC-X"},
    "client_y": {"HC-Y"},
    "customer": 403,
    "guest": 403,
}


@pytest.mark.parametrize("user", list(WINDOWS_SEEN))
def test_window_list_per_role(api, sla, user):
    api.force_authenticate(sla.users[user])
    response = api.get("/api/v1/force-majeure")
    expected = WINDOWS_SEEN[user]
    if expected == 403:
        assert response.status_code == 403
        assert api.get(f"/api/v1/force-majeure/{sla.w_a.pk}").status_code == 403
        return
    assert {w["reason"] for w in response.json()["results"]} == expected
    for window in (sla.w_a, sla.w_b):
        assert api.get(f"/api/v1/force-majeure/{window.pk}").status_code == (200 if window.reason in expected else 404)


@pytest.mark.parametrize("user", list(CERTS_SEEN))
def test_certificate_list_per_role(api, sla, user):
    api.force_authenticate(sla.users[user])
    response = api.get("/api/v1/sla-certificates")
    expected = CERTS_SEEN[user]
    if expected == 403:
        assert response.status_code == 403
        return
    assert {c["contract_number"] for c in response.json()["results"]} == expected
    for cert in (sla.cert_x, sla.cert_y):
        code = 200 if cert.contract.number in expected else 404
        for suffix in ("", "/document", "/erc721"):
            assert api.get(f"/api/v1/sla-certificates/{cert.pk}{suffix}").status_code == code, (cert, suffix)


def test_a_client_never_sees_another_clients_certificate(api, sla):
    api.force_authenticate(sla.users["client_x"])
    for suffix in ("", "/document", "/erc721"):
        response = api.get(f"/api/v1/sla-certificates/{sla.cert_y.pk}{suffix}")
        assert response.status_code == 404 and "HC-Y" not in response.content.decode()
    assert api.get(f"/api/v1/sla-certificates?customer={sla.client_y.pk}").json()["results"] == []
    assert api.get("/api/v1/sla-certificates/99999999999999999999999").status_code == 404


def test_create_window(api, sla):
    api.force_authenticate(sla.users["owner"])
    body = {"site": sla.site_a.pk, "start": "2026-03-10T00:00:00Z", "end": "2026-03-10T12:30:00Z",
            "reason": "  Wildfire evacuation order  "}  # fmt: skip
    response = api.post("/api/v1/force-majeure", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["reason"], data["hours"], data["frozen"]) == ("Wildfire evacuation order", "12.50", False)
    window = ForceMajeureWindow.objects.get(pk=data["id"])
    assert window.created_by == sla.users["owner"]
    audit = AuditEvent.objects.get(event_type="force_majeure.created", reference=f"force_majeure:{window.pk}")
    assert audit.payload["reason"] == "Wildfire evacuation order"
    event = OutboxEvent.objects.get(event_type="force_majeure.changed", aggregate=f"force_majeure:{window.pk}")
    assert event.payload["deleted"] is False and event.payload["site_id"] == sla.site_a.pk


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": ""}, 400, None),
        ({"reason": "   "}, 400, None),
        ({"end": "2026-03-09T00:00:00Z"}, 400, "end_before_start"),
        ({"end": "2026-09-09T00:00:00Z"}, 400, "window_too_long"),
        ({"start": "not a date"}, 400, None),
        ({"site": 999999}, 404, "not_found"),
        ({"reason": "x" * 501}, 400, None),
    ],
)
def test_bad_windows_change_nothing(api, sla, body, status, code):
    api.force_authenticate(sla.users["owner"])
    base = {"site": sla.site_a.pk, "start": "2026-03-10T00:00:00Z", "end": "2026-03-10T12:00:00Z", "reason": "Storm"}
    before = ForceMajeureWindow.objects.count()
    response = api.post("/api/v1/force-majeure", {**base, **body}, format="json")
    assert response.status_code == status
    if code:
        assert response.json()["error_code"] == code
    assert ForceMajeureWindow.objects.count() == before


@pytest.mark.parametrize(("user", "status"), [("siteowner_a", 403), ("client_x", 403), ("customer", 403),
                                              ("guest", 403)])  # fmt: skip
def test_only_finance_full_writes(api, sla, user, status):
    api.force_authenticate(sla.users[user])
    body = {"site": sla.site_a.pk, "start": "2026-03-10T00:00:00Z", "end": "2026-03-10T12:00:00Z", "reason": "S"}
    assert api.post("/api/v1/force-majeure", body, format="json").status_code == status
    assert ForceMajeureWindow.objects.count() == 2


def test_delete_per_role(api, sla):
    api.force_authenticate(sla.users["siteowner_b_ro"])
    assert api.delete(f"/api/v1/force-majeure/{sla.w_a.pk}").status_code == 404  # hidden
    assert api.delete(f"/api/v1/force-majeure/{sla.w_b.pk}").status_code == 403  # read-only
    api.force_authenticate(sla.users["client_x"])
    assert api.delete(f"/api/v1/force-majeure/{sla.w_a.pk}").status_code == 403
    assert ForceMajeureWindow.objects.count() == 2
    api.force_authenticate(sla.users["admin"])
    assert api.delete(f"/api/v1/force-majeure/{sla.w_a.pk}").status_code == 204
    assert not ForceMajeureWindow.objects.filter(pk=sla.w_a.pk).exists()
    assert OutboxEvent.objects.get(event_type="force_majeure.changed", aggregate=f"force_majeure:{sla.w_a.pk}").payload[
        "deleted"
    ]
    assert AuditEvent.objects.filter(event_type="force_majeure.deleted").count() == 1


def test_a_window_an_issued_invoice_covers_is_frozen(api, sla):
    issued_invoice(sla.c_x, month=date(2026, 3, 1), number="INV-X-MAR")
    api.force_authenticate(sla.users["owner"])
    response = api.delete(f"/api/v1/force-majeure/{sla.w_a.pk}")
    assert response.status_code == 409 and response.json()["error_code"] == "period_invoiced"
    assert response.json()["details"]["invoice_number"] == "INV-X-MAR"
    assert ForceMajeureWindow.objects.filter(pk=sla.w_a.pk).exists()
    body = {"site": sla.site_a.pk, "start": "2026-03-31T20:00:00Z", "end": "2026-04-01T02:00:00Z", "reason": "Storm"}
    assert api.post("/api/v1/force-majeure", body, format="json").status_code == 409
    listed = {w["id"]: w["frozen"] for w in api.get("/api/v1/force-majeure").json()["results"]}
    assert listed == {sla.w_a.pk: True, sla.w_b.pk: False}  # site B has no issued March invoice
    # A draft does not freeze anything; another site's window is free too.
    assert api.delete(f"/api/v1/force-majeure/{sla.w_b.pk}").status_code == 204


def test_window_csv(api, sla):
    api.force_authenticate(sla.users["siteowner_a"])
    response = api.get("/api/v1/force-majeure?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "Ice storm A" in text and "Grid emergency B" not in text


def test_filters_and_bad_filters(api, sla):
    api.force_authenticate(sla.users["owner"])
    assert [w["reason"] for w in api.get(f"/api/v1/force-majeure?site={sla.site_b.pk}").json()["results"]] == [
        "Grid emergency B"
    ]
    assert [w["reason"] for w in api.get("/api/v1/force-majeure?q=ice").json()["results"]] == ["Ice storm A"]
    assert api.get("/api/v1/force-majeure?sort=nonsense").status_code == 400
    assert api.get("/api/v1/sla-certificates?month=2026-13").status_code == 400

    def numbers(query):
        return [c["contract_number"] for c in api.get(f"/api/v1/sla-certificates?{query}").json()["results"]]

    ascending = numbers("month=2026-02&sort=client")
    assert sorted(ascending) == ["HC-X", "HC-Y"] and numbers("month=2026-02&sort=-client") == ascending[::-1]
    assert numbers(f"customer={sla.client_y.pk}") == ["HC-Y"] and numbers("met=false") == []
    assert sorted(numbers("met=true")) == ["HC-X", "HC-Y"]  # 99.206 % against 97 %
    assert api.get("/api/v1/sla-certificates?month=2026-03").json()["results"] == []
    text = b"".join(api.get("/api/v1/sla-certificates?format=csv").streaming_content).decode("utf-8-sig")
    assert "HC-X" in text and "HC-Y" in text


def test_document_download_verify_and_tamper(api, sla):
    api.force_authenticate(sla.users["client_x"])
    response = api.get(f"/api/v1/sla-certificates/{sla.cert_x.pk}/document")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"] and "HC-X-2026-02" in response["Content-Disposition"]
    raw = response.content
    assert hashlib.sha256(raw).hexdigest() == sla.cert_x.sha256  # the bytes are the proof leaf
    ok = api.post("/api/v1/sla-certificates/verify", json.loads(raw), format="json").json()
    assert ok["valid"] is True and ok["reason"] == "ok" and ok["recorded"] is True
    assert ok["certificate_id"] == sla.cert_x.pk

    tampered = copy.deepcopy(json.loads(raw))
    tampered["payload"]["credits"]["sla"] = "1000.00"
    bad = api.post("/api/v1/sla-certificates/verify", tampered, format="json").json()
    assert (bad["valid"], bad["reason"]) == (False, "bad_signature")

    flipped = raw.replace(b'"met":', b'"met" :', 1)  # a changed byte that still parses
    upload = SimpleUploadedFile("c.json", flipped, content_type="application/json")
    result = api.post("/api/v1/sla-certificates/verify", {"file": upload}, format="multipart").json()
    assert result["valid"] is True  # same JSON value: canonical form is what is signed and hashed
    upload = SimpleUploadedFile("c.json", raw.replace(b'"99.206"', b'"99.207"'), content_type="application/json")
    result = api.post("/api/v1/sla-certificates/verify", {"file": upload}, format="multipart").json()
    assert (result["valid"], result["reason"]) == (False, "bad_signature")

    not_json = SimpleUploadedFile("c.json", b"\xff\xfe", content_type="application/json")
    response = api.post("/api/v1/sla-certificates/verify", {"file": not_json}, format="multipart")
    assert response.status_code == 400 and response.json()["error_code"] == "invalid_json"
    assert api.post("/api/v1/sla-certificates/verify", [1, 2], format="json").status_code == 400


def test_verify_needs_finance_or_web3(api, sla):
    api.force_authenticate(sla.users["customer"])
    assert api.post("/api/v1/sla-certificates/verify", sla.cert_x.document, format="json").status_code == 403
    api.force_authenticate(None)
    assert api.post("/api/v1/sla-certificates/verify", sla.cert_x.document, format="json").status_code in (401, 403)


def test_public_key_is_public(api, sla):
    response = api.get("/api/v1/sla-certificates/public-key")
    assert response.status_code == 200
    data = response.json()
    assert data["algorithm"] == "Ed25519" and data["current"] == sla.cert_x.document["key_id"]
    assert data["keys"][0]["public_key"] == sla.cert_x.document["public_key"]
    assert data["keys"][0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_erc721_endpoint(api, sla):
    api.force_authenticate(sla.users["client_x"])
    meta = api.get(f"/api/v1/sla-certificates/{sla.cert_x.pk}/erc721").json()
    assert meta["name"].startswith("SLA 2026-02")
    assert meta["external_url"].startswith("http://testserver/sla/")
    assert meta["image"].startswith("data:image/svg+xml;base64,")
    download = api.get(f"/api/v1/sla-certificates/{sla.cert_x.pk}/erc721?download=1")
    assert "attachment" in download["Content-Disposition"]
    detail = api.get(f"/api/v1/sla-certificates/{sla.cert_x.pk}").json()
    assert detail["document"]["signature"] == sla.cert_x.document["signature"]
    assert detail["links"]["document"] == f"/api/v1/sla-certificates/{sla.cert_x.pk}/document"


def test_hostile_documents_are_answered_not_crashed(api, sla):
    api.force_authenticate(sla.users["client_x"])
    url = "/api/v1/sla-certificates/verify"
    # A payload nested deeper than canonical JSON can encode: an answer (not valid), never a server error.
    deep = copy.deepcopy(sla.cert_x.document)
    deep["payload"]["x"] = json.loads("[" * 900 + "]" * 900)
    body = json.dumps(deep).replace('"x": [', '"x": ' + "[" * 200, 1).replace("]]", "]]" + "]" * 200, 1)
    response = api.post(url, body, content_type="application/json")
    assert response.status_code in (200, 400)
    assert response.status_code == 400 or response.json()["valid"] is False
    raw = b"[" * 100_000 + b"]" * 100_000
    response = api.post(url, raw, content_type="application/json")
    assert response.status_code == 400
    upload = SimpleUploadedFile("c.json", raw, content_type="application/json")
    response = api.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 400
