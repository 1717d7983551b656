"""Force-majeure services and admin: change, no-op repeat, frozen once invoiced, the admin going through the
service."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from hashinsight.billing import sla_windows
from hashinsight.billing.models import ForceMajeureWindow
from hashinsight.billing.tests.factories_sla import issued_invoice
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent
from hashinsight.tests.factories import HostingContractFactory

pytestmark = pytest.mark.django_db


def t(day, hour=0):
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def window(farm):
    return sla_windows.force_majeure_create(
        actor=farm.users["owner"], site_id=farm.site_a.pk, start=t(3, 6), end=t(3, 18), reason="Ice storm"
    )


def test_update_then_repeat_changes_nothing(farm, window):
    owner = farm.users["owner"]
    sla_windows.force_majeure_update(actor=owner, window=window, start=t(3, 4), end=t(3, 18), reason="Ice storm")
    window.refresh_from_db()
    assert window.start == t(3, 4)
    audit = AuditEvent.objects.get(event_type="force_majeure.updated")
    assert audit.payload["before"]["start"] == "2026-03-03T06:00:00.000000Z"
    sla_windows.force_majeure_update(actor=owner, window=window, start=t(3, 4), end=t(3, 18), reason="Ice storm")
    assert AuditEvent.objects.filter(event_type="force_majeure.updated").count() == 1


def test_frozen_update_and_the_new_days_too(farm, window):
    owner = farm.users["owner"]
    contract = HostingContractFactory(customer=farm.client_x, site=farm.site_a)
    issued_invoice(contract, month=date(2026, 4, 1), number="INV-APR")
    # Moving a March window into invoiced April is refused; so is any change once March is invoiced.
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_update(actor=owner, window=window, start=t(31, 20), end=datetime(2026, 4, 1, 2,
                                         tzinfo=UTC), reason="Ice storm")  # fmt: skip
    assert exc.value.code == "period_invoiced" and exc.value.status == 409
    issued_invoice(contract, month=date(2026, 3, 1), number="INV-MAR")
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_update(actor=owner, window=window, start=t(3, 6), end=t(3, 18), reason="Other")
    assert exc.value.details["invoice_number"] == "INV-MAR"
    with pytest.raises(DomainError):
        sla_windows.force_majeure_delete(actor=owner, window=window)
    window.refresh_from_db()
    assert window.reason == "Ice storm"


def test_a_draft_or_another_sites_invoice_freezes_nothing(farm, window):
    contract = HostingContractFactory(customer=farm.client_x, site=farm.site_a)
    issued_invoice(contract, month=date(2026, 3, 1), number="INV-DRAFT", status="draft")
    other = HostingContractFactory(customer=farm.client_y, site=farm.site_b)
    issued_invoice(other, month=date(2026, 3, 1), number="INV-B")
    sla_windows.force_majeure_delete(actor=farm.users["admin"], window=window)
    assert not ForceMajeureWindow.objects.exists()
    sla_windows.force_majeure_delete(actor=farm.users["admin"], window=window)  # a repeat changes nothing


def test_naive_times_and_bad_site_are_refused(farm):
    owner = farm.users["owner"]
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_create(actor=owner, site_id=farm.site_a.pk, start=datetime(2026, 3, 1),
                                         end=t(2), reason="x")  # fmt: skip
    assert exc.value.details["field"] == "start"
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_create(actor=owner, site_id="1", start=t(1), end=t(2), reason="x")
    assert exc.value.details["field"] == "site"
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_create(actor=owner, site_id=farm.site_a.pk, start=t(1), end=t(2), reason="a\x00b")
    assert exc.value.details["field"] == "reason"
    with pytest.raises(DomainError) as exc:
        sla_windows.force_majeure_create(actor=farm.users["siteowner_a"], site_id=farm.site_a.pk, start=t(1),
                                         end=t(2), reason="x")  # fmt: skip
    assert exc.value.status == 403
    assert not ForceMajeureWindow.objects.exists()


def test_admin_goes_through_the_service(client, farm, window):
    client.force_login(farm.users["owner"])
    assert client.get("/admin/billing/forcemajeurewindow/").status_code == 200
    assert client.get("/admin/billing/forcemajeurewindow/add/").status_code == 200
    body = {"site": farm.site_b.pk, "start_0": "2026-03-07", "start_1": "00:00:00", "end_0": "2026-03-07",
            "end_1": "08:00:00", "reason": "Substation fire"}  # fmt: skip
    response = client.post("/admin/billing/forcemajeurewindow/add/", body)
    assert response.status_code == 302, response.content.decode()[:2000]
    created = ForceMajeureWindow.objects.get(reason="Substation fire")
    assert created.created_by == farm.users["owner"]
    assert AuditEvent.objects.filter(event_type="force_majeure.created", reference=f"force_majeure:{created.pk}")
    bad = {**body, "end_0": "2026-03-06", "reason": "Backwards"}
    page = client.post("/admin/billing/forcemajeurewindow/add/", bad)
    assert page.status_code == 200 and "must end after it starts" in page.content.decode()
    assert not ForceMajeureWindow.objects.filter(reason="Backwards").exists()
    assert client.get("/admin/billing/slacertificate/").status_code == 200
    client.force_login(farm.users["siteowner_a"])
    assert client.get("/admin/billing/forcemajeurewindow/add/").status_code == 403
