"""Draft invoices (module FINANCE): a contract's month → an Invoice with its lines and its per-miner-day statement.

``build_drafts(month)`` builds one draft per contract that overlaps the month (active, or ended/terminated inside
it: the final invoice); ``build_draft(contract, month)`` builds or rebuilds one. Rebuilding is idempotent: a draft's
lines and statement rows are replaced, an issued invoice is never touched (it is returned as it is).

**The period** is the calendar month clipped to the contract's start and end (a mid-month start bills from its
first day). **The miners** are the contract's listed miners, or, when it lists none, every miner of the client at
the site (retired miners left out), as they are when the draft is built.

**Statement rows** (one per covered miner per day of the period) are written set-based: on PostgreSQL one
``INSERT … SELECT`` from ``telemetry_daily`` joined to the miners and the period's days (no row: not reported),
then one ``UPDATE … FROM unnest(…)`` for the miner-days the SLA classification names; on SQLite (the embedded mode,
small fleets) the same figures are computed in Python by ``calc.tariff`` and bulk-inserted. Both paths give the
same decimals (the tests run on both). The lines are computed from sums over the rows (``calc.tariff.compute``).

Cost on PostgreSQL: a constant number of queries per contract, whatever its size."""

from __future__ import annotations

import calendar
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext

from hashinsight.billing import sla
from hashinsight.billing.calc import tariff
from hashinsight.billing.calc.carried import carried_runs
from hashinsight.billing.calc.tariff import Curtailed, PeriodFacts, Terms
from hashinsight.billing.models import Invoice, InvoiceLine, StatementRow
from hashinsight.core.errors import DomainError
from hashinsight.events.outbox import publish
from sites import crm_selectors
from sites.models import HostingContract

log = logging.getLogger(__name__)

# Billed: a contract that ran — active or ended, or terminated after it had been activated (a draft terminated before
# activation, a deal that fell through, never ran and is never billed).
BILLED_CONTRACTS = Q(status__in=(HostingContract.Status.ACTIVE, HostingContract.Status.ENDED)) | Q(
    status=HostingContract.Status.TERMINATED, activated_at__isnull=False
)
OPEN_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE)
ZERO = Decimal("0")


# ---------------------------------------------------------------------------------------------------------------
# Periods, miners, hashprice


def month_start(value: date) -> date:
    return value.replace(day=1)


def month_bounds(month: date) -> tuple[date, date]:
    first = month_start(month)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def previous_month(today: date) -> date:
    return (month_start(today) - timedelta(days=1)).replace(day=1)


def contract_period(contract: HostingContract, month: date) -> tuple[date, date] | None:
    """The month clipped to the contract's term; None when they do not overlap."""
    first, last = month_bounds(month)
    start = max(first, contract.start_date)
    end = min(last, contract.end_date) if contract.end_date else last
    return (start, end) if start <= end else None


def contracts_for_month(month: date) -> QuerySet[HostingContract]:
    first, last = month_bounds(month)
    return (
        HostingContract.objects.filter(BILLED_CONTRACTS, start_date__lte=last)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first))
        .order_by("pk")
    )


def is_billed(contract: HostingContract) -> bool:
    """Whether the contract is billed at all (see ``BILLED_CONTRACTS``; its months are then those it overlaps)."""
    return contract.status in (HostingContract.Status.ACTIVE, HostingContract.Status.ENDED) or (
        contract.status == HostingContract.Status.TERMINATED and contract.activated_at is not None
    )


def covered_miners(contract: HostingContract) -> list[dict]:
    """The contract's miners, by id: the CRM part's one rule (``sites.crm_selectors.covered_miners``: those listed,
    else every miner of the client at the site; only miners that are the client's at the site now, none retired)."""
    return list(
        crm_selectors.covered_miners(contract)
        .order_by("pk")
        .values("pk", "serial", power_w=F("model__power_w"), nominal_ths=F("model__hashrate_ths"))
    )


def daily_hashprices(start: date, end: date) -> dict[date, Decimal]:
    """USD per TH/s per day for each day of [start, end] (``market_hashprices``' values)."""
    return market_hashprices(start, end)[0]


