"""What a report shows, gathered from the database: the monthly site report (``site_month``) and the client statement
of one invoice (``client_statement``). Both return a ``ReportData``; the renderers (PDF, Excel, PPT) only lay it out.

Costs stay flat in the size of the fleet: a site-month is a constant number of set-based queries (31 ``SiteDaily``
rows, one ``GROUP BY`` of ``telemetry_daily`` per miner model and one for the fifty least available miners, the
installed fleet in one aggregate, the month's market days, curtailment events and the twenty worst incidents); no
query or Python loop runs per miner. A client statement reads the invoice's frozen ``StatementRow`` rows grouped by
miner and by day (what the client is billed on), never the live telemetry.

Money is ``Decimal`` rounded half-up to the cent once per row (``billing.money.round_money``); totals are sums of
rounded rows. Revenue is the day's hashprice (USD per TH/s per day, before pool fees, ``intelligence.roi``'s market
days and ``intelligence.algorithms.hashprice``) times the day's average fleet hashrate; power cost is the day's energy
times the site's power price."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from hashinsight.billing.calc.carried import Carried, carried_runs
from hashinsight.billing.money import round_money

INCIDENTS_SHOWN = 20
WORST_MINERS = 50
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# Safety events are single moments; what they mean for the fleet decides their place among the alerts.
SAFETY_SEVERITY = {
    "overheat_shutdown": "critical",
    "power_loss": "critical",
    "hashboard_failure": "warning",
    "fan_failure": "warning",
}
CURTAILMENT_COUNTED = ("active", "restoring", "ended", "failed")


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _dec(value, places: str = "0.001") -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal(places))


@dataclass
class DayFigures:
    day: date
    miners_reporting: int
    hashrate_ths: float
    nominal_ths: float
    uptime_pct: float | None
    energy_kwh: float
    curtailed_h: float = 0.0
    hashprice_usd: Decimal | None = None  # per TH/s per day
    revenue_usd: Decimal | None = None
    cost: Decimal = Decimal("0.00")  # power cost (site) or charges (client statement), in the report's currency

    @property
    def hashrate_pct(self) -> float | None:
        return 100.0 * self.hashrate_ths / self.nominal_ths if self.nominal_ths else None


@dataclass
class Incident:
    source: str  # alert | safety
    started: datetime
    ended: datetime | None
    severity: str
    kind: str
    miner: str
    message: str
    status: str

    @property
    def duration_h(self) -> float:
        return max(0.0, ((self.ended or self.started) - self.started).total_seconds() / 3600)


@dataclass
class MinerFigures:
    serial: str
    model: str
    days: int
    energy_kwh: float
    uptime_pct: float | None
    hashrate_ths: float | None
    curtailed_h: float = 0.0
    downtime_operator_h: float = 0.0
    downtime_client_h: float = 0.0
    downtime_excluded_h: float = 0.0
    charge: Decimal | None = None


@dataclass
class ModelFigures:
    model: str
    miners: int
    nominal_ths: float
    energy_kwh: float
    uptime_pct: float | None
    hashrate_ths: float  # average daily fleet hashrate of this model


@dataclass
class Curtailment:
    events: int = 0
    hours: float = 0.0
    energy_avoided_kwh: Decimal = Decimal("0")
    revenue_forgone_usd: Decimal = Decimal("0.00")


@dataclass
class InvoiceLineFigures:
    position: int
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


@dataclass
class InvoiceFigures:
    number: str
    status: str
    issue_date: date | None
    due_date: date | None
    subtotal: Decimal
    credits: Decimal
    prior_balance: Decimal
    deposit_applied: Decimal
    total: Decimal
    amount_paid: Decimal
    balance_due: Decimal
    sla_uptime_pct: Decimal | None
    statement_sha256: str
    lines: list[InvoiceLineFigures] = field(default_factory=list)


@dataclass
class ReportData:
    """One report's figures, in plain values (no model instances: renderers need no database)."""

    kind: str  # site_monthly | client_statement
    subject: str  # the site's name or the client's company
    site_name: str
    site_timezone: str
    month: date
    period_start: date
    period_end: date
    currency: str
    miners: int
    nominal_ths: float
    nominal_kw: float
    power_price: Decimal | None
    days: list[DayFigures]
    curtailment: Curtailment
    incidents: list[Incident]
    incident_counts: dict
    miner_rows: list[MinerFigures]
    model_rows: list[ModelFigures] = field(default_factory=list)
    invoice: InvoiceFigures | None = None
    generated_at: datetime = field(default_factory=timezone.now)
    # Days shown with an earlier day's hashprice (the market feed ends before them): the report names that day.
    hashprice_carried: list[Carried] = field(default_factory=list)

    @property
    def energy_kwh(self) -> float:
        return sum(d.energy_kwh for d in self.days)

    @property
    def avg_hashrate_ths(self) -> float:
        return sum(d.hashrate_ths for d in self.days) / len(self.days) if self.days else 0.0

    @property
    def hashrate_pct(self) -> float | None:
        return 100.0 * self.avg_hashrate_ths / self.nominal_ths if self.nominal_ths else None

    @property
    def uptime_pct(self) -> float | None:
        known = [d.uptime_pct for d in self.days if d.uptime_pct is not None]
        return sum(known) / len(known) if known else None

    @property
    def revenue_usd(self) -> Decimal:
        return sum((d.revenue_usd for d in self.days if d.revenue_usd is not None), Decimal("0.00"))

    @property
    def cost(self) -> Decimal:
        return sum((d.cost for d in self.days), Decimal("0.00"))


