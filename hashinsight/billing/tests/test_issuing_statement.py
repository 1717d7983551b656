"""The canonical statement file is deterministic: the same invoice gives the same bytes (and SHA-256) whatever way
its contract was loaded (the factory's instance holding ``0.06``, or read back as ``0.06000``), and the same bytes on
SQLite (Python path) and PostgreSQL (set-based SQL, the database formatting the numbers): a fixed month checked
against one fixed digest on both."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest

from hashinsight.billing import invoicing, issuing, statements
from hashinsight.billing.models import Invoice
from hashinsight.billing.sla import DayDowntime
from hashinsight.billing.tests.factories_invoicing import add_daily, make_fleet, set_daily, stub_sla
from hashinsight.tests.factories import CustomerFactory, SiteFactory, UserFactory
from miners.models import Miner

pytestmark = pytest.mark.django_db

SEP, SEP_END = date(2026, 9, 1), date(2026, 9, 30)
D = Decimal

# The month below, its "invoice," line left out (the draft's id differs between runs). Computed once; the same on
# SQLite and PostgreSQL. If it changes, every issued statement's hash changes: do not update it lightly.
GOLDEN_SHA256 = "f23b04cce0c1458c33312806229d0e2dbac648d136866f2fbc53c2f6f48ac587"
GOLDEN_ROWS = [
    "2026-09-01,'=X1,72.000,100.000,100.000,0.000,0.000,0.000,0.000,,4.320000,,1",
    "2026-09-01,SN-B02,71.235,99.500,98.765,0.000,0.000,0.120,0.000,curtailment_allowance,4.274100,7;12,1",
    "2026-09-01,SN-b03,0.000,0.000,,24.000,0.000,0.000,0.000,unexplained,0.000000,,0",
    "2026-09-01,sn-a01,72.000,100.000,100.000,0.000,0.000,0.000,0.000,,4.320000,,1",
    "2026-09-02,'=X1,72.000,100.000,100.000,0.000,0.000,0.000,0.000,,4.320000,,1",
]


@pytest.fixture
def admin():
    return UserFactory(role="ADMIN")


def _golden_invoice(monkeypatch):
    """Four miners with fixed names (binary order differs from a locale's: ``=X1`` < ``SN-B02`` < ``SN-b03`` <
    ``sn-a01``), one with odd telemetry and a classified day, one not reported on the 1st."""
    fleet = make_fleet(
        miners=4, customer=CustomerFactory(company="Golden Mining Ltd."), site=SiteFactory(name="Golden Site"),
        number="HC-GOLDEN", rate_per_kwh=D("0.06"), revenue_share_pct=D("0"),
    )  # fmt: skip
    serials = ["sn-a01", "SN-B02", "SN-b03", "=X1"]
    for miner, serial in zip(fleet.miners, serials, strict=True):
        Miner.objects.filter(pk=miner.pk).update(serial=serial)
    _, b, c, _ = fleet.miners
    add_daily(fleet.miners, SEP, SEP_END, skip={(c, SEP)})
    set_daily(b, SEP, energy_kwh=71.2345, uptime_pct=99.5, avg_hashrate_ths=98.76549)
    classified = DayDowntime(excluded_h=D("0.12"), reasons=("curtailment_allowance",), command_ids=(7, 12))
    stub_sla(monkeypatch, {(b.pk, SEP): classified})
    return fleet, invoicing.build_draft(fleet.contract, SEP)


def _without_invoice_line(body: bytes) -> bytes:
    return b"\n".join(line for line in body.split(b"\n") if not line.startswith(b"invoice,"))


def test_the_statement_does_not_depend_on_how_the_contract_was_loaded(monkeypatch, admin):
    fleet, draft = _golden_invoice(monkeypatch)
    invoice = issuing.invoice_issue(draft, actor=admin)
    assert fleet.contract.rate_per_kwh == D("0.06") and str(fleet.contract.rate_per_kwh) == "0.06"  # as created
    fresh = Invoice.objects.get(pk=invoice.pk)
    fresh.contract = fleet.contract  # the factory's own instance: 0.06, revenue share 0
    refetched = Invoice.objects.select_related("contract").get(pk=invoice.pk)
    assert str(refetched.contract.rate_per_kwh) == "0.06000"  # what the database gives back
    bodies = [statements.statement_bytes(fresh), statements.statement_bytes(refetched)]
    for odd in ("0.06", 0.06, D("6E-2"), D("0.0600000")):  # a str, a float, other exponents
        fresh.contract.rate_per_kwh = odd
        bodies.append(statements.statement_bytes(fresh))
    assert len(set(bodies)) == 1
    assert b"\nrate_per_kwh,0.06000\nrevenue_share_pct,0.00\n" in bodies[0]
    digests = {hashlib.sha256(body).hexdigest() for body in bodies}
    assert digests == {invoice.statement_sha256} == {statements.statement_sha256(refetched)}
    assert issuing.verify_invoice(refetched) == {"content": True, "statement": True}


def test_the_statement_bytes_are_fixed_on_every_database(monkeypatch):
    """The same month gives the same file on SQLite and PostgreSQL (this test runs on both against one digest)."""
    _, draft = _golden_invoice(monkeypatch)
    body = statements.statement_bytes(Invoice.objects.get(pk=draft.pk))
    lines = body.decode().split("\n")
    assert lines[:13] == [
        "statement,hashinsight-statement/1", f"invoice,DRAFT-{draft.pk}", "client,Golden Mining Ltd.",
        "contract,HC-GOLDEN", "site,Golden Site", "period_start,2026-09-01", "period_end,2026-09-30",
        "currency,USD", "tariff,all_in_kwh", "rate_per_kwh,0.06000", "revenue_share_pct,0.00", "",
        ",".join(statements.COLUMNS),
    ]  # fmt: skip
    assert lines[13:18] == GOLDEN_ROWS
    assert len(lines) == 13 + 4 * 30 + 1 and lines[-1] == ""
    assert hashlib.sha256(_without_invoice_line(body)).hexdigest() == GOLDEN_SHA256


def test_numbers_are_written_at_fixed_places_half_up():
    assert [statements.fixed(v, statements.RATE_PLACES) for v in (D("0.06"), "0.06", 0.06, D("6E-2"))] == [
        "0.06000"
    ] * 4
    assert statements.fixed(D("0.000005"), statements.RATE_PLACES) == "0.00001"  # half-up, not half-even
    assert statements.fixed(D("-0.0000001"), statements.RATE_PLACES) == "0.00000"  # never "-0"
    assert statements.fixed(D("1E+1"), D("0.001")) == "10.000" and statements.fixed(None, D("0.001")) == ""


def test_fixed_places_match_the_model_fields():
    """The places are fixed in statements.py; this notices a model change that would make the file disagree."""
    from hashinsight.billing.models import StatementRow
    from sites.models import HostingContract

    fields = {f.name: f for f in StatementRow._meta.fields}
    assert {name: fields[name].decimal_places for name in statements._PLACES} == statements._PLACES
    contract = {f.name: f for f in HostingContract._meta.fields}
    assert D(1).scaleb(-contract["rate_per_kwh"].decimal_places) == statements.RATE_PLACES
    assert D(1).scaleb(-contract["revenue_share_pct"].decimal_places) == statements.SHARE_PLACES