def market_hashprices(start: date, end: date) -> tuple[dict[date, Decimal], dict[date, date | None]]:
    """USD per TH/s per day for each day of [start, end] from ``MarketDay`` (before pool fees, 8 decimals); a day
    without a row takes the latest earlier day's; with none at all, the shipped market snapshot's. With each day, the
    day its value is of (None when not even the snapshot's date is known): a line priced with an earlier day's
    hashprice names that day (``carried_note``)."""
    from intelligence.algorithms import hashprice as hp
    from intelligence.models import MarketDay

    def value_of(row) -> Decimal:
        fees = hp.fees_btc_per_block(row.fees_btc) if row.fees_btc is not None else ZERO
        raw = hp.hashprice_usd_per_th_day(row.btc_price_usd, row.difficulty, hp.block_subsidy_btc_on(row.date), fees)
        return Decimal(raw).quantize(tariff.HASHPRICE_PLACES)

    rows = {r.date: r for r in MarketDay.objects.filter(date__gte=start, date__lte=end).exclude(difficulty=0)}
    before = MarketDay.objects.filter(date__lt=start).exclude(difficulty=0).order_by("-date").first()
    current, current_of = (value_of(before), before.date) if before else (None, None)
    if current is None and not rows:
        from commands.services import hashprice_usd_per_th_day

        current = Decimal(hashprice_usd_per_th_day()).quantize(tariff.HASHPRICE_PLACES)
        current_of = _snapshot_day()
    out: dict[date, Decimal] = {}
    of: dict[date, date | None] = {}
    day = start
    while day <= end:
        if day in rows:
            current, current_of = value_of(rows[day]), day
        elif current is None:  # days before the first known row of the period take that row's value
            current, current_of = value_of(rows[min(rows)]), min(rows)
        out[day], of[day] = current, current_of
        day += timedelta(days=1)
    return out, of


def _snapshot_day() -> date | None:
    from intelligence.market import latest_snapshot

    try:
        return date.fromisoformat(str(latest_snapshot().date)[:10])
    except (OSError, RuntimeError, ValueError):
        return None


CARRIED_SHOWN = 3  # runs named in a line's description (it holds 300 characters); more are summed up as "…"


def carried_note(as_of: dict[date, date | None]) -> str:
    """The note appended to the lines the hashprice prices, for the days priced with another day's hashprice
    ("; hashprice as of 2026-02-12 for 2026-10-01 – 2026-10-31"; "" when there are none). English, like the line."""
    runs = carried_runs(as_of)
    if not runs:
        return ""
    parts = [
        gettext("hashprice as of %(as_of)s for %(first)s – %(last)s")
        % {"as_of": f"{r.as_of:%Y-%m-%d}", "first": f"{r.first:%Y-%m-%d}", "last": f"{r.last:%Y-%m-%d}"}
        for r in runs[:CARRIED_SHOWN]
    ]
    return "; " + ", ".join(parts) + (", …" if len(runs) > CARRIED_SHOWN else "")


# ---------------------------------------------------------------------------------------------------------------
# Building


def build_drafts(month: date, *, contract_ids: list[int] | None = None, workers: int | None = None) -> dict:
    """One draft per contract overlapping ``month`` (each in its own transaction); returns counts. The sites' own
    SLA facts (outages, force majeure) are read once per site for the whole run.

    On PostgreSQL, outside a caller's transaction, the contracts are built by ``workers`` threads (default
    ``settings.BILLING_BUILD_WORKERS``, 2), each on its own connection: the work is in the database, and two backends
    use two cores. Inside a transaction (a test, an outer ``atomic``) other connections could not see its rows, so
    the contracts are built one after the other on the caller's connection, as on SQLite."""
    qs = contracts_for_month(month)
    if contract_ids is not None:
        qs = qs.filter(pk__in=contract_ids)
    contracts = list(qs)
    site_cache: dict = {}
    workers = workers or getattr(settings, "BILLING_BUILD_WORKERS", 2)
    parallel = (
        connection.vendor == "postgresql" and workers > 1 and len(contracts) > 1 and not connection.in_atomic_block
    )
    if parallel:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoicing") as pool:
            outcomes = list(pool.map(lambda c: _build_one(c, month, site_cache, own_connection=True), contracts))
    else:
        outcomes = [_build_one(c, month, site_cache) for c in contracts]
    return {
        "month": month_start(month).isoformat(), "built": outcomes.count("built"),
        "skipped": outcomes.count("skipped"), "failed": outcomes.count("failed"),
    }  # fmt: skip