# ---------------------------------------------------------------------------------------------------------
# Shared pieces


def hashprice_by_day(start: date, end: date) -> dict[date, Decimal]:
    """USD per TH/s per day for each day of [start, end] (``hashprice_days``' values)."""
    return hashprice_days(start, end)[0]


def hashprice_days(start: date, end: date) -> tuple[dict[date, Decimal], dict[date, date]]:
    """USD per TH/s per day for each day of [start, end] that has market data (or a day before it, carried forward:
    the latest figure known then), and for each day the day its figure is of (later than the last market day, that
    is the last market day: the reports say so, ``ReportData.hashprice_carried``). One query (or the shipped file
    while the table is empty); a second one when the feed stopped more than two weeks before ``start``: its last day
    is carried forward rather than reporting no revenue at all (a stale feed is reported by /api/health)."""
    from intelligence import market
    from intelligence.algorithms.hashprice import block_subsidy_btc_on, hashprice_usd_per_th_day
    from intelligence.roi import market_rows

    rows = market_rows(start - timedelta(days=14), end)
    if not any(r.day <= start for r in rows):
        earlier = market_rows(date(2009, 1, 3), start - timedelta(days=15))
        rows = [max(earlier, key=lambda r: r.day), *rows] if earlier else rows
    out: dict[date, Decimal] = {}
    of: dict[date, date] = {}
    known: dict[date, Decimal] = {}
    for r in rows:
        fees = (
            (Decimal(r.fees_btc) / market.BLOCKS_PER_DAY)
            if r.fees_btc is not None
            else (market.FALLBACK_FEES_BTC_PER_BLOCK)
        )
        known[r.day] = Decimal(
            hashprice_usd_per_th_day(r.btc_price_usd, r.difficulty, block_subsidy_btc_on(r.day), fees)
        ).quantize(Decimal("0.000001"))
    last, last_day = None, None
    day = min([start - timedelta(days=14), *known])
    while day <= end:
        if day in known:
            last, last_day = known[day], day
        if day >= start and last is not None:
            out[day], of[day] = last, last_day
        day += timedelta(days=1)
    return out, of


