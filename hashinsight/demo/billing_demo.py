"""The demo farm's hosting business (owner: invoicing): a contract per demo hosting client and last month's invoices.

``seed_billing_demo()`` (called by ``manage.py seed_demo`` after the farm exists; idempotent, about a second):

- one active contract per demo client, at the site where it has the most miners, covering those miners: Northwind
  all-in 0.065 USD/kWh metered with a 10 h curtailment allowance and a 0.05 USD per miner-hour credit beyond it;
  Aurora 0.058 USD/kWh plus 15 USD per miner per month; Kestrel a 30 % revenue share with pass-through credits;
- the previous calendar month's ``daily`` rows for the covered miners that have none (a few outages and partial
  days, deterministic), so the invoices have something to bill;
- the previous month's draft invoices (``invoicing.build_drafts``), and the first client's issued through the
  service (numbered, hashed, audited) so the portal shows both states.

It never rebuilds an existing invoice (the monthly job and the portal do that) and never touches a contract it did
not create."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count
from django.utils import timezone

CONTRACTS = {
    "northwind-hash": {
        "tariff_kind": "all_in_kwh", "rate_per_kwh": Decimal("0.06500"), "curtailment_allowance_hours": Decimal("10"),
        "curtailment_credit_kind": "rate", "curtailment_credit_per_miner_hour": Decimal("0.05"),
        "deposit": Decimal("5000.00"),
    },
    "aurora-digital": {
        "tariff_kind": "kwh_plus_fixed", "rate_per_kwh": Decimal("0.05800"),
        "fixed_fee_per_miner_month": Decimal("15.00"), "payment_terms_days": 30,
    },
    "kestrel-capital": {
        "tariff_kind": "revenue_share", "revenue_share_pct": Decimal("30"), "energy_basis": "computed",
        "curtailment_allowance_hours": Decimal("20"), "curtailment_credit_kind": "pass_through",
    },
}  # fmt: skip
SLA_SCHEDULE = [{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "95", "credit_pct": "10"}]


def _contracts(month_start: date) -> list:
    from miners.models import Miner
    from sites.models import Customer, HostingContract

    out = []
    for slug, terms in CONTRACTS.items():
        customer = Customer.objects.filter(slug=slug).first()
        if customer is None:
            continue
        number = f"DEMO-{slug.upper()}"
        contract = HostingContract.objects.filter(number=number).first()
        if contract is None:
            top = (
                Miner.objects.filter(customer=customer)
                .exclude(status=Miner.Status.RETIRED)
                .values("site_id")
                .annotate(n=Count("pk"))
                .order_by("-n", "site_id")
                .first()
            )
            if top is None:
                continue
            contract = HostingContract.objects.create(
                number=number, customer=customer, site_id=top["site_id"], status=HostingContract.Status.ACTIVE,
                start_date=min(customer.contract_start, month_start), end_date=customer.contract_end,
                sla_credit_schedule=SLA_SCHEDULE, notes="Demo contract (seed_demo).", **terms,
            )  # fmt: skip
        out.append(contract)
    return out


def _daily_rows(start: date, end: date) -> int:
    """The month's daily rows of every miner in service that has none (deterministic per miner and day): the
    contracts' miners for their invoices, and the rest so the sites' monthly reports show the whole fleet."""
    from django.db.models import F

    from miners.models import Miner, MinerStatus
    from telemetry.models import Daily

    rows = []
    fleet = list(
        Miner.objects.exclude(status=MinerStatus.RETIRED)
        .order_by("pk")
        .values("pk", "site_id", "customer_id", power_w=F("model__power_w"), nominal_ths=F("model__hashrate_ths"))
    )
    have = set(Daily.objects.filter(day__gte=start, day__lte=end).values_list("miner_id", "day"))
    for m in fleet:
        day = start
        while day <= end:
            if (m["pk"], day) not in have:
                rng = random.Random(m["pk"] * 100_000 + day.toordinal())  # the same draw for a day on every run
                r = rng.random()
                if r >= 0.005:  # 0.5 % of miner-days not reported (an outage)
                    uptime = 100.0 if r > 0.05 else round(rng.uniform(20, 99), 3)
                    power_kw, ths = float(m["power_w"]) / 1000, float(m["nominal_ths"])
                    rows.append((
                        m["pk"], day, m["site_id"], m["customer_id"], 288, 288,
                        round(ths * uptime / 100 * rng.uniform(0.96, 1.02), 3),
                        round(power_kw * 24 * uptime / 100 * rng.uniform(0.98, 1.02), 3), uptime, None, 0, 0, 0,
                    ))  # fmt: skip
            day += timedelta(days=1)
    # executemany rather than bulk_create: 60,000 rows in about a second on SQLite.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {Daily._meta.db_table} (miner_id, day, site_id, customer_id, sample_count, buckets_reported, "  # noqa: S608
            "avg_hashrate_ths, energy_kwh, uptime_pct, max_temp_chip_c, restarts, accepted_shares, rejected_shares) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            rows,
        )
    return len(rows)


def seed_billing_demo(*, today: date | None = None) -> list[str]:
    """Contracts, last month's daily rows and invoices for the demo clients; returns lines for seed_demo to print."""
    from hashinsight.billing import invoicing, issuing
    from hashinsight.billing.models import Invoice

    today = today or timezone.now().date()
    month = invoicing.previous_month(today)
    start, end = invoicing.month_bounds(month)
    contracts = _contracts(start)
    if not contracts:
        return ["billing demo: no demo hosting clients with miners (run seed_demo first)"]
    added = _daily_rows(start, end)
    built = 0
    for contract in contracts:
        if invoicing.find_invoice(contract, month) is None and invoicing.build_draft(contract, month) is not None:
            built += 1
    first = invoicing.find_invoice(contracts[0], month)
    issued = 0
    if (
        first is not None
        and first.status == Invoice.Status.DRAFT
        and not Invoice.objects.filter(contract__number__startswith="DEMO-", number__isnull=False).exists()
    ):
        issuing.invoice_issue(first, actor=None)
        issued = 1
    return [
        f"billing demo: {len(contracts)} contracts, {added:,} daily rows for {month:%Y-%m}, {built} draft invoices "
        f"built, {issued} issued"
    ]
