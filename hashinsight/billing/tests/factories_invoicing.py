"""Test helpers of the invoicing part (owner: invoicing): a small hosted fleet, its daily rows and a stubbed SLA
classification, so hand-computed months are short to write."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from hashinsight.billing import sla
from hashinsight.billing.calc import sla as calc_sla
from hashinsight.tests.factories import (
    CustomerFactory,
    HostingContractFactory,
    MinerFactory,
    MinerModelFactory,
    SiteFactory,
    ZoneFactory,
)
from telemetry.models import Daily


@dataclass
class Fleet:
    site: object
    customer: object
    contract: object
    miners: list = field(default_factory=list)


def make_fleet(*, miners: int = 2, customer=None, site=None, **contract_kw) -> Fleet:
    """A site, a client, ``miners`` miners of a 100 TH/s, 3,000 W model and an active contract (all-in 0.06/kWh
    metered unless ``contract_kw`` says otherwise; no SLA credit schedule change)."""
    site = site or SiteFactory()
    zone = ZoneFactory(site=site)
    customer = customer or CustomerFactory()
    model = MinerModelFactory(
        code=f"test-100t-{site.pk}-{customer.pk}", name=f"T100 {site.pk}-{customer.pk}",
        hashrate_ths=Decimal("100"), power_w=Decimal("3000"),
    )  # fmt: skip
    fleet_miners = [
        MinerFactory(zone=zone, site=site, customer=customer, model=model, serial=f"SN-{customer.pk}-{site.pk}-{i:03d}")
        for i in range(miners)
    ]
    contract_kw.setdefault("start_date", date(2026, 1, 1))
    contract = HostingContractFactory(customer=customer, site=site, **contract_kw)
    return Fleet(site=site, customer=customer, contract=contract, miners=fleet_miners)


def days_of(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def add_daily(miners, start: date, end: date, *, energy_kwh=72.0, uptime_pct=100.0, hashrate_ths=100.0, skip=()):
    """A daily row per miner per day (``skip``: (miner, day) pairs left without a row: not reported)."""
    rows = [
        Daily(
            miner_id=m.pk, day=day, site_id=m.site_id, customer_id=m.customer_id, sample_count=288,
            buckets_reported=288, avg_hashrate_ths=hashrate_ths, energy_kwh=energy_kwh, uptime_pct=uptime_pct,
        )
        for m in miners
        for day in days_of(start, end)
        if (m, day) not in skip
    ]  # fmt: skip
    Daily.objects.bulk_create(rows)


def set_daily(miner, day: date, **values) -> None:
    Daily.objects.filter(miner_id=miner.pk, day=day).update(**values)


def stub_sla(monkeypatch, classification: dict | None = None):
    """``classify_period`` answers ``classification`` (``{(miner_id, day): DayDowntime}``); ``sla_credit_pct`` is
    the contract's schedule read by the SLA part's pure rule (the highest credit whose threshold the uptime is
    strictly below)."""
    monkeypatch.setattr(
        sla, "classify_period", lambda contract, start, end, uptime=None, **kw: dict(classification or {})
    )
    monkeypatch.setattr(
        sla,
        "sla_credit_pct",
        lambda contract, pct: calc_sla.credit_pct(contract.sla_credit_schedule, pct, contract.sla_uptime_target_pct),
    )