def _incidents(alert_q: Q, safety_q: Q, start: date, end: date) -> tuple[list[Incident], dict]:
    """The most severe and longest alerts and safety events of the period (``INCIDENTS_SHOWN`` of them) and the
    count per severity. Two bounded queries for the rows, two grouped counts."""
    from django.db.models import Case, F, IntegerField, Value, When
    from django.db.models.functions import Coalesce

    from telemetry.models import Alert, SafetyEvent

    start_dt, end_dt = _midnight(start), _midnight(end + timedelta(days=1))
    alerts = Alert.objects.filter(alert_q, first_seen__lt=end_dt, last_seen__gte=start_dt)
    rank = Case(
        *(When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()),
        default=Value(9),
        output_field=IntegerField(),
    )
    worst = (
        alerts.annotate(rank=rank, until=Coalesce("resolved_at", "last_seen"))
        .annotate(length=F("until") - F("first_seen"))
        .select_related("miner")
        .order_by("rank", "-length", "-last_seen")[:INCIDENTS_SHOWN]
    )
    out = [
        Incident(
            source="alert",
            started=a.first_seen,
            ended=a.resolved_at or a.last_seen,
            severity=a.severity,
            kind=a.alert_type,
            miner=a.miner.serial if a.miner_id else "",
            message=a.message,
            status=a.status,
        )
        for a in worst
    ]
    counts = dict.fromkeys(SEVERITY_RANK, 0)
    for row in alerts.values("severity").annotate(n=Count("id")):
        counts[row["severity"]] = counts.get(row["severity"], 0) + row["n"]
    safety = SafetyEvent.objects.filter(safety_q, ts__gte=start_dt, ts__lt=end_dt)
    serious = [k for k, s in SAFETY_SEVERITY.items() if s == "critical"]
    for ev in safety.select_related("miner").order_by(
        Case(When(kind__in=serious, then=Value(0)), default=Value(1), output_field=IntegerField()), "-ts"
    )[:INCIDENTS_SHOWN]:
        out.append(
            Incident(
                source="safety",
                started=ev.ts,
                ended=None,
                severity=SAFETY_SEVERITY.get(ev.kind, "warning"),
                kind=ev.kind,
                miner=ev.miner.serial if ev.miner_id else "",
                message=str(ev.details.get("message", "")) if isinstance(ev.details, dict) else "",
                status="",
            )
        )
    for row in safety.values("kind").annotate(n=Count("id")):
        sev = SAFETY_SEVERITY.get(row["kind"], "warning")
        counts[sev] = counts.get(sev, 0) + row["n"]
    out.sort(key=lambda i: (SEVERITY_RANK.get(i.severity, 9), -i.duration_h, -i.started.timestamp()))
    return out[:INCIDENTS_SHOWN], counts


def _curtailed_hours(windows: list[tuple[datetime, datetime]], start: date, end: date) -> tuple[dict, float]:
    """Hours of each day of [start, end] covered by the windows (overlaps between events counted once)."""
    lo, hi = _midnight(start), _midnight(end + timedelta(days=1))
    merged: list[list[datetime]] = []
    for a, b in sorted((max(a, lo), min(b, hi)) for a, b in windows):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    per_day: dict[date, float] = {}
    for a, b in merged:
        cur = a
        while cur < b:
            next_midnight = _midnight(cur.date() + timedelta(days=1))
            stop = min(b, next_midnight)
            per_day[cur.date()] = per_day.get(cur.date(), 0.0) + (stop - cur).total_seconds() / 3600
            cur = stop
    return per_day, sum(per_day.values())


def _event_window(ev, now: datetime) -> tuple[datetime, datetime]:
    end = ev.ended_at or ev.end_requested_at or min(now, ev.max_end_at)
    return ev.starts_at, max(ev.starts_at, end)


# ---------------------------------------------------------------------------------------------------------
# The monthly site report


