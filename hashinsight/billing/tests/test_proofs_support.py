"""Test support for the proofs part (no tests here): a minimal issued invoice with statement rows, its statement
leaf recorded as the issuing transaction does, dated on a past UTC day."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from hashinsight.billing import proofs
from hashinsight.billing.models import Invoice, ProofLeaf, StatementRow
from hashinsight.events.audit import ActorType, audit_append
from hashinsight.tests.factories import HostingContractFactory

_numbers = itertools.count(1)


def statement_bytes(invoice: Invoice) -> bytes:
    from hashinsight.billing.statements import statement_bytes as canonical

    return canonical(invoice)


def issued_invoice(*, customer, site, miners, day: date | None = None, rows_per_miner: int = 2) -> Invoice:
    """An issued invoice of ``customer`` at ``site`` for October 2026 with a statement row per miner and day, sealed
    by the statement's SHA-256, its leaf recorded (and dated ``day``, default yesterday UTC), and the issue audited."""
    contract = HostingContractFactory(customer=customer, site=site)
    n = next(_numbers)
    invoice = Invoice.objects.create(
        number=f"INV-TEST-{n:05d}",
        customer=customer,
        contract=contract,
        site=site,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        status=Invoice.Status.ISSUED,
        subtotal=Decimal("12.34"),
        total=Decimal("12.34"),
        issued_at=timezone.now(),
        issue_date=date(2026, 11, 1),
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
    from hashinsight.billing.statements import statement_sha256

    invoice.statement_sha256 = statement_sha256(invoice)
    invoice.save(update_fields=["statement_sha256"])
    with transaction.atomic():
        leaf = proofs.record_leaf(
            kind=ProofLeaf.Kind.STATEMENT,
            object_id=invoice.pk,
            sha256=invoice.statement_sha256,
            customer_id=customer.pk,
            site_id=site.pk,
        )
        audit_append(event_type="invoice.issued", actor_type=ActorType.SYSTEM, actor_id="test",
                     reference=f"invoice:{invoice.pk}", payload={"sha256": invoice.statement_sha256})  # fmt: skip
    ProofLeaf.objects.filter(pk=leaf.pk).update(day=day or proofs.utc_today() - timedelta(days=1))
    return invoice


def yesterday() -> date:
    return proofs.utc_today() - timedelta(days=1)
