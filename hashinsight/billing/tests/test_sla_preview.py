"""``/api/v1/sla-preview``: a contract's month as it stands, classified as the invoice will be (the hand-computed
February of ``test_sla_period``), per role; and the classification's query count does not grow with miners."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hashinsight.accounts.roles import Role
from hashinsight.billing import sla
from hashinsight.billing.tests.factories_sla import daily_month
from hashinsight.billing.tests.test_sla_period import FEB, d, month  # noqa: F401 - the month's facts
from hashinsight.tests.factories import CustomerFactory, MinerFactory, UserFactory
from sites.services import customer_add_contact, site_grant

pytestmark = pytest.mark.django_db


def test_preview_of_the_hand_computed_february(api, month):  # noqa: F811
    contract = month["contract"]
    client_user = month["client_user"]
    customer_add_contact(user=client_user, customer=month["client"])
    api.force_authenticate(client_user)
    response = api.get(f"/api/v1/sla-preview?contract={contract.pk}&month=2026-02")
    assert response.status_code == 200, response.json()
    data = response.json()
    hours = (data["period_h"], data["operator_h"], data["client_h"], data["excluded_h"])
    assert hours == ("2016", "16.000", "12.000", "65.000")
    sla_figures = (data["sla_uptime_pct"], data["target_pct"], data["met"], data["credit_pct"])
    assert sla_figures == ("99.206", "99.50", False, "5")
    assert data["miner_days_by_reason"]["hardware_fault"] == 3
    assert data["miner_days_by_reason"]["curtailment_allowance"] == 3
    assert api.get(f"/api/v1/sla-preview?contract={contract.pk}&month=2026-13").status_code == 400
    assert api.get(f"/api/v1/sla-preview?contract={contract.pk}&month=2024-01").json()["error_code"] == "no_period"


@pytest.mark.parametrize(("role", "grant", "status"), [
    (Role.CLIENT, None, 404),  # another client
    (Role.MINING_SITE_OWNER, "site", 200),
    (Role.MINING_SITE_OWNER, None, 404),
    (Role.CUSTOMER, None, 403),
    (Role.ADMIN, None, 200),
])  # fmt: skip
def test_preview_per_role(api, month, role, grant, status):  # noqa: F811
    user = UserFactory(role=role)
    if role == Role.CLIENT:
        customer_add_contact(user=user, customer=CustomerFactory())
    if grant == "site":
        site_grant(user=user, site=month["site"], manage=False)
    api.force_authenticate(user)
    assert api.get(f"/api/v1/sla-preview?contract={month['contract'].pk}&month=2026-02").status_code == status


def test_queries_do_not_grow_with_miners(month, django_assert_max_num_queries):  # noqa: F811
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        sla.classify_period(month["contract"], FEB, d(28))
    more = [MinerFactory(zone=month["zone"], site=month["site"], customer=month["client"]) for _ in range(25)]
    daily_month(more, FEB, d(28), uptime={(m.pk, d(4)): 50.0 for m in more}, missing={(more[0].pk, d(6))})
    with CaptureQueriesContext(connection) as large:
        out = sla.classify_period(month["contract"], FEB, d(28))
    assert len(large.captured_queries) == len(small.captured_queries)
    assert out[(more[1].pk, d(4))].operator_h == D("12.000")
    assert out[(more[0].pk, d(6))].operator_h == D("24")
