"""Test data for the statements part (exports, invoice pages, client finance portal): an invoice with its lines and
statement rows made directly with the ORM, figures chosen so that hand sums are easy. No tests here."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from commands.models import Command, CommandStatus, CommandType, RiskTier
from hashinsight.billing.models import CreditNote, Invoice, InvoiceLine, Payment, StatementRow
from hashinsight.billing.money import round_money
from hashinsight.tests.factories import HostingContractFactory

_numbers = itertools.count(1)
RATE = Decimal("0.06")


def make_invoice(
    *,
    customer,
    site,
    miners,
    status=Invoice.Status.ISSUED,
    period_start=date(2026, 1, 1),
    days=3,
    number=None,
    command_ids=(),
    contract=None,
) -> Invoice:
    """An invoice of ``customer`` at ``site`` for ``days`` days of ``miners``; each miner-day: 24.5 kWh at 0.06
    (1.47), 100 % up, except the first miner on the second day: 6 h operator downtime (reason ``site_outage``) and
    2 h curtailed, 18.375 kWh, with ``command_ids``."""
    contract = contract or HostingContractFactory(customer=customer, site=site, rate_per_kwh=RATE)
    n = next(_numbers)
    issued = status != Invoice.Status.DRAFT and status != Invoice.Status.VOID
    # Built as a draft (an issued invoice's lines and rows cannot be added), then given its final status.
    invoice = Invoice.objects.create(
        number=number or (f"INV-2026-{n:05d}" if issued else None),
        customer=customer,
        contract=contract,
        site=site,
        period_start=period_start,
        period_end=period_start + timedelta(days=days - 1),
        currency="USD",
        status=Invoice.Status.DRAFT,
        miner_count=len(miners),
        issue_date=period_start + timedelta(days=days) if issued else None,
        due_date=period_start + timedelta(days=days + 15) if issued else None,
        issued_at=timezone.now() if issued else None,
        statement_sha256="ab" * 32 if issued else "",
    )
    rows = []
    for d in range(days):
        day = period_start + timedelta(days=d)
        for i, miner in enumerate(sorted(miners, key=lambda m: m.serial)):
            outage = i == 0 and d == 1
            kwh = Decimal("18.375") if outage else Decimal("24.500")
            rows.append(
                StatementRow(
                    invoice=invoice,
                    miner_id=miner.pk,
                    day=day,
                    serial=miner.serial,
                    energy_kwh=kwh,
                    uptime_pct=Decimal("75.000") if outage else Decimal("100.000"),
                    avg_hashrate_ths=Decimal("80.250") if outage else Decimal("107.000"),
                    downtime_operator_h=Decimal("6") if outage else Decimal("0"),
                    curtailed_h=Decimal("2") if outage else Decimal("0"),
                    downtime_reasons="site_outage" if outage else "",
                    energy_amount=kwh * RATE,
                    command_ids=list(command_ids) if outage else [],
                    reported=True,
                )
            )
    StatementRow.objects.bulk_create(rows)
    energy = sum((r.energy_kwh for r in rows), Decimal("0"))
    charge = round_money(sum((r.energy_amount for r in rows), Decimal("0")))
    credit = Decimal("1.00")
    InvoiceLine.objects.create(
        invoice=invoice, position=1, kind=InvoiceLine.Kind.ENERGY, description="Energy", quantity=energy,
        unit="kWh", unit_price=RATE, amount=charge,
    )  # fmt: skip
    InvoiceLine.objects.create(
        invoice=invoice, position=2, kind=InvoiceLine.Kind.SLA_CREDIT, description="SLA credit", quantity=1,
        unit="USD", unit_price=-credit, amount=-credit,
    )  # fmt: skip
    invoice.energy_kwh = energy
    invoice.subtotal = charge
    invoice.credits = credit
    invoice.total = charge - credit
    invoice.status = status
    invoice.save()
    return invoice


def make_command(site, command_type=CommandType.CURTAIL, status=CommandStatus.COMPLETED) -> Command:
    """A finished command of the control plane at ``site`` (what a statement row's ``command_ids`` name)."""
    now = timezone.now()
    return Command.objects.create(
        site=site, command_type=command_type, status=status, risk_score=Decimal("0.3"), risk_tier=RiskTier.MEDIUM,
        expires_at=now + timedelta(hours=1), dispatched_at=now, finished_at=now,
    )  # fmt: skip


def add_payment(invoice: Invoice, amount: str, **kwargs) -> Payment:
    payment = Payment.objects.create(
        invoice=invoice, method=kwargs.pop("method", "bank"), amount=Decimal(amount), currency=invoice.currency,
        received_at=timezone.now(), reference=kwargs.pop("reference", "BANK-REF-1"), **kwargs,
    )  # fmt: skip
    invoice.amount_paid += payment.amount
    invoice.save(update_fields=["amount_paid"])
    return payment


def add_credit_note(invoice: Invoice, amount: str, reason: str = "meter correction") -> CreditNote:
    note = CreditNote.objects.create(
        number=f"CN-{invoice.pk}-{next(_numbers)}", invoice=invoice, amount=Decimal(amount), reason=reason,
        issued_at=timezone.now(), content_sha256="cd" * 32,
    )  # fmt: skip
    invoice.amount_credited += note.amount
    invoice.save(update_fields=["amount_credited"])
    return note
