"""The words and formatted figures of a report, shared by the three renderers so a PDF, a workbook and a deck say
the same thing. Call inside ``translation.override(language)``: every label goes through gettext here.

Tables are ``Table(title, header, rows)`` with rows of text (PDF, PPT) and, for the workbook, ``raw`` rows of
numbers (``None`` for an empty cell)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import formats
from django.utils.translation import gettext as _

from hashinsight.reports.data import ReportData

UNIT_PHS = 1000.0  # TH/s per PH/s


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    raw: list[list] = field(default_factory=list)


def num(value, places: int = 0) -> str:
    if value is None:
        return "–"
    return formats.number_format(round(float(value), places), places, force_grouping=True)


def money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "–"
    return f"{formats.number_format(value, 2, force_grouping=True)} {currency}"


def pct(value) -> str:
    return "–" if value is None else f"{num(value, 1)} %"


def severity_label(severity: str) -> str:
    return {"critical": _("Critical"), "warning": _("Warning"), "info": _("Info")}.get(severity, severity)


def hashrate_unit(data: ReportData) -> tuple[str, float]:
    """PH/s for a fleet of 10 PH/s or more, TH/s below (a client with a few miners)."""
    return ("PH/s", UNIT_PHS) if max(data.nominal_ths, data.avg_hashrate_ths) >= 10 * UNIT_PHS else ("TH/s", 1.0)


def title(data: ReportData) -> str:
    if data.kind == "client_statement":
        return _("Client statement")
    return _("Monthly site report")


def subtitle(data: ReportData) -> str:
    period = f"{data.period_start:%Y-%m-%d} – {data.period_end:%Y-%m-%d}"
    if data.kind == "client_statement":
        return _("%(client)s at %(site)s, %(period)s") % {
            "client": data.subject,
            "site": data.site_name,
            "period": period,
        }
    return _("%(site)s, %(period)s") % {"site": data.subject, "period": period}


def footer(data: ReportData) -> str:
    return _("HashInsight · generated %(when)s UTC · days are UTC days") % {
        "when": f"{data.generated_at:%Y-%m-%d %H:%M}"
    }


def market_notes(data: ReportData) -> list[str]:
    """One sentence per run of days shown with an earlier day's hashprice (the market data end before them)."""
    return [
        _("Hashprice as of %(as_of)s, used for %(first)s – %(last)s (no later market data).")
        % {"as_of": f"{c.as_of:%Y-%m-%d}", "first": f"{c.first:%Y-%m-%d}", "last": f"{c.last:%Y-%m-%d}"}
        for c in data.hashprice_carried
    ]


def kpis(data: ReportData) -> list[tuple[str, str]]:
    """The summary: label and value, in the order the PDF and the KPI slide show them."""
    unit, div = hashrate_unit(data)
    cost_label = _("Charges") if data.kind == "client_statement" else _("Power cost")
    out = [
        (_("Miners"), num(data.miners)),
        (_("Nominal hashrate"), f"{num(data.nominal_ths / div, 2)} {unit}"),
        (_("Average hashrate"), f"{num(data.avg_hashrate_ths / div, 2)} {unit}"),
        (_("Hashrate vs nominal"), pct(data.hashrate_pct)),
        (_("Uptime"), pct(data.uptime_pct)),
        (_("Energy"), f"{num(data.energy_kwh / 1000, 1)} MWh"),
        (
            _("Curtailment"),
            _("%(events)s events, %(hours)s h")
            % {"events": num(data.curtailment.events), "hours": num(data.curtailment.hours, 1)},
        ),
        (_("Energy avoided by curtailment"), f"{num(data.curtailment.energy_avoided_kwh / 1000, 1)} MWh"),
        (_("Revenue forgone by curtailment"), money(data.curtailment.revenue_forgone_usd, "USD")),
        (_("Mining revenue (hashprice × hashrate)"), money(data.revenue_usd, "USD")),
        (cost_label, money(data.cost, data.currency)),
    ]
    if data.kind == "site_monthly":
        out.append((_("Power price"), f"{num(data.power_price, 4)} USD/kWh"))
        out.append((_("Revenue less power cost"), money(data.revenue_usd - data.cost, "USD")))
    counts = data.incident_counts
    out.append(
        (
            _("Incidents"),
            _("%(critical)s critical, %(warning)s warnings, %(info)s info")
            % {
                "critical": num(counts.get("critical", 0)),
                "warning": num(counts.get("warning", 0)),
                "info": num(counts.get("info", 0)),
            },
        )
    )
    return out


