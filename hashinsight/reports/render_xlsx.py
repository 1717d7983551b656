"""The workbook (xlsxwriter, in memory): sheets Summary, Daily (with native line and column charts), Miners and
Incidents; a client statement adds its invoice and lines to Summary. Numbers are written as numbers (a spreadsheet
can sum them), text always as text (``write_string``: a client's serial or an alert message starting with ``=``
never becomes a formula)."""

from __future__ import annotations

import io
from datetime import date, datetime

import xlsxwriter
from django.utils.translation import gettext as _

from hashinsight.reports import content
from hashinsight.reports.data import ReportData
from hashinsight.reports.fonts import MPL_FAMILY


def sheet_names() -> dict[str, str]:
    """The four sheets' names in the active language (at most 31 characters, none of ``[]:*?/\\``)."""
    return {"summary": _("Summary"), "daily": _("Daily"), "miners": _("Miners"), "incidents": _("Incidents")}


def render_xlsx(data: ReportData) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"title": f"{content.title(data)} — {data.subject}", "author": "HashInsight"})
    base = {"font_name": MPL_FAMILY, "font_size": 10}
    fmt = {
        "title": wb.add_format({**base, "bold": True, "font_size": 16}),
        "head": wb.add_format(
            {**base, "bold": True, "bg_color": "#E9ECEF", "border": 1, "text_wrap": True, "valign": "top"}
        ),
        "text": wb.add_format(base),
        "num": wb.add_format({**base, "num_format": "#,##0.00"}),
        "int": wb.add_format({**base, "num_format": "#,##0"}),
        "date": wb.add_format({**base, "num_format": "yyyy-mm-dd"}),
        "datetime": wb.add_format({**base, "num_format": "yyyy-mm-dd hh:mm"}),
    }
    names = sheet_names()

    ws = wb.add_worksheet(names["summary"])
    ws.write_string(0, 0, content.title(data), fmt["title"])
    ws.write_string(1, 0, content.subtitle(data), fmt["text"])
    row = 3
    for label, value in content.kpis(data):
        ws.write_string(row, 0, label, fmt["head"])
        ws.write_string(row, 1, value, fmt["text"])
        row += 1
    for note in content.market_notes(data):
        ws.write_string(row, 0, note, fmt["text"])
        row += 1
    for table in (content.invoice_table(data), content.lines_table(data), content.models_table(data)):
        if table is not None:
            row = _table(ws, row + 1, table, fmt) + 1
    ws.write_string(row + 1, 0, content.footer(data), fmt["text"])
    ws.set_column(0, 0, 38)
    ws.set_column(1, 1, 44)
    ws.set_column(2, 6, 16)

    daily = content.daily_table(data)
    ws = wb.add_worksheet(names["daily"])
    last = _table(ws, 0, daily, fmt, title=False)
    ws.set_column(0, 0, 12)
    ws.set_column(1, len(daily.header) - 1, 14)
    ws.freeze_panes(1, 1)
    if data.days:
        sheet, n = names["daily"], len(data.days)
        titles = content.chart_titles(data)
        line = wb.add_chart({"type": "line"})
        for col, color in ((2, "#0D6EFD"), (3, "#6C757D")):
            line.add_series(
                {
                    "name": [sheet, 0, col],
                    "categories": [sheet, 1, 0, n, 0],
                    "values": [sheet, 1, col, n, col],
                    "line": {"color": color, "dash_type": "dash" if col == 3 else "solid"},
                }
            )
        line.set_title({"name": titles["hashrate"]})
        line.set_y_axis({"min": 0})
        line.set_x_axis({"date_axis": True, "num_format": "mm-dd"})
        line.set_size({"width": 760, "height": 300})
        ws.insert_chart(last + 2, 0, line)
        bars = wb.add_chart({"type": "column"})
        bars.add_series(
            {
                "name": [sheet, 0, 6],
                "categories": [sheet, 1, 0, n, 0],
                "values": [sheet, 1, 6, n, 6],
                "fill": {"color": "#FD7E14"},
            }
        )
        bars.set_title({"name": daily.header[6]})
        bars.set_legend({"none": True})
        bars.set_size({"width": 760, "height": 300})
        ws.insert_chart(last + 18, 0, bars)
        up = wb.add_chart({"type": "column"})
        up.add_series(
            {
                "name": [sheet, 0, 5],
                "categories": [sheet, 1, 0, n, 0],
                "values": [sheet, 1, 5, n, 5],
                "fill": {"color": "#198754"},
            }
        )
        up.set_title({"name": titles["uptime"]})
        up.set_y_axis({"min": 0, "max": 100})
        up.set_legend({"none": True})
        up.set_size({"width": 760, "height": 300})
        ws.insert_chart(last + 34, 0, up)

    miners = content.miners_table(data)
    ws = wb.add_worksheet(names["miners"])
    ws.write_string(0, 0, miners.title, fmt["title"])
    _table(ws, 2, miners, fmt, title=False)
    ws.set_column(0, 1, 22)
    ws.set_column(2, len(miners.header) - 1, 14)
    ws.freeze_panes(3, 1)

    incidents = content.incidents_table(data)
    ws = wb.add_worksheet(names["incidents"])
    ws.write_string(0, 0, incidents.title, fmt["title"])
    _table(ws, 2, incidents, fmt, title=False)
    ws.set_column(0, 0, 17)
    ws.set_column(1, 4, 16)
    ws.set_column(5, 5, 80)
    wb.close()
    return buf.getvalue()


def _table(ws, row: int, table: content.Table, fmt, *, title: bool = True) -> int:
    """Write a table from ``row`` (its title first when asked); returns the last row written."""
    if title:
        ws.write_string(row, 0, table.title, fmt["head"])
        row += 1
    for col, h in enumerate(table.header):
        ws.write_string(row, col, h, fmt["head"])
    for values in table.raw:
        row += 1
        for col, v in enumerate(values):
            _cell(ws, row, col, v, fmt)
    return row


def _cell(ws, row, col, v, fmt) -> None:
    if v is None:
        ws.write_blank(row, col, None)
    elif isinstance(v, bool):
        ws.write_boolean(row, col, v)
    elif isinstance(v, int):
        ws.write_number(row, col, v, fmt["int"])
    elif isinstance(v, float):
        ws.write_number(row, col, v, fmt["num"])
    elif isinstance(v, datetime):
        ws.write_datetime(row, col, v, fmt["datetime"])
    elif isinstance(v, date):
        ws.write_datetime(row, col, datetime(v.year, v.month, v.day), fmt["date"])
    else:
        ws.write_string(row, col, str(v), fmt["text"])
