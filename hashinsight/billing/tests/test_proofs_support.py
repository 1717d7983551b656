"""Test support for the proofs part (no tests here): an invoice with statement rows issued by the invoicing service,
its proof leaves dated on a past UTC day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hashinsight.billing import proofs
from hashinsight.billing.models import Invoice, ProofLeaf, StatementRow
from hashinsight.tests.factories import HostingContractFactory


def statement_bytes(invoice: Invoice) -> bytes:
    from hashinsight.billing.statements import statement_bytes as canonical

    return canonical(invoice)


def issued_invoice(
    *, customer, site, miners, day: date | None = None, rows_per_miner: int = 2, certificate: bool = False
) -> Invoice:
    """A draft invoice of ``customer`` at ``site`` for October 2026 with a statement row per miner and day, issued by
    the invoicing service (``invoice_issue``: number, statement SHA-256, audit event, proof leaf; with
    ``certificate`` also the month's SLA certificate and its leaf), its leaves then dated ``day`` (default yesterday
    UTC, as if issued then)."""
    from hashinsight.billing.issuing import invoice_issue

    contract = HostingContractFactory(customer=customer, site=site)
    invoice = Invoice.objects.create(
        customer=customer,
        contract=contract,
        site=site,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        subtotal=Decimal("12.34"),
        total=Decimal("12.34"),
        miner_count=len(miners) if certificate else 0,  # no miners: no SLA certificate
        uptime_pct=Decimal("100.000"),
        sla_uptime_pct=Decimal("100.000"),
    )
    StatementRow.objects.bulk_create(
        [
            StatementRow(
                invoice=invoice,
                miner=miner,
                day=date(2026, 10, 1) + timedelta(days=d),
                serial=miner.serial,
                energy_kwh=Decimal("84.000"),
                uptime_pct=Decimal("100.000"),
                avg_hashrate_ths=Decimal("200.000"),
                energy_amount=Decimal("5.040000"),
            )
            for miner in miners
            for d in range(rows_per_miner)
        ]
    )
    invoice = invoice_issue(invoice, actor=None)
    ProofLeaf.objects.filter(root__isnull=True, day=proofs.utc_today()).update(
        day=day or proofs.utc_today() - timedelta(days=1)
    )
    return invoice


def yesterday() -> date:
    return proofs.utc_today() - timedelta(days=1)