def invoice_status_label(status: str) -> str:
    from hashinsight.billing.models import InvoiceStatus

    return str(dict(InvoiceStatus.choices).get(status, status))


def invoice_table(data: ReportData) -> Table | None:
    inv = data.invoice
    if inv is None:
        return None
    cur = data.currency
    rows = [
        (_("Invoice"), inv.number),
        (_("Status"), invoice_status_label(inv.status)),
        (_("Issue date"), str(inv.issue_date or "–")),
        (_("Due date"), str(inv.due_date or "–")),
        (_("Charges"), money(inv.subtotal, cur)),
        (_("Credits"), money(-inv.credits, cur)),
        (_("Prior balance"), money(inv.prior_balance, cur)),
        (_("Deposit applied"), money(-inv.deposit_applied, cur)),
        (_("Total due"), money(inv.total, cur)),
        (_("Paid"), money(inv.amount_paid, cur)),
        (_("Balance due"), money(inv.balance_due, cur)),
        (_("SLA uptime"), pct(inv.sla_uptime_pct)),
        (_("Statement SHA-256"), inv.statement_sha256 or "–"),
    ]
    return Table(_("Invoice"), [_("Item"), _("Value")], [list(r) for r in rows], [list(r) for r in rows])


def lines_table(data: ReportData) -> Table | None:
    inv = data.invoice
    if inv is None:
        return None
    header = [
        _("#"),
        _("Description"),
        _("Quantity"),
        _("Unit"),
        _("Unit price"),
        _("Amount (%(currency)s)") % {"currency": data.currency},
    ]
    rows, raw = [], []
    for ln in inv.lines:
        rows.append(
            [str(ln.position), ln.description, num(ln.quantity, 3), ln.unit, num(ln.unit_price, 6), num(ln.amount, 2)]
        )
        raw.append([ln.position, ln.description, float(ln.quantity), ln.unit, float(ln.unit_price), float(ln.amount)])
    return Table(_("Invoice lines"), header, rows, raw)


def daily_table(data: ReportData) -> Table:
    unit, div = hashrate_unit(data)
    cost = _("Charges (%(currency)s)") if data.kind == "client_statement" else _("Power cost (%(currency)s)")
    header = [
        _("Day"),
        _("Miners reporting"),
        _("Hashrate (%(unit)s)") % {"unit": unit},
        _("Nominal (%(unit)s)") % {"unit": unit},
        _("Hashrate vs nominal (%)"),
        _("Uptime (%)"),
        _("Energy (kWh)"),
        _("Curtailed (h)"),
        _("Hashprice (USD/TH/day)"),
        _("Revenue (USD)"),
        cost % {"currency": data.currency},
    ]
    rows, raw = [], []
    for d in data.days:
        rows.append(
            [
                f"{d.day:%Y-%m-%d}",
                num(d.miners_reporting),
                num(d.hashrate_ths / div, 2),
                num(d.nominal_ths / div, 2),
                num(d.hashrate_pct, 1),
                num(d.uptime_pct, 2),
                num(d.energy_kwh, 0),
                num(d.curtailed_h, 2),
                num(d.hashprice_usd, 4),
                num(d.revenue_usd, 2),
                num(d.cost, 2),
            ]
        )
        raw.append(
            [
                d.day,
                d.miners_reporting,
                d.hashrate_ths / div,
                d.nominal_ths / div,
                d.hashrate_pct,
                d.uptime_pct,
                d.energy_kwh,
                d.curtailed_h,
                _float(d.hashprice_usd),
                _float(d.revenue_usd),
                float(d.cost),
            ]
        )
    return Table(_("Daily figures"), header, rows, raw)


