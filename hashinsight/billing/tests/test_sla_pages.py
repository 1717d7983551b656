"""The SLA pages (force-majeure windows, SLA history, certificate download and verification) per role: what each
sees, the form's refusals shown on the form, a client never reaching another client's certificate."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from hashinsight.billing import certificates
from hashinsight.billing.models import ForceMajeureWindow
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db
FEB = date(2026, 2, 1)


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "sla.json")


@pytest.fixture
def pages(farm, client):
    farm.w_a = ForceMajeureWindow.objects.create(
        site=farm.site_a, start=datetime(2026, 3, 3, 6, tzinfo=UTC), end=datetime(2026, 3, 3, 18, tzinfo=UTC),
        reason="Ice storm A",
    )  # fmt: skip
    farm.w_b = ForceMajeureWindow.objects.create(
        site=farm.site_b, start=datetime(2026, 2, 4, tzinfo=UTC), end=datetime(2026, 2, 5, tzinfo=UTC),
        reason="Grid emergency B",
    )  # fmt: skip
    farm.c_x = HostingContractFactory(customer=farm.client_x, site=farm.site_a, number="HC-X")
    farm.c_y = HostingContractFactory(customer=farm.client_y, site=farm.site_b, number="HC-Y")
    with transaction.atomic():
        farm.cert_x = certificates.issue_certificate(issued_invoice(farm.c_x, month=FEB, number="INV-X"))
        farm.cert_y = certificates.issue_certificate(issued_invoice(farm.c_y, month=FEB, number="INV-Y"))
    farm.client = client
    return farm


def login(pages, user):
    pages.client.force_login(pages.users[user])
    return pages.client


EXPECTED = {
    # user: (force-majeure list status, rows' reasons, history rows' contracts, may create)
    "owner": (200, {"Ice storm A", "Grid emergency B"}, {"HC-X", "HC-Y"}, True),
    "admin": (200, {"Ice storm A", "Grid emergency B"}, {"HC-X", "HC-Y"}, True),
    "siteowner_a": (200, {"Ice storm A"}, {"HC-X"}, False),
    "siteowner_b_ro": (200, {"Grid emergency B"}, {"HC-Y"}, False),
    "client_x": (200, {"Ice storm A", "Grid emergency B"}, {"HC-X"}, False),
    "client_y": (200, {"Ice storm A", "Grid emergency B"}, {"HC-Y"}, False),
    "customer": (403, None, None, False),
    "guest": (403, None, None, False),
}


@pytest.mark.parametrize("user", list(EXPECTED))
def test_pages_per_role(pages, user):
    c = login(pages, user)
    status, reasons, contracts, may_create = EXPECTED[user]
    fm = c.get("/sla/force-majeure/")
    history = c.get("/sla/")
    assert fm.status_code == history.status_code == status
    assert c.get("/sla/force-majeure/new/").status_code == (200 if may_create else 403)
    if status != 200:
        return
    text = fm.content.decode()
    for reason in ("Ice storm A", "Grid emergency B"):
        assert (reason in text) == (reason in reasons)
    assert ('data-testid="new-window"' in text) == may_create
    text = history.content.decode()
    for number in ("HC-X", "HC-Y"):
        assert (number in text) == (number in contracts)
    for cert in (pages.cert_x, pages.cert_y):
        code = 200 if cert.contract.number in contracts else 404
        assert c.get(f"/sla/certificates/{cert.pk}/download/").status_code == code
        assert c.get(f"/sla/certificates/{cert.pk}/download/?as=erc721").status_code == code


def test_client_downloads_its_signed_certificate(pages):
    c = login(pages, "client_x")
    response = c.get(f"/sla/certificates/{pages.cert_x.pk}/download/")
    assert hashlib.sha256(response.content).hexdigest() == pages.cert_x.sha256
    meta = json.loads(c.get(f"/sla/certificates/{pages.cert_x.pk}/download/?as=erc721").content)
    assert meta["external_url"] == f"http://testserver/sla/?customer={pages.client_x.pk}"
    page = c.get(f"/sla/?customer={pages.client_y.pk}").content.decode()  # not a choice: the filter is refused
    assert "HC-Y" not in page and 'data-testid="table-problem"' in page


def test_create_window_through_the_form(pages):
    c = login(pages, "owner")
    body = {"site": pages.site_a.pk, "start": "2026-04-02T06:00", "end": "2026-04-02T09:30", "reason": "Flood"}
    response = c.post("/sla/force-majeure/new/", body)
    assert response.status_code == 302
    window = ForceMajeureWindow.objects.get(reason="Flood")
    assert (window.start, window.end) == (datetime(2026, 4, 2, 6, tzinfo=UTC), datetime(2026, 4, 2, 9, 30, tzinfo=UTC))
    assert "3.5 h" in c.get("/sla/force-majeure/").content.decode()


def test_form_refusals_are_shown_and_change_nothing(pages):
    c = login(pages, "owner")
    before = ForceMajeureWindow.objects.count()
    response = c.post("/sla/force-majeure/new/", {"site": pages.site_a.pk, "start": "2026-04-02T06:00",
                                                  "end": "2026-04-02T05:00", "reason": "Flood"})  # fmt: skip
    assert response.status_code == 200 and "must end after it starts" in response.content.decode()
    response = c.post("/sla/force-majeure/new/", {"site": pages.site_a.pk, "start": "2026-04-02T06:00",
                                                  "end": "2026-04-02T07:00", "reason": ""})  # fmt: skip
    assert response.status_code == 200 and 'data-testid="field-error"' in response.content.decode()
    # February at site B is invoiced (HC-Y): no window there, and the existing one is frozen.
    response = c.post("/sla/force-majeure/new/", {"site": pages.site_b.pk, "start": "2026-02-10T06:00",
                                                  "end": "2026-02-10T07:00", "reason": "Late entry"})  # fmt: skip
    assert response.status_code == 200 and "INV-Y" in response.content.decode()
    assert ForceMajeureWindow.objects.count() == before
    page = c.get("/sla/force-majeure/").content.decode()
    assert page.count('data-testid="window-frozen"') == 1 and page.count('data-testid="delete-window"') == 1
    response = c.post(f"/sla/force-majeure/{pages.w_b.pk}/delete/", follow=True)
    assert "INV-Y" in response.content.decode()
    assert ForceMajeureWindow.objects.filter(pk=pages.w_b.pk).exists()


def test_delete_through_the_page(pages):
    c = login(pages, "admin")
    assert c.post(f"/sla/force-majeure/{pages.w_a.pk}/delete/").status_code == 302
    assert not ForceMajeureWindow.objects.filter(pk=pages.w_a.pk).exists()
    c = login(pages, "siteowner_a")
    assert c.post(f"/sla/force-majeure/{pages.w_b.pk}/delete/").status_code == 403


def test_csv_exports(pages):
    c = login(pages, "client_x")
    text = b"".join(c.get("/sla/?format=csv").streaming_content).decode("utf-8-sig")
    assert "HC-X" in text and "HC-Y" not in text
    text = b"".join(c.get("/sla/force-majeure/?format=csv").streaming_content).decode("utf-8-sig")
    assert "Ice storm A" in text


def test_verify_page(pages):
    c = login(pages, "client_x")
    raw = certificates.document_bytes(pages.cert_x.document)
    page = c.post("/sla/verify/", {"file": SimpleUploadedFile("c.json", raw)}).content.decode()
    assert 'data-valid="true"' in page and pages.cert_x.sha256 in page
    tampered = raw.replace(b'"99.206"', b'"99.999"')
    page = c.post("/sla/verify/", {"file": SimpleUploadedFile("c.json", tampered)}).content.decode()
    assert 'data-valid="false"' in page and "signature does not match" in page
    page = c.post("/sla/verify/", {"file": SimpleUploadedFile("c.json", b"not json")}).content.decode()
    assert "The file is not JSON." in page
