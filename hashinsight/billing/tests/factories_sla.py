"""Facts for SLA tests (owner: sla): daily rows, commands, safety and curtailment events, written directly (the
facts' own services are tested in their apps; here only what they leave behind matters)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from commands.models import Command, CommandTarget
from intelligence.models import CurtailmentEvent, CurtailmentEventMiner
from telemetry.models import Daily, EdgeDevice, SafetyEvent


def at(day: date, hour: float = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def daily_month(miners, first: date, last: date, *, uptime: dict | None = None, missing=()) -> None:
    """A daily row per miner per day at 100 % uptime, except ``uptime[(miner, day)]`` and the ``missing`` keys."""
    uptime = uptime or {}
    rows = []
    day = first
    while day <= last:
        for m in miners:
            if (m.pk, day) in missing:
                continue
            pct = uptime.get((m.pk, day), 100.0)
            rows.append(
                Daily(
                    miner_id=m.pk,
                    day=day,
                    site_id=m.site_id,
                    customer_id=m.customer_id,
                    sample_count=1440,
                    buckets_reported=288,
                    avg_hashrate_ths=200.0 * pct / 100,
                    energy_kwh=84.0 * pct / 100,
                    uptime_pct=pct,
                )
            )
        day += timedelta(days=1)
    Daily.objects.bulk_create(rows)


def command(site, kind: str, miners, *, proposer=None, status="COMPLETED", when: datetime, params=None,
            dedupe_key="", result="ok", proposer_kind="user") -> Command:  # fmt: skip
    c = Command.objects.create(
        site=site, command_type=kind, params=params or {}, status=status, proposer=proposer,
        proposer_kind=proposer_kind, risk_score=Decimal("0.1"), risk_tier="LOW", expires_at=when + timedelta(hours=1),
        dispatched_at=when, finished_at=when, dedupe_key=dedupe_key,
    )  # fmt: skip
    Command.objects.filter(pk=c.pk).update(created_at=when)
    CommandTarget.objects.bulk_create(
        [CommandTarget(command=c, miner=m, serial=m.serial, result_status=result, acked_at=when) for m in miners]
    )
    return c


def device(site) -> EdgeDevice:
    n = EdgeDevice.objects.count()
    return EdgeDevice.objects.create(
        site=site, name=f"edge {n}", token_prefix=f"sla{n}", token_hash="x" * 64, secret_sealed="sealed"
    )


def safety(site, kind: str, ts: datetime, miner=None) -> SafetyEvent:
    dev = EdgeDevice.objects.filter(site=site).first() or device(site)
    return SafetyEvent.objects.create(
        device=dev, site=site, miner=miner, event_id=f"{kind}-{ts.isoformat()}-{miner.pk if miner else 0}", kind=kind,
        ts=ts,
    )  # fmt: skip


def curtailment_event(site, miner, start: datetime, end: datetime) -> CurtailmentEventMiner:
    event = CurtailmentEvent.objects.create(
        site=site, status=CurtailmentEvent.Status.ENDED, mode="full_stop", priority="normal", starts_at=start,
        min_end_at=end, max_end_at=end, ended_at=end, restore_batch_size=10, restore_interval_seconds=60,
        drift_action="recurtail",
    )  # fmt: skip
    return CurtailmentEventMiner.objects.create(
        event=event, miner=miner, serial=miner.serial, customer_id=miner.customer_id, kw_before=Decimal("3.5"),
        ths_before=Decimal("200"), state="restored", curtailed_at=start, restored_at=end,
    )  # fmt: skip


def issued_invoice(contract, *, month: date, miners: int = 2, sla_uptime="99.206", statement=(), credit="-12.50",
                   number=None, status="issued"):  # fmt: skip
    """An issued invoice of ``contract`` for ``month`` with statement rows ``[(miner, day, op, client, excl, cut)]``
    and one SLA credit line (written directly: issuing is the invoicing part's)."""
    from hashinsight.billing.models import Invoice, InvoiceLine, StatementRow

    last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    invoice = Invoice.objects.create(
        number=number or f"INV-{contract.pk}-{month:%Y%m}", customer=contract.customer, contract=contract,
        site=contract.site, period_start=month, period_end=last, status="draft", miner_count=miners,
        sla_uptime_pct=None if sla_uptime is None else Decimal(sla_uptime), issue_date=last + timedelta(days=1),
        content_sha256="c" * 64, statement_sha256="5" * 64, currency=contract.currency,
    )  # fmt: skip
    for miner, day, op, cl, ex, cut in statement:
        StatementRow.objects.create(
            invoice=invoice, miner=miner, day=day, serial=miner.serial, energy_kwh=Decimal("80"),
            uptime_pct=Decimal("90"), downtime_operator_h=Decimal(op), downtime_client_h=Decimal(cl),
            downtime_excluded_h=Decimal(ex), curtailed_h=Decimal(cut),
        )  # fmt: skip
    if credit:
        InvoiceLine.objects.create(
            invoice=invoice, position=1, kind=InvoiceLine.Kind.SLA_CREDIT, description="SLA credit",
            quantity=Decimal("5"), unit="%", unit_price=Decimal("0"), amount=Decimal(credit),
        )  # fmt: skip
    # Issued last, as the issuing service does (children of an issued invoice are guarded against changes).
    Invoice.objects.filter(pk=invoice.pk).update(status=status)
    invoice.refresh_from_db()
    return invoice
