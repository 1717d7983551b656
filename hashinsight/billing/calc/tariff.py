"""Tariff arithmetic in plain Python (no Django): a month's miner-days and a contract's terms → the invoice lines.

The rules, written once (``docs``: the invoicing note says the same in words):

**Miner-day figures** (each one what the statement row shows, so a client recomputes every line from the file):

- Telemetry floats are read at 15 significant digits (what PostgreSQL's ``float8 → numeric`` gives) and rounded
  half-up: energy, uptime and hashrate to 3 decimals (:func:`telemetry_decimal`).
- A covered miner with no ``daily`` row that day was **not reported**: uptime 0, energy 0, 24 h down.
- Energy, **metered**: the daily row's ``energy_kwh``; **computed**: nominal W × 24 h × uptime % / 100 / 1000
  (``power_w × uptime_pct × 0.00024``), to 3 decimals.
- Down hours: ``24 × (100 − uptime %) / 100`` to 3 decimals; split into operator / client / excluded hours by the
  SLA classification (``hashinsight.billing.sla``); a down day the classification does not name is operator-caused.
- The day's **charge** (``StatementRow.energy_amount``): energy tariffs ``kWh × rate``; revenue share
  ``avg TH/s × hashprice of the day × share % / 100`` (the miner's *measured* average hashrate, the network's
  hashprice in USD per TH/s per day before pool fees). Kept to 6 decimals (half-up): sub-cent, not yet rounded.

**Lines** (each rounded half-up to the cent once, ``hashinsight.billing.money``; credits are negative):

1. Energy (``kWh × rate``) or revenue share: the rounded sum of the miner-days' charges.
2. Fixed fee (``kwh_plus_fixed``): fee per miner per month × covered miner-days / days in the calendar month —
   a miner covered for 16 of 30 days pays 16/30 of the fee (a mid-month start or end), whatever its uptime.
3. SLA credit: ``sla_credit_pct(SLA uptime)`` % of the month's charges (lines 1 + 2).
4. Curtailment credit: curtailed hours *beyond* the allowance (hours per miner per calendar month, consumed in day
   order, the same rule as the SLA classification) × the credit per miner-hour, or, for revenue pass-through, the
   revenue forgone: ``hours × nominal TH/s × hashprice of the day / 24``. Credits together never exceed the
   charges (the curtailment credit is cut first): a month never ends with the operator owing money.
5. Deposit: charged as a line on the contract's first invoice and held; applied back (a negative line) on the
   invoice of the period the contract ends in, up to what that invoice would otherwise total (any rest is
   refunded outside the invoice).
6. Prior balance: the open balance of the contract's earlier issued invoices, shown for information; it stays
   payable on those invoices and is *not* part of this invoice's total (payments settle one invoice each).

``total = charges − credits + deposit line(s)``."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from hashinsight.billing.money import round_money

ZERO = Decimal("0")
THOUSANDTH = Decimal("0.001")
MILLIONTH = Decimal("0.000001")
HASHPRICE_PLACES = Decimal("0.00000001")
DAY_H = Decimal("24")
KWH_PER_W_PCT_DAY = Decimal("0.00024")  # 24 h / 100 % / 1000 W per kW

ALL_IN_KWH, KWH_PLUS_FIXED, REVENUE_SHARE = "all_in_kwh", "kwh_plus_fixed", "revenue_share"
METERED, COMPUTED = "metered", "computed"
CREDIT_NONE, CREDIT_RATE, CREDIT_PASS_THROUGH = "none", "rate", "pass_through"


@dataclass(frozen=True)
class Terms:
    """The contract terms the arithmetic needs (``from_contract`` reads a HostingContract)."""

    tariff_kind: str = ALL_IN_KWH
    energy_basis: str = METERED
    rate_per_kwh: Decimal = ZERO
    fixed_fee_per_miner_month: Decimal = ZERO
    revenue_share_pct: Decimal = ZERO
    curtailment_allowance_hours: Decimal = ZERO
    curtailment_credit_kind: str = CREDIT_NONE
    curtailment_credit_per_miner_hour: Decimal = ZERO
    deposit: Decimal = ZERO

    @classmethod
    def from_contract(cls, contract) -> Terms:
        return cls(
            tariff_kind=contract.tariff_kind,
            energy_basis=contract.energy_basis,
            rate_per_kwh=Decimal(contract.rate_per_kwh),
            fixed_fee_per_miner_month=Decimal(contract.fixed_fee_per_miner_month),
            revenue_share_pct=Decimal(contract.revenue_share_pct),
            curtailment_allowance_hours=Decimal(contract.curtailment_allowance_hours),
            curtailment_credit_kind=contract.curtailment_credit_kind,
            curtailment_credit_per_miner_hour=Decimal(contract.curtailment_credit_per_miner_hour),
            deposit=Decimal(contract.deposit),
        )


def telemetry_decimal(value, places: Decimal = THOUSANDTH) -> Decimal | None:
    """A telemetry float as a Decimal: 15 significant digits, then half-up to ``places`` (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(f"{float(value):.15g}")
    return value.quantize(places, ROUND_HALF_UP)


def clamp_pct(value: Decimal) -> Decimal:
    return min(max(value, ZERO), Decimal("100.000"))


def day_energy_kwh(terms: Terms, *, metered_kwh: Decimal | None, uptime_pct: Decimal, power_w: Decimal) -> Decimal:
    """The miner-day's billed energy (module docstring). ``metered_kwh`` None: not reported (0 kWh)."""
    if terms.energy_basis == COMPUTED:
        return (Decimal(power_w) * uptime_pct * KWH_PER_W_PCT_DAY).quantize(THOUSANDTH, ROUND_HALF_UP)
    return max(metered_kwh or ZERO, ZERO)


def day_down_h(uptime_pct: Decimal) -> Decimal:
    return (DAY_H * (Decimal(100) - uptime_pct) / Decimal(100)).quantize(THOUSANDTH, ROUND_HALF_UP)


def day_charge(terms: Terms, *, energy_kwh: Decimal, avg_hashrate_ths: Decimal | None, hashprice: Decimal) -> Decimal:
    """The miner-day's charge to 6 decimals: energy × rate, or the operator's share of the day's revenue."""
    if terms.tariff_kind == REVENUE_SHARE:
        revenue = (avg_hashrate_ths or ZERO) * hashprice
        return (revenue * terms.revenue_share_pct / Decimal(100)).quantize(MILLIONTH, ROUND_HALF_UP)
    return (energy_kwh * terms.rate_per_kwh).quantize(MILLIONTH, ROUND_HALF_UP)


@dataclass(frozen=True)
class Curtailed:
    """A miner-day with hours curtailed at the operator's request (from the SLA classification)."""

    miner_id: int
    day: date
    hours: Decimal
    nominal_ths: Decimal = ZERO


@dataclass
class PeriodFacts:
    """What the lines are computed from: sums over the statement rows (exact decimals) and the curtailed days."""

    period_start: date
    period_end: date
    miner_count: int = 0
    miner_days: int = 0
    energy_kwh: Decimal = ZERO
    charge: Decimal = ZERO  # Σ 6-decimal miner-day charges
    ths_days: Decimal = ZERO  # Σ avg TH/s of the reported days (revenue share basis)
    revenue: Decimal = ZERO  # Σ avg TH/s × hashprice (revenue share: the gross revenue the share applies to)
    uptime_sum: Decimal = ZERO  # Σ uptime % (3 decimals)
    operator_h: Decimal = ZERO
    client_h: Decimal = ZERO
    excluded_h: Decimal = ZERO
    curtailed: list[Curtailed] = field(default_factory=list)
    first_invoice: bool = False
    final_invoice: bool = False
    prior_balance: Decimal = ZERO

    @property
    def days_in_month(self) -> int:
        return calendar.monthrange(self.period_start.year, self.period_start.month)[1]

    @property
    def period_h(self) -> Decimal:
        return DAY_H * self.miner_days

    @property
    def uptime_pct(self) -> Decimal | None:
        if not self.miner_days:
            return None
        return (self.uptime_sum / self.miner_days).quantize(THOUSANDTH, ROUND_HALF_UP)

    @property
    def sla_uptime_pct(self) -> Decimal | None:
        """``100 × (period_h − operator_h) / period_h``: client-caused and excluded hours count as up (the SLA
        part's rule, ``hashinsight.billing.calc.sla``)."""
        if not self.miner_days:
            return None
        op = min(self.operator_h, self.period_h)
        return (Decimal(100) * (self.period_h - op) / self.period_h).quantize(THOUSANDTH, ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    kind: str  # InvoiceLine.Kind value
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal  # rounded to the cent; credits negative
    detail: dict = field(default_factory=dict)  # figures for the description


@dataclass(frozen=True)
class Result:
    lines: list[Line]
    subtotal: Decimal  # charges
    credits: Decimal  # positive
    deposit_applied: Decimal  # signed: + the deposit charged, − the deposit applied back
    prior_balance: Decimal
    total: Decimal
    uptime_pct: Decimal | None
    sla_uptime_pct: Decimal | None
    sla_credit_pct: Decimal
    curtailment_credit_h: Decimal


def curtailment_credit(
    terms: Terms, curtailed: Iterable[Curtailed], hashprice: Mapping[date, Decimal]
) -> tuple[Decimal, Decimal]:
    """(credited miner-hours, unrounded credit) for hours beyond the allowance. The allowance is per miner per
    calendar month, consumed in day order (the SLA classification's rule)."""
    if terms.curtailment_credit_kind == CREDIT_NONE:
        return ZERO, ZERO
    used: dict[tuple[int, int, int], Decimal] = defaultdict(lambda: ZERO)
    hours_total = amount = ZERO
    for row in sorted(curtailed, key=lambda r: (r.miner_id, r.day)):
        if row.hours <= 0:
            continue
        key = (row.miner_id, row.day.year, row.day.month)
        within = min(row.hours, max(terms.curtailment_allowance_hours - used[key], ZERO))
        used[key] += within
        beyond = row.hours - within
        if beyond <= 0:
            continue
        hours_total += beyond
        if terms.curtailment_credit_kind == CREDIT_RATE:
            amount += beyond * terms.curtailment_credit_per_miner_hour
        else:
            amount += beyond * row.nominal_ths * hashprice.get(row.day, ZERO) / DAY_H
    return hours_total, amount


def compute(terms: Terms, facts: PeriodFacts, *, sla_credit_pct: Callable[[Decimal], Decimal], currency: str,
            hashprice: Mapping[date, Decimal] | None = None) -> Result:  # fmt: skip
    """The invoice's lines and totals (module docstring)."""
    lines: list[Line] = []
    main = round_money(facts.charge)
    if terms.tariff_kind == REVENUE_SHARE:
        lines.append(Line("revenue_share", facts.revenue.quantize(Decimal("0.0001"), ROUND_HALF_UP), currency,
                          (terms.revenue_share_pct / Decimal(100)).quantize(MILLIONTH), main,
                          {"pct": terms.revenue_share_pct, "ths_days": facts.ths_days}))  # fmt: skip
    else:
        lines.append(Line("energy", facts.energy_kwh, "kWh", terms.rate_per_kwh, main, {"basis": terms.energy_basis}))
    charges = main
    if terms.tariff_kind == KWH_PLUS_FIXED and terms.fixed_fee_per_miner_month > 0 and facts.miner_days:
        fee = round_money(terms.fixed_fee_per_miner_month * facts.miner_days / facts.days_in_month)
        months = (Decimal(facts.miner_days) / facts.days_in_month).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        lines.append(Line("fixed_fee", months, "miner-month", terms.fixed_fee_per_miner_month, fee,
                          {"miner_days": facts.miner_days, "days_in_month": facts.days_in_month}))  # fmt: skip
        charges += fee

    sla_uptime = facts.sla_uptime_pct
    pct = Decimal(sla_credit_pct(sla_uptime)) if sla_uptime is not None else ZERO
    sla_credit = round_money(charges * pct / Decimal(100)) if pct > 0 else ZERO
    sla_credit = min(sla_credit, charges)
    if sla_credit > 0:
        lines.append(Line("sla_credit", pct, "%", charges, -sla_credit, {"sla_uptime_pct": sla_uptime}))

    hours, raw = curtailment_credit(terms, facts.curtailed, hashprice or {})
    curtail_credit = min(round_money(raw), charges - sla_credit)
    if curtail_credit > 0:
        unit_price = (
            terms.curtailment_credit_per_miner_hour
            if terms.curtailment_credit_kind == CREDIT_RATE
            else (raw / hours).quantize(MILLIONTH, ROUND_HALF_UP)
        )
        lines.append(Line("curtailment_credit", hours, "miner-hour", unit_price, -curtail_credit,
                          {"kind": terms.curtailment_credit_kind,
                           "allowance_h": terms.curtailment_allowance_hours}))  # fmt: skip
    credits = sla_credit + curtail_credit

    deposit_applied = ZERO
    if terms.deposit > 0 and facts.first_invoice:
        lines.append(Line("deposit", Decimal(1), currency, terms.deposit, terms.deposit, {"held": True}))
        deposit_applied += terms.deposit
    if terms.deposit > 0 and facts.final_invoice:
        back = min(terms.deposit, charges - credits + deposit_applied)
        if back > 0:
            lines.append(Line("deposit", Decimal(1), currency, -back, -back, {"held": False}))
            deposit_applied -= back
    if facts.prior_balance > 0:
        lines.append(Line("prior_balance", facts.prior_balance, currency, Decimal(1), facts.prior_balance,
                          {"informational": True}))  # fmt: skip
    return Result(
        lines=lines,
        subtotal=charges,
        credits=credits,
        deposit_applied=deposit_applied,
        prior_balance=facts.prior_balance,
        total=charges - credits + deposit_applied,
        uptime_pct=facts.uptime_pct,
        sla_uptime_pct=sla_uptime,
        sla_credit_pct=pct,
        curtailment_credit_h=hours,
    )