def _build_one(contract: HostingContract, month: date, site_cache: dict, *, own_connection: bool = False) -> str:
    try:
        invoice = build_draft(contract, month, site_cache=site_cache)
    except Exception:
        log.exception("invoice build failed", extra={"contract_id": contract.pk, "month": str(month)})
        return "failed"
    finally:
        if own_connection:
            connection.close()  # this worker thread's own connection
    return "built" if invoice is not None and invoice.status == Invoice.Status.DRAFT else "skipped"


def find_invoice(contract: HostingContract, month: date) -> Invoice | None:
    first, last = month_bounds(month)
    return (
        Invoice.objects.filter(contract=contract, period_start__gte=first, period_start__lte=last)
        .exclude(status=Invoice.Status.VOID)
        .first()
    )


@transaction.atomic(durable=True)
def build_draft(contract: HostingContract, month: date, *, site_cache: dict | None = None) -> Invoice | None:
    """Build (or rebuild) the contract's draft for ``month``; None when the contract is not billed (``is_billed``) or
    does not overlap the month. An issued invoice for that month is returned unchanged."""
    if connection.vendor == "postgresql":
        # A draft is rebuilt at will and the monthly job rebuilds a missing one: not waiting for the WAL flush at
        # commit is safe here (a crash may lose the last drafts, never corrupt them) and saves ~0.25 s a contract.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
    contract = HostingContract.objects.select_for_update().get(pk=contract.pk)
    period = contract_period(contract, month)
    if period is None or not is_billed(contract):
        return None
    start, end = period
    invoice = find_invoice(contract, month)
    if invoice is not None:
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.DRAFT:
            return invoice
        previous = invoice.status
        _clear_draft(invoice)
        invoice.period_start, invoice.period_end = start, end
        invoice.currency = contract.currency
    else:
        previous = None
        invoice = Invoice.objects.create(
            customer_id=contract.customer_id, contract=contract, site_id=contract.site_id,
            period_start=start, period_end=end, currency=contract.currency,
        )  # fmt: skip

    terms = Terms.from_contract(contract)
    miners = covered_miners(contract)
    hashprice, hashprice_of = market_hashprices(start, end)
    if connection.vendor == "postgresql":
        facts = _rows_postgres(invoice, contract, terms, miners, start, end, hashprice, site_cache)
    else:
        facts = _rows_python(invoice, contract, terms, miners, start, end, hashprice, site_cache)
    facts.first_invoice = (
        not Invoice.objects.filter(contract=contract, period_start__lt=start)
        .exclude(status=Invoice.Status.VOID)
        .exists()
    )
    facts.final_invoice = contract.end_date is not None and contract.end_date <= end
    facts.prior_balance = prior_balance(contract, start)
    result = tariff.compute(
        terms, facts, currency=contract.currency, hashprice=hashprice,
        sla_credit_pct=lambda pct: sla.sla_credit_pct(contract, pct),
    )  # fmt: skip
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice, position=i, kind=line.kind,
                description=_describe(line, contract, start, end, hashprice_of),
                quantity=line.quantity, unit=line.unit, unit_price=line.unit_price, amount=line.amount,
            )
            for i, line in enumerate(result.lines, start=1)
        ]
    )  # fmt: skip
    invoice.subtotal, invoice.credits = result.subtotal, result.credits
    invoice.prior_balance, invoice.deposit_applied, invoice.total = (
        result.prior_balance,
        result.deposit_applied,
        result.total,
    )
    invoice.energy_kwh, invoice.miner_count = facts.energy_kwh, facts.miner_count
    invoice.uptime_pct, invoice.sla_uptime_pct = result.uptime_pct, result.sla_uptime_pct
    invoice.save()
    publish(
        "invoice.changed", aggregate=f"invoice:{invoice.pk}",
        payload={"invoice_id": invoice.pk, "customer_id": invoice.customer_id, "site_id": invoice.site_id,
                 "status": invoice.status, "previous_status": previous, "number": None},
    )  # fmt: skip
    return invoice


def prior_balance(contract: HostingContract, start: date) -> Decimal:
    """The open balance of the contract's issued invoices of earlier periods."""
    open_invoices = Invoice.objects.filter(contract=contract, period_start__lt=start, status__in=OPEN_STATUSES)
    return sum((max(i.balance_due, ZERO) for i in open_invoices), ZERO)


