"""The report's charts as PNG images (matplotlib, Agg, no pyplot: nothing global, safe in a worker's threads): daily
hashrate against nominal, uptime, energy, and revenue against cost. Text in the reports' CJK font
(``hashinsight.reports.fonts``), so the Chinese titles draw."""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.figure import Figure

from hashinsight.reports import content
from hashinsight.reports.data import ReportData
from hashinsight.reports.fonts import mpl_family

BLUE, GREY, GREEN, ORANGE = "#0d6efd", "#6c757d", "#198754", "#fd7e14"
SIZE = (7.2, 2.8)  # inches; 150 dpi: sharp in a PDF page's width and on a slide
DPI = 150


def render_charts(data: ReportData) -> dict[str, bytes]:
    """PNG bytes per chart key (``hashrate``, ``uptime``, ``energy``, ``money``); empty when there are no days."""
    if not data.days:
        return {}
    titles = content.chart_titles(data)
    _unit, div = content.hashrate_unit(data)
    x = [d.day for d in data.days]
    out = {}
    with rc_context({"font.family": mpl_family(), "axes.unicode_minus": False, "font.size": 9}):
        fig, ax = _figure(titles["hashrate"])
        ax.plot(
            x, [d.hashrate_ths / div for d in data.days], color=BLUE, marker="o", markersize=3, label=titles["actual"]
        )
        ax.plot(x, [d.nominal_ths / div for d in data.days], color=GREY, linestyle="--", label=titles["nominal"])
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")
        out["hashrate"] = _png(fig)

        fig, ax = _figure(titles["uptime"])
        ax.bar(x, [d.uptime_pct or 0 for d in data.days], color=GREEN)
        ax.set_ylim(0, 100)
        out["uptime"] = _png(fig)

        fig, ax = _figure(titles["energy"])
        ax.bar(x, [d.energy_kwh / 1000 for d in data.days], color=ORANGE)
        out["energy"] = _png(fig)

        fig, ax = _figure(titles["money"])
        ax.plot(x, [float(d.revenue_usd or 0) for d in data.days], color=BLUE, label=titles["revenue"])
        ax.plot(x, [float(d.cost) for d in data.days], color=ORANGE, label=titles["cost"])
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")
        out["money"] = _png(fig)
    return out


def _figure(title: str):
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.autofmt_xdate(rotation=0, ha="center")
    ax.xaxis.set_major_formatter(_day_formatter())
    return fig, ax


def _day_formatter():
    from matplotlib.dates import DateFormatter

    return DateFormatter("%m-%d")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
