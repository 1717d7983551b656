"""The SLA from telemetry to certificate through the real invoicing and issuing services: the hand-computed February
of ``test_sla_period`` becomes statement rows, an SLA credit line and a signed certificate with the same figures."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hashinsight.billing import certificates, invoicing, issuing
from hashinsight.billing.models import InvoiceLine, SlaCertificate, StatementRow
from hashinsight.billing.tests.test_sla_period import FEB, d, month  # noqa: F401 - the month's facts

pytestmark = pytest.mark.django_db(transaction=True)  # build and issue are durable transactions


@pytest.fixture(autouse=True)
def _keyring(settings, tmp_path):
    settings.SLA_SIGNING_KEYRING = str(tmp_path / "sla.json")


def test_month_to_certificate(month):  # noqa: F811
    contract = month["contract"]
    invoice = invoicing.build_draft(contract, FEB)
    assert invoice is not None
    # 100 × (2016 − 16) / 2016 = 99.206 %: below the 99.5 % target, not below 99 → a 5 % credit.
    assert invoice.sla_uptime_pct == D("99.206")
    rows = StatementRow.objects.filter(invoice=invoice)
    m2 = month["m2"]
    row = rows.get(miner_id=m2.pk, day=d(9))
    assert (row.downtime_operator_h, row.downtime_excluded_h, row.curtailed_h) == (D("2"), D("4"), D("6"))
    assert row.downtime_reasons == "curtailment_allowance,curtailment"
    assert row.command_ids == [month["c9"].pk]
    totals = {f: sum(getattr(r, f) for r in rows) for f in ("downtime_operator_h", "downtime_client_h",
                                                             "downtime_excluded_h")}  # fmt: skip
    assert totals == {"downtime_operator_h": D("16"), "downtime_client_h": D("12"), "downtime_excluded_h": D("65")}
    credit = InvoiceLine.objects.get(invoice=invoice, kind=InvoiceLine.Kind.SLA_CREDIT)
    assert credit.quantity == D("5") and credit.amount < 0

    issued = issuing.invoice_issue(invoice, actor=month["operator"])
    cert = SlaCertificate.objects.get(invoice=issued)
    p = cert.document["payload"]
    assert (p["uptime_pct"], p["met"], p["credit_pct"]) == ("99.206", False, "5")
    assert p["hours"]["operator"] == "16.000" and p["hours"]["client"] == "12.000"
    assert p["hours"]["excluded"] == "65.000" and p["hours"]["period"] == "2016"
    assert D(p["credits"]["sla"]) == -credit.amount == cert.credits
    assert p["statement_sha256"] == issued.statement_sha256 and p["invoice_number"] == issued.number
    assert certificates.verify_certificate(cert.document).valid