def _clear_draft(invoice: Invoice) -> None:
    if invoice.status != Invoice.Status.DRAFT:  # the guard of issuing.py refuses it too; say it here first
        raise DomainError("invoice_issued", gettext("An issued invoice cannot change."), status=409)
    InvoiceLine.objects.filter(invoice=invoice).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {StatementRow._meta.db_table} WHERE invoice_id = %s", [invoice.pk])  # noqa: S608 (model table name)


def _describe(
    line: tariff.Line, contract: HostingContract, start: date, end: date, hashprice_of: dict[date, date | None]
) -> str:
    """The line's text, in English (it is part of what the issue hash seals); the kind is translated on display. A
    line priced with the hashprice names the day of the figure used where it is an earlier day's."""
    with translation.override("en"):
        text = _describe_en(line, contract, start, end)
        if line.kind == "revenue_share" or (
            line.kind == "curtailment_credit" and line.detail.get("kind") != tariff.CREDIT_RATE
        ):
            text += carried_note(hashprice_of)
        return text[: InvoiceLine._meta.get_field("description").max_length]


def _describe_en(line: tariff.Line, contract: HostingContract, start: date, end: date) -> str:
    period = f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"
    d = line.detail
    if line.kind == "energy":
        basis = gettext("metered") if d.get("basis") == tariff.METERED else gettext("computed")
        return gettext("Energy %(period)s (%(basis)s)") % {"period": period, "basis": basis}
    if line.kind == "revenue_share":
        return gettext("Operator's share %(pct)s %% of mining revenue %(period)s (%(ths)s TH/s-days)") % {
            "pct": d["pct"], "period": period, "ths": d["ths_days"]}  # fmt: skip
    if line.kind == "fixed_fee":
        return gettext("Fixed fee: %(days)s miner-days of %(month_days)s-day month") % {
            "days": d["miner_days"], "month_days": d["days_in_month"]}  # fmt: skip
    if line.kind == "sla_credit":
        return gettext("SLA credit: uptime %(uptime)s %% below target %(target)s %%") % {
            "uptime": d["sla_uptime_pct"], "target": contract.sla_uptime_target_pct}  # fmt: skip
    if line.kind == "curtailment_credit":
        if d["kind"] == tariff.CREDIT_RATE:
            return gettext("Curtailment credit: hours beyond the %(allowance)s h allowance") % {
                "allowance": d["allowance_h"]}  # fmt: skip
        return gettext("Curtailment pass-through: revenue forgone beyond the %(allowance)s h allowance") % {
            "allowance": d["allowance_h"]}  # fmt: skip
    if line.kind == "deposit":
        if d.get("held"):
            return gettext("Deposit (held until the contract ends)")
        return gettext("Deposit applied")
    if line.kind == "prior_balance":
        return gettext("Prior balance (payable on earlier invoices, not in this total)")
    return line.kind


def _classify(contract, start, end, uptime, site_cache) -> dict:
    """The SLA classification of the period's down miner-days (only keys inside the period)."""
    kwargs = {"site_cache": site_cache} if site_cache is not None else {}
    found = sla.classify_period(contract, start, end, uptime=uptime, **kwargs) or {}
    return {k: v for k, v in found.items() if start <= k[1] <= end}


def _curtailed(classification: dict, nominal: dict[int, Decimal]) -> list[Curtailed]:
    return [
        Curtailed(miner_id=m, day=d, hours=Decimal(v.curtailed_h), nominal_ths=nominal[m])
        for (m, d), v in classification.items()
        if m in nominal and Decimal(v.curtailed_h) > 0
    ]


def _reasons(value) -> str:
    return ",".join(value.reasons)[:200]


def _revenue(facts: PeriodFacts, ths_by_day: dict[date, Decimal], hashprice: dict[date, Decimal]) -> None:
    facts.ths_days = sum(ths_by_day.values(), ZERO)
    facts.revenue = sum((ths * hashprice.get(day, ZERO) for day, ths in ths_by_day.items()), ZERO)