def site_month(*, site, month: date) -> ReportData:
    """The site's month (``month`` is any day of it)."""
    from intelligence.models import CurtailmentEvent
    from miners.models import Miner
    from telemetry.models import Daily, SiteDaily

    month = month_start(month)
    start, end = month, month_end(month)
    fleet = Miner.objects.filter(site=site).aggregate(
        n=Count("id"), ths=Sum("model__hashrate_ths"), w=Sum("model__power_w")
    )
    nominal = float(fleet["ths"] or 0)
    by_day = {r.day: r for r in SiteDaily.objects.filter(site_id=site.pk, day__gte=start, day__lte=end).order_by("day")}
    daily = Daily.objects.filter(site_id=site.pk, day__gte=start, day__lte=end)
    missing = [d for d in _days(start, end) if d not in by_day and d <= timezone.now().date()]
    fallback = {}
    if missing:  # a day the site rollup has not written yet: the miners' rows of that day, summed
        for r in (
            daily.filter(day__in=missing)
            .values("day")
            .annotate(n=Count("miner_id"), ths=Sum("avg_hashrate_ths"), kwh=Sum("energy_kwh"), up=Avg("uptime_pct"))
        ):
            fallback[r["day"]] = r
    price = site.power_price_usd_per_kwh
    hp, hp_of = hashprice_days(start, end)
    events = list(
        CurtailmentEvent.objects.filter(
            site=site, status__in=CURTAILMENT_COUNTED, starts_at__lt=_midnight(end + timedelta(days=1))
        )
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=_midnight(start)))
        .only("starts_at", "ended_at", "end_requested_at", "max_end_at", "energy_avoided_kwh", "revenue_forgone_usd")
    )
    now = timezone.now()
    curtailed, hours = _curtailed_hours([_event_window(e, now) for e in events], start, end)
    in_month = [e for e in events if start <= e.starts_at.date() <= end]
    curtailment = Curtailment(
        events=len(events),
        hours=hours,
        energy_avoided_kwh=sum((e.energy_avoided_kwh for e in in_month), Decimal("0")),
        revenue_forgone_usd=sum((e.revenue_forgone_usd for e in in_month), Decimal("0.00")),
    )
    days = []
    for day in _days(start, end):
        row, fb = by_day.get(day), fallback.get(day)
        if row is not None:
            n, ths, kwh, up = row.miners_reporting, row.avg_hashrate_ths, row.energy_kwh, row.uptime_pct
        elif fb is not None:
            n, ths, kwh, up = fb["n"], fb["ths"] or 0.0, fb["kwh"] or 0.0, fb["up"]
        else:
            continue
        days.append(_day(day, n, ths, nominal, up, kwh, curtailed.get(day, 0.0), hp.get(day), price))
    incidents, counts = _incidents(Q(site_id=site.pk), Q(site_id=site.pk), start, end)
    return ReportData(
        kind="site_monthly",
        subject=site.name,
        site_name=site.name,
        site_timezone=site.timezone,
        month=month,
        period_start=start,
        period_end=end,
        currency="USD",
        miners=fleet["n"] or 0,
        nominal_ths=nominal,
        nominal_kw=float(fleet["w"] or 0) / 1000,
        power_price=price,
        days=days,
        curtailment=curtailment,
        incidents=incidents,
        incident_counts=counts,
        miner_rows=_worst_miners(daily),
        model_rows=_models(site, daily, len(_days(start, end))),
        hashprice_carried=_carried(days, hp_of),
    )


def _carried(days: list[DayFigures], hp_of: dict[date, date]) -> list[Carried]:
    """The shown days whose hashprice is an earlier day's."""
    return carried_runs({d.day: hp_of.get(d.day) for d in days if d.hashprice_usd is not None})


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _day(day, n, ths, nominal, up, kwh, curtailed_h, hashprice, price) -> DayFigures:
    revenue = round_money(_dec(ths) * hashprice) if hashprice is not None else None
    return DayFigures(
        day=day,
        miners_reporting=n or 0,
        hashrate_ths=float(ths or 0),
        nominal_ths=nominal,
        uptime_pct=up,
        energy_kwh=float(kwh or 0),
        curtailed_h=curtailed_h,
        hashprice_usd=hashprice,
        revenue_usd=revenue,
        cost=round_money(_dec(kwh) * price) if price is not None else Decimal("0.00"),
    )