def miners_table(data: ReportData) -> Table:
    if data.kind == "client_statement":
        header = [
            _("Serial"),
            _("Model"),
            _("Days"),
            _("Energy (kWh)"),
            _("Uptime (%)"),
            _("Hashrate (TH/s)"),
            _("Curtailed (h)"),
            _("Operator downtime (h)"),
            _("Client downtime (h)"),
            _("Excluded downtime (h)"),
            _("Energy charge (%(currency)s)") % {"currency": data.currency},
        ]
        rows, raw = [], []
        for m in data.miner_rows:
            rows.append(
                [
                    m.serial,
                    m.model,
                    num(m.days),
                    num(m.energy_kwh, 1),
                    num(m.uptime_pct, 2),
                    num(m.hashrate_ths, 2),
                    num(m.curtailed_h, 2),
                    num(m.downtime_operator_h, 2),
                    num(m.downtime_client_h, 2),
                    num(m.downtime_excluded_h, 2),
                    num(m.charge, 2),
                ]
            )
            raw.append(
                [
                    m.serial,
                    m.model,
                    m.days,
                    m.energy_kwh,
                    m.uptime_pct,
                    m.hashrate_ths,
                    m.curtailed_h,
                    m.downtime_operator_h,
                    m.downtime_client_h,
                    m.downtime_excluded_h,
                    _float(m.charge),
                ]
            )
        return Table(_("Miners"), header, rows, raw)
    header = [_("Serial"), _("Model"), _("Days reported"), _("Energy (kWh)"), _("Uptime (%)"), _("Hashrate (TH/s)")]
    rows = [
        [m.serial, m.model, num(m.days), num(m.energy_kwh, 1), num(m.uptime_pct, 2), num(m.hashrate_ths, 2)]
        for m in data.miner_rows
    ]
    raw = [[m.serial, m.model, m.days, m.energy_kwh, m.uptime_pct, m.hashrate_ths] for m in data.miner_rows]
    return Table(_("Miners with the lowest uptime"), header, rows, raw)


def models_table(data: ReportData) -> Table | None:
    if not data.model_rows:
        return None
    unit, div = hashrate_unit(data)
    header = [
        _("Model"),
        _("Miners"),
        _("Nominal (%(unit)s)") % {"unit": unit},
        _("Hashrate (%(unit)s)") % {"unit": unit},
        _("Uptime (%)"),
        _("Energy (kWh)"),
    ]
    rows = [
        [
            m.model,
            num(m.miners),
            num(m.nominal_ths / div, 2),
            num(m.hashrate_ths / div, 2),
            num(m.uptime_pct, 2),
            num(m.energy_kwh, 0),
        ]
        for m in data.model_rows
    ]
    raw = [
        [m.model, m.miners, m.nominal_ths / div, m.hashrate_ths / div, m.uptime_pct, m.energy_kwh]
        for m in data.model_rows
    ]
    return Table(_("Fleet by model"), header, rows, raw)


def incidents_table(data: ReportData) -> Table:
    header = [_("Start (UTC)"), _("Severity"), _("What"), _("Miner"), _("Duration (h)"), _("Details")]
    rows, raw = [], []
    for i in data.incidents:
        what = _("Safety event: %(kind)s") % {"kind": i.kind} if i.source == "safety" else i.kind
        rows.append(
            [
                f"{i.started:%Y-%m-%d %H:%M}",
                severity_label(i.severity),
                what,
                i.miner or "–",
                num(i.duration_h, 1),
                i.message[:160],
            ]
        )
        raw.append([i.started.replace(tzinfo=None), severity_label(i.severity), what, i.miner, i.duration_h, i.message])
    return Table(_("Top incidents"), header, rows, raw)


def no_rows() -> str:
    return _("Nothing to show for this period.")


def chart_titles(data: ReportData) -> dict[str, str]:
    unit, _div = hashrate_unit(data)
    return {
        "hashrate": _("Hashrate vs nominal (%(unit)s)") % {"unit": unit},
        "uptime": _("Uptime (%)"),
        "energy": _("Energy (MWh)"),
        "money": _("Revenue (USD) and charges (%(currency)s)") % {"currency": data.currency}
        if data.kind == "client_statement"
        else _("Revenue and cost (USD)"),
        "actual": _("Hashrate"),
        "nominal": _("Nominal"),
        "revenue": _("Revenue"),
        "cost": _("Charges") if data.kind == "client_statement" else _("Power cost"),
    }


def _float(value) -> float | None:
    return None if value is None else float(value)