def _rows_python(invoice, contract, terms: Terms, miners, start, end, hashprice, site_cache) -> PeriodFacts:
    from telemetry.models import Daily

    ids = [m["pk"] for m in miners]
    daily = {}
    for i in range(0, len(ids), 500):
        for r in Daily.objects.filter(miner_id__in=ids[i : i + 500], day__gte=start, day__lte=end).values(
            "miner_id", "day", "energy_kwh", "uptime_pct", "avg_hashrate_ths"
        ):
            daily[(r["miner_id"], r["day"])] = r
    uptime = {key: tariff.clamp_pct(tariff.telemetry_decimal(r["uptime_pct"])) for key, r in daily.items()}
    classification = _classify(contract, start, end, uptime, site_cache)
    facts = PeriodFacts(period_start=start, period_end=end, miner_count=len(miners))
    ths_by_day: dict[date, Decimal] = {}
    rows = []
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    for m in miners:
        for day in days:
            r = daily.get((m["pk"], day))
            up = uptime.get((m["pk"], day), Decimal("0.000"))
            ths = tariff.telemetry_decimal(r["avg_hashrate_ths"]) if r else None
            metered = tariff.telemetry_decimal(r["energy_kwh"]) if r else None
            kwh = tariff.day_energy_kwh(terms, metered_kwh=metered, uptime_pct=up, power_w=m["power_w"])
            charge = tariff.day_charge(terms, energy_kwh=kwh, avg_hashrate_ths=ths, hashprice=hashprice[day])
            down = tariff.day_down_h(up)
            c = classification.get((m["pk"], day))
            if c is not None:
                op, cl, ex, cu = (Decimal(c.operator_h), Decimal(c.client_h), Decimal(c.excluded_h),
                                  Decimal(c.curtailed_h))  # fmt: skip
                reasons, commands = _reasons(c), list(c.command_ids)
            else:
                op, cl, ex, cu = down, ZERO, ZERO, ZERO
                reasons, commands = ("unexplained" if down > 0 else ""), []
            rows.append((
                invoice.pk, m["pk"], day.isoformat(), m["serial"], str(kwh), str(up), None if ths is None else str(ths),
                str(op), str(cl), str(ex), str(cu), reasons, str(charge), json.dumps(commands), r is not None,
            ))  # fmt: skip
            facts.miner_days += 1
            facts.energy_kwh += kwh
            facts.charge += charge
            facts.uptime_sum += up
            facts.operator_h += op
            facts.client_h += cl
            facts.excluded_h += ex
            if ths is not None:
                ths_by_day[day] = ths_by_day.get(day, ZERO) + ths
    # Plain executemany, not bulk_create: the ORM's per-field preparation was most of a small build's time. The
    # values are what Django itself writes on SQLite (decimals and dates as text, JSON as text).
    with connection.cursor() as cursor:
        cursor.executemany(_PLAIN_INSERT_SQL.format(table=StatementRow._meta.db_table), rows)
    _revenue(facts, ths_by_day, hashprice)
    facts.curtailed = _curtailed(classification, {m["pk"]: Decimal(m["nominal_ths"]) for m in miners})
    return facts