def _worst_miners(daily) -> list[MinerFigures]:
    """The ``WORST_MINERS`` miners of the month with the lowest average uptime: one grouped query (a hash
    aggregate over the month's rows), then their serials and models by primary key."""
    from miners.models import Miner

    rows = list(
        daily.values("miner_id")
        .annotate(days=Count("day"), kwh=Sum("energy_kwh"), up=Avg("uptime_pct"), ths=Avg("avg_hashrate_ths"))
        .order_by("up", "miner_id")[:WORST_MINERS]
    )
    info = {
        m["pk"]: m
        for m in Miner.objects.filter(pk__in=[r["miner_id"] for r in rows]).values(
            "pk", "serial", "model__vendor", "model__name"
        )
    }
    out = []
    for r in rows:
        m = info.get(r["miner_id"], {})
        out.append(
            MinerFigures(
                serial=m.get("serial", str(r["miner_id"])),
                model=f"{m.get('model__vendor', '')} {m.get('model__name', '')}".strip(),
                days=r["days"],
                energy_kwh=float(r["kwh"] or 0),
                uptime_pct=r["up"],
                hashrate_ths=r["ths"],
            )
        )
    return out


def _models(site, daily, n_days: int) -> list[ModelFigures]:
    """Per miner model: installed miners and nominal (the fleet now), energy, uptime and average hashrate over the
    month's rows (grouped through the miner's model: one join, one GROUP BY)."""
    from miners.models import Miner

    installed = {
        r["model_id"]: r
        for r in Miner.objects.filter(site=site)
        .values("model_id", "model__vendor", "model__name")
        .annotate(n=Count("id"), ths=Sum("model__hashrate_ths"))
    }
    measured = {
        r["miner__model_id"]: r
        for r in daily.values("miner__model_id").annotate(
            kwh=Sum("energy_kwh"), up=Avg("uptime_pct"), ths=Sum("avg_hashrate_ths")
        )
    }
    out = []
    for model_id, r in installed.items():
        m = measured.get(model_id, {})
        out.append(
            ModelFigures(
                model=f"{r['model__vendor']} {r['model__name']}",
                miners=r["n"],
                nominal_ths=float(r["ths"] or 0),
                energy_kwh=float(m.get("kwh") or 0),
                uptime_pct=m.get("up"),
                hashrate_ths=float(m.get("ths") or 0) / n_days if n_days else 0.0,
            )
        )
    out.sort(key=lambda m: -m.nominal_ths)
    return out


# ---------------------------------------------------------------------------------------------------------
# The client statement


