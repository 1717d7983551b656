"""Test data of the reports (owner: reports): a month of telemetry at a farm's site (site and miner daily rows, an
alert, a safety event, a curtailment event), market days, and an issued invoice with lines and statement rows for a
client, written with the ORM (the invoicing part builds real invoices; a statement report only reads them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hashinsight.billing.models import Invoice, InvoiceLine, StatementRow
from hashinsight.tests.factories import HostingContractFactory
from intelligence.models import CurtailmentEvent, MarketDay
from telemetry.models import Alert, Daily, EdgeDevice, SafetyEvent, SiteDaily

MONTH = date(2026, 9, 1)
DAYS = 30  # September
PRICE = Decimal("65000.00")
DIFFICULTY = Decimal("100000000000000")  # 1e14
FEES_BTC = Decimal("14.4")  # 0.1 BTC per block


def day(n: int) -> date:
    return MONTH + timedelta(days=n)


def at(n: int, hour: int = 0) -> datetime:
    return datetime(MONTH.year, MONTH.month, 1 + n, hour, tzinfo=UTC)


def market_month() -> None:
    MarketDay.objects.bulk_create(
        [MarketDay(date=day(i), btc_price_usd=PRICE, difficulty=DIFFICULTY, fees_btc=FEES_BTC) for i in range(DAYS)]
    )


def site_month(farm, site=None) -> None:
    """Site A's September: every miner reports each day (200 TH/s nominal each: 6 miners of the farm's 2 sites, 3 at
    site A): 540 TH/s average, 97 % uptime, 250 kWh per miner a day; the site's row sums them."""
    site = site or farm.site_a
    miners = [m for (slug, _c), m in farm.miners.items() if slug == site.slug]
    rows = []
    for i in range(DAYS):
        for m in miners:
            rows.append(
                Daily(
                    miner_id=m.pk,
                    day=day(i),
                    site_id=site.pk,
                    customer_id=m.customer_id,
                    sample_count=288,
                    buckets_reported=288,
                    avg_hashrate_ths=180.0,
                    energy_kwh=250.0,
                    uptime_pct=97.0,
                )
            )
    Daily.objects.bulk_create(rows)
    SiteDaily.objects.bulk_create(
        [
            SiteDaily(
                site_id=site.pk,
                day=day(i),
                miners_reporting=len(miners),
                avg_hashrate_ths=180.0 * len(miners),
                energy_kwh=250.0 * len(miners),
                uptime_pct=97.0,
            )
            for i in range(DAYS)
        ]
    )
    x_miner = farm.miners[(site.slug, "client-x")]
    Alert.objects.create(
        site=site,
        miner=x_miner,
        customer=farm.client_x,
        alert_type="miner_offline",
        severity="critical",
        message="Miner X stopped reporting",
        dedupe_key=f"x-{site.pk}",
        first_seen=at(3, 1),
        last_seen=at(3, 7),
        status="resolved",
        resolved_at=at(3, 7),
    )
    y_miner = farm.miners[(site.slug, "client-y")]
    Alert.objects.create(
        site=site,
        miner=y_miner,
        customer=farm.client_y,
        alert_type="temp_high",
        severity="warning",
        message="Client Y secret overheating",
        dedupe_key=f"y-{site.pk}",
        first_seen=at(5),
        last_seen=at(5, 2),
    )
    device = EdgeDevice.objects.create(
        site=site, name="collector", token_prefix=f"p{site.pk}", token_hash="x", secret_sealed="x"
    )
    SafetyEvent.objects.create(device=device, site=site, miner=x_miner, event_id="e1", kind="power_loss", ts=at(10))
    CurtailmentEvent.objects.create(
        site=site,
        status="ended",
        mode="full_stop",
        priority="normal",
        starts_at=at(12, 18),
        min_end_at=at(12, 20),
        max_end_at=at(12, 22),
        ended_at=at(12, 22),
        restore_batch_size=10,
        restore_interval_seconds=60,
        drift_action="flag",
        energy_avoided_kwh=Decimal("2000.000"),
        revenue_forgone_usd=Decimal("123.45"),
    )


def issued_invoice(farm, customer=None, site=None, number="INV-2026-09-0001", status="issued") -> Invoice:
    """An issued September invoice of ``customer`` (client X) at site A: one energy line and an SLA credit, and a
    statement row per miner per day (its miners at that site: one)."""
    customer = customer or farm.client_x
    site = site or farm.site_a
    contract = HostingContractFactory(customer=customer, site=site)
    inv = Invoice.objects.create(
        number=number,
        customer=customer,
        contract=contract,
        site=site,
        period_start=MONTH,
        period_end=day(DAYS - 1),
        status="draft",
        subtotal=Decimal("450.00"),
        credits=Decimal("22.50"),
        total=Decimal("427.50"),
        energy_kwh=Decimal("7500.000"),
        miner_count=1,
        uptime_pct=Decimal("97.000"),
        sla_uptime_pct=Decimal("97.000"),
        issue_date=date(2026, 10, 3),
        due_date=date(2026, 10, 17),
        statement_sha256="ab" * 32,
    )
    InvoiceLine.objects.create(
        invoice=inv,
        position=1,
        kind="energy",
        description="Energy, metered",
        quantity=Decimal("7500"),
        unit="kWh",
        unit_price=Decimal("0.06"),
        amount=Decimal("450.00"),
    )
    InvoiceLine.objects.create(
        invoice=inv,
        position=2,
        kind="sla_credit",
        description="SLA credit 5 %",
        quantity=Decimal("5"),
        unit="%",
        unit_price=Decimal("450"),
        amount=Decimal("-22.50"),
    )
    miner = farm.miners[(site.slug, customer.slug)]
    StatementRow.objects.bulk_create(
        [
            StatementRow(
                invoice=inv,
                miner=miner,
                day=day(i),
                serial=miner.serial,
                energy_kwh=Decimal("250.000"),
                uptime_pct=Decimal("97.000"),
                avg_hashrate_ths=Decimal("180.000"),
                downtime_operator_h=Decimal("0.720"),
                curtailed_h=Decimal("0"),
                energy_amount=Decimal("15.000000"),
            )
            for i in range(DAYS)
        ]
    )
    # Lines and rows first, then the status: an issued invoice's children are frozen (PostgreSQL triggers).
    Invoice.objects.filter(pk=inv.pk).update(status=status)
    inv.refresh_from_db()
    return inv