_PLAIN_INSERT_SQL = """
INSERT INTO {table} (invoice_id, miner_id, day, serial, energy_kwh, uptime_pct, avg_hashrate_ths,
    downtime_operator_h, downtime_client_h, downtime_excluded_h, curtailed_h, downtime_reasons, energy_amount,
    command_ids, reported) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

_INSERT_SQL = """
WITH d AS MATERIALIZED (  -- the contract's month of daily rows, by primary key; hashed against miners × days
    SELECT miner_id, day, energy_kwh, uptime_pct, avg_hashrate_ths FROM telemetry_daily
    WHERE miner_id = ANY(%(ids)s) AND day BETWEEN %(start)s::date AND %(end)s::date
),
c AS (  -- the SLA classification of the down miner-days (a day it does not name: all its downtime unexplained)
    SELECT * FROM unnest(%(c_m)s::bigint[], %(c_d)s::date[], %(c_op)s::numeric[], %(c_cl)s::numeric[],
                         %(c_ex)s::numeric[], %(c_cu)s::numeric[], %(c_reasons)s::text[], %(c_cmds)s::text[])
        AS c(miner_id, day, op, cl, ex, cu, reasons, cmds)
),
ins AS (
    INSERT INTO {table} (invoice_id, miner_id, day, serial, energy_kwh, uptime_pct, avg_hashrate_ths,
        downtime_operator_h, downtime_client_h, downtime_excluded_h, curtailed_h, downtime_reasons, energy_amount,
        command_ids, reported)
    SELECT %(invoice)s, b.miner_id, b.day, b.serial, b.kwh, b.uptime, b.ths,
        COALESCE(c.op, round((100 - b.uptime) * 0.24, 3)), COALESCE(c.cl, 0), COALESCE(c.ex, 0), COALESCE(c.cu, 0),
        COALESCE(c.reasons, CASE WHEN b.uptime < 100 THEN 'unexplained' ELSE '' END),
        CASE WHEN %(revenue_share)s
            THEN round(COALESCE(b.ths, 0) * hp.value * %(share_pct)s / 100, 6)
            ELSE round(b.kwh * %(rate)s, 6) END,
        COALESCE(c.cmds::jsonb, '[]'::jsonb), b.reported
    FROM (
        SELECT m.id AS miner_id, g.day, m.serial, d.miner_id IS NOT NULL AS reported, u.uptime,
            CASE WHEN %(computed)s THEN round(mm.power_w * u.uptime * 0.00024, 3)
                 ELSE GREATEST(COALESCE(round(d.energy_kwh::numeric, 3), 0), 0) END AS kwh,
            round(d.avg_hashrate_ths::numeric, 3) AS ths
        FROM miners_miner m
        JOIN miners_minermodel mm ON mm.id = m.model_id
        CROSS JOIN unnest(%(hp_days)s::date[]) AS g(day)
        LEFT JOIN d ON d.miner_id = m.id AND d.day = g.day
        CROSS JOIN LATERAL (
            SELECT LEAST(GREATEST(COALESCE(round(d.uptime_pct::numeric, 3), 0), 0), 100) AS uptime
        ) u
        WHERE m.id = ANY(%(ids)s)
    ) b
    JOIN unnest(%(hp_days)s::date[], %(hp_values)s::numeric[]) AS hp(day, value) ON hp.day = b.day
    LEFT JOIN c ON c.miner_id = b.miner_id AND c.day = b.day
    RETURNING day, energy_kwh, energy_amount, uptime_pct, avg_hashrate_ths, downtime_operator_h, downtime_client_h,
        downtime_excluded_h
)
SELECT day, count(*), sum(energy_kwh), sum(energy_amount), sum(uptime_pct), sum(avg_hashrate_ths),
    sum(downtime_operator_h), sum(downtime_client_h), sum(downtime_excluded_h)
FROM ins GROUP BY day
"""


def _rows_postgres(invoice, contract, terms: Terms, miners, start, end, hashprice, site_cache) -> PeriodFacts:
    """One statement: the rows inserted with their SLA classification, and their sums per day returned."""
    days = sorted(hashprice)
    classification = _classify(contract, start, end, None, site_cache)
    keys = list(classification)
    vals = [classification[k] for k in keys]
    with connection.cursor() as cursor:
        # Merge joins off for this one statement: the planner otherwise merges miners × days with the daily rows on
        # the miner alone and filters ~30 rows per match (0.8 s a contract instead of 0.3 s at 1,000 miners).
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(
            _INSERT_SQL.format(table=StatementRow._meta.db_table),
            {
                "invoice": invoice.pk, "ids": [m["pk"] for m in miners], "start": start, "end": end,
                "revenue_share": terms.tariff_kind == tariff.REVENUE_SHARE, "share_pct": terms.revenue_share_pct,
                "rate": terms.rate_per_kwh, "computed": terms.energy_basis == tariff.COMPUTED,
                "hp_days": days, "hp_values": [hashprice[d] for d in days],
                "c_m": [k[0] for k in keys], "c_d": [k[1] for k in keys],
                "c_op": [Decimal(v.operator_h) for v in vals], "c_cl": [Decimal(v.client_h) for v in vals],
                "c_ex": [Decimal(v.excluded_h) for v in vals], "c_cu": [Decimal(v.curtailed_h) for v in vals],
                "c_reasons": [_reasons(v) for v in vals], "c_cmds": [json.dumps(list(v.command_ids)) for v in vals],
            },
        )  # fmt: skip
        per_day = cursor.fetchall()
        cursor.execute("SET LOCAL enable_mergejoin TO DEFAULT")
    facts = PeriodFacts(period_start=start, period_end=end, miner_count=len(miners))
    ths_by_day = {}
    for day, count, kwh, charge, uptime, ths, op, cl, ex in per_day:
        facts.miner_days += count
        facts.energy_kwh += kwh
        facts.charge += charge
        facts.uptime_sum += uptime
        facts.operator_h += op
        facts.client_h += cl
        facts.excluded_h += ex
        if ths is not None:
            ths_by_day[day] = ths
    _revenue(facts, ths_by_day, hashprice)
    facts.curtailed = _curtailed(classification, {m["pk"]: Decimal(m["nominal_ths"]) for m in miners})
    return facts