def client_statement(*, invoice) -> ReportData:
    """One invoice's statement: its header and lines, the frozen statement rows summed per miner and per day, the
    client's curtailment (operator requests) and the client's own incidents at that site in the period."""
    from hashinsight.billing.models import StatementRow
    from intelligence.models import CurtailmentEventMiner
    from miners.models import Miner

    site, customer = invoice.site, invoice.customer
    start, end = invoice.period_start, invoice.period_end
    rows = StatementRow.objects.filter(invoice=invoice)
    miner_ids = rows.values("miner_id").distinct()
    fleet = Miner.objects.filter(pk__in=miner_ids).aggregate(
        n=Count("id"), ths=Sum("model__hashrate_ths"), w=Sum("model__power_w")
    )
    nominal = float(fleet["ths"] or 0)
    hp, hp_of = hashprice_days(start, end)
    days = []
    for r in (
        rows.values("day")
        .annotate(
            n=Count("miner_id", filter=Q(reported=True)),
            ths=Sum("avg_hashrate_ths"),
            kwh=Sum("energy_kwh"),
            up=Avg("uptime_pct"),
            cut=Sum("curtailed_h"),
            charge=Sum("energy_amount"),
        )
        .order_by("day")
    ):
        day = _day(
            r["day"],
            r["n"],
            float(r["ths"] or 0),
            nominal,
            _f(r["up"]),
            float(r["kwh"] or 0),
            float(r["cut"] or 0),
            hp.get(r["day"]),
            None,
        )
        day.cost = round_money(r["charge"] or 0)
        days.append(day)
    models = {
        m["pk"]: f"{m['model__vendor']} {m['model__name']}"
        for m in Miner.objects.filter(pk__in=miner_ids).values("pk", "model__vendor", "model__name")
    }
    miners = [
        MinerFigures(
            serial=r["serial"],
            model=models.get(r["miner_id"], ""),
            days=r["days"],
            energy_kwh=float(r["kwh"] or 0),
            uptime_pct=_f(r["up"]),
            hashrate_ths=_f(r["ths"]),
            curtailed_h=float(r["cut"] or 0),
            downtime_operator_h=float(r["op"] or 0),
            downtime_client_h=float(r["cl"] or 0),
            downtime_excluded_h=float(r["ex"] or 0),
            charge=round_money(r["charge"] or 0),
        )
        for r in rows.values("miner_id", "serial")
        .annotate(
            days=Count("day"),
            kwh=Sum("energy_kwh"),
            up=Avg("uptime_pct"),
            ths=Avg("avg_hashrate_ths"),
            cut=Sum("curtailed_h"),
            op=Sum("downtime_operator_h"),
            cl=Sum("downtime_client_h"),
            ex=Sum("downtime_excluded_h"),
            charge=Sum("energy_amount"),
        )
        .order_by("serial")
    ]
    cut = CurtailmentEventMiner.objects.filter(
        customer=customer,
        event__site=site,
        event__starts_at__gte=_midnight(start),
        event__starts_at__lt=_midnight(end + timedelta(days=1)),
    ).aggregate(events=Count("event_id", distinct=True), kwh=Sum("energy_avoided_kwh"), usd=Sum("revenue_forgone_usd"))
    curtailment = Curtailment(
        events=cut["events"] or 0,
        hours=sum(m.curtailed_h for m in miners),
        energy_avoided_kwh=cut["kwh"] or Decimal("0"),
        revenue_forgone_usd=cut["usd"] or Decimal("0.00"),
    )
    incidents, counts = _incidents(
        Q(site_id=site.pk, customer_id=customer.pk), Q(site_id=site.pk, miner__customer_id=customer.pk), start, end
    )
    header = InvoiceFigures(
        number=invoice.number or f"draft {invoice.pk}",
        status=invoice.status,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        subtotal=invoice.subtotal,
        credits=invoice.credits,
        prior_balance=invoice.prior_balance,
        deposit_applied=invoice.deposit_applied,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        balance_due=invoice.balance_due,
        sla_uptime_pct=invoice.sla_uptime_pct,
        statement_sha256=invoice.statement_sha256,
        lines=[
            InvoiceLineFigures(ln.position, ln.kind, ln.description, ln.quantity, ln.unit, ln.unit_price, ln.amount)
            for ln in invoice.lines.order_by("position")
        ],
    )
    return ReportData(
        kind="client_statement",
        subject=customer.company,
        site_name=site.name,
        site_timezone=site.timezone,
        month=month_start(start),
        period_start=start,
        period_end=end,
        currency=invoice.currency,
        miners=fleet["n"] or 0,
        nominal_ths=nominal,
        nominal_kw=float(fleet["w"] or 0) / 1000,
        power_price=None,
        days=days,
        curtailment=curtailment,
        incidents=incidents,
        incident_counts=counts,
        miner_rows=miners,
        invoice=header,
        hashprice_carried=_carried(days, hp_of),
    )


def _f(value) -> float | None:
    return None if value is None else float(value)
