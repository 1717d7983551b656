"""Statement exports: the reconciliation statement of one invoice (one row per miner per day) as CSV and as XLSX.

- **CSV** is the verifiable file: it is the invoicing part's canonical statement
  (``hashinsight.billing.statements.iter_statement_csv``), byte for byte what ``Invoice.statement_sha256`` seals
  and what the inclusion proof covers. This module only sends it; it never writes a second CSV format.
- **XLSX** is for people: a header block (client, contract, site, invoice, period, currency, totals), a frozen
  row of column titles with their units, dates as dates and numbers as numbers with fixed formats. It is not
  hashed; the SHA-256 of the canonical CSV is quoted in its header.

Speed (the issue's figure: a 10,000-miner client's month, 310,000 rows, in < 10 s; ``bench/statement_export.py``):
rows are read with ``values_list`` ordered by (day, serial) through a database cursor in chunks (no model objects)
and written as they come. xlsxwriter writes the workbook (styles, header block, column titles and widths, frozen
pane); its per-cell API costs ~9 µs a cell (28 s for these 4.3 million cells on the bench box), so the data rows
are not written through it: they are formatted here, one string per row, and spliced into the sheet xlsxwriter
produced, with the cell styles xlsxwriter assigned to the columns. The result is an ordinary workbook (openpyxl,
Excel and LibreOffice read it); memory stays flat (the rows stream into the zip entry)."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import xlsxwriter
from django.db.models import Count, Sum, TextField
from django.db.models.functions import Cast
from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from hashinsight.billing import selectors
from hashinsight.billing.models import Invoice
from hashinsight.billing.money import round_money
from hashinsight.billing.statements import iter_statement_csv
from hashinsight.core import signed_links
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import _streaming_read, streamed_csv

LINK_PURPOSE = "billing.statement"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK_ROWS = 5000  # rows per database fetch and per write into the zip entry
SHEET = "xl/worksheets/sheet1.xml"
HEADER_VALUE_COL = 3  # the header block: labels in column A, values in D
EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug already folded in)
# Characters XML 1.0 cannot carry (they would make the file unreadable) are dropped; &, < and > are escaped.
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: None for c in range(32) if c not in (9, 10)}})
_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')


@dataclass(frozen=True)
class XlsxColumn:
    """A data column: its title (with the unit), the ``values_list`` field, the cell kind and number format."""

    title: str
    field: str
    kind: str  # "date", "number", "text", "ids", "bool"
    num_format: str | None
    width: float


FIELDS = [
    "day", "serial", "miner_id", "energy_kwh", "uptime_pct", "avg_hashrate_ths", "downtime_operator_h",
    "downtime_client_h", "downtime_excluded_h", "curtailed_h", "downtime_reasons", "energy_amount", "command_ids",
    "reported",
]  # fmt: skip


def xlsx_columns(currency: str) -> list[XlsxColumn]:
    """The statement's columns in the XLSX, titles translated in the active language."""
    return [
        XlsxColumn(_("Day"), "day", "date", "yyyy-mm-dd", 11),
        XlsxColumn(_("Serial"), "serial", "text", None, 16),
        XlsxColumn(_("Miner id"), "miner_id", "number", "0", 9),
        XlsxColumn(_("Energy (kWh)"), "energy_kwh", "number", "#,##0.000", 13),
        XlsxColumn(_("Uptime (%)"), "uptime_pct", "number", "0.000", 11),
        XlsxColumn(_("Average hashrate (TH/s)"), "avg_hashrate_ths", "number", "#,##0.000", 13),
        XlsxColumn(_("Operator downtime (h)"), "downtime_operator_h", "number", "0.000", 12),
        XlsxColumn(_("Client downtime (h)"), "downtime_client_h", "number", "0.000", 12),
        XlsxColumn(_("Excluded downtime (h)"), "downtime_excluded_h", "number", "0.000", 12),
        XlsxColumn(_("Curtailed at operator's request (h)"), "curtailed_h", "number", "0.000", 14),
        XlsxColumn(_("Downtime reasons"), "downtime_reasons", "text", None, 22),
        XlsxColumn(
            _("Energy charge (%(currency)s, before rounding)") % {"currency": currency},
            "energy_amount",
            "number",
            "#,##0.000000",
            16,
        ),
        XlsxColumn(_("Commands"), "command_ids", "ids", None, 14),
        XlsxColumn(_("Telemetry reported"), "reported", "bool", None, 10),
    ]


def statement_summary(invoice: Invoice) -> dict:
    """The statement's totals in one query: rows, miners, days, energy, downtime, curtailment, energy charge."""
    totals = selectors.statement_rows(invoice=invoice).aggregate(
        rows=Count("day"),
        energy_kwh=Sum("energy_kwh"),
        downtime_operator_h=Sum("downtime_operator_h"),
        downtime_client_h=Sum("downtime_client_h"),
        downtime_excluded_h=Sum("downtime_excluded_h"),
        curtailed_h=Sum("curtailed_h"),
        energy_amount=Sum("energy_amount"),
    )
    zero = Decimal("0")
    return {key: (zero if value is None else value) for key, value in totals.items()}


def export_name(invoice: Invoice) -> str:
    return f"statement-{invoice.number or f'draft-{invoice.pk}'}"


# ---------------------------------------------------------------------------------------------------------------
# Expiring e-mail links (``hashinsight.core.signed_links``): ``?t=<token>`` on a statement download


def statement_link_token(invoice: Invoice, *, user_id: int, ttl: timedelta = signed_links.DEFAULT_TTL) -> str:
    """A token for an e-mailed link to ``invoice``'s statement, for the user ``user_id`` only, valid for ``ttl``.
    It carries the statement's SHA-256 prefix: a link to a draft stops working once the draft is rebuilt."""
    return signed_links.make_token(
        purpose=LINK_PURPOSE, object_id=invoice.pk, user_id=user_id, ttl=ttl, check=invoice.statement_sha256[:16]
    )


def statement_link_path(invoice: Invoice, *, user_id: int, fmt: str = "csv") -> str:
    """The portal path of an expiring statement link (``fmt``: csv or xlsx); prefix it with the portal's origin."""
    name = "portal:invoice-statement-xlsx" if fmt == "xlsx" else "portal:invoice-statement-csv"
    return reverse(name, args=[invoice.pk]) + "?" + urlencode({"t": statement_link_token(invoice, user_id=user_id)})


def check_statement_link(token: str, *, invoice: Invoice, user) -> None:
    """Accept ``token`` for ``invoice`` (already looked up for ``user`` through the selectors, so a user who no longer
    sees it never gets here) only if it was made for this invoice and this signed-in user; else a ``DomainError``:
    expired 403 (saying when), anything else 404."""
    link = signed_links.verify_token(token, purpose=LINK_PURPOSE)
    if (
        link.object_id != invoice.pk
        or link.user_id is None
        or link.user_id != getattr(user, "pk", None)
        or link.check != invoice.statement_sha256[:16]
    ):
        raise DomainError("link_invalid", _("This link is not valid for this statement or this account."), status=404)


# ---------------------------------------------------------------------------------------------------------------
# CSV: the canonical file, sent as it is


def statement_csv_response(request, invoice: Invoice):
    """The canonical statement CSV (``iter_statement_csv``), streamed."""
    return streamed_csv(request, _csv_chunks(invoice), export_name(invoice))


def _csv_chunks(invoice: Invoice) -> Iterator[bytes]:
    # One snapshot, streamed from the plan on PostgreSQL (see ``tables._streaming_read``).
    with _streaming_read(Invoice.objects.db):
        yield from iter_statement_csv(invoice)


# ---------------------------------------------------------------------------------------------------------------
# XLSX


def statement_xlsx_response(invoice: Invoice) -> FileResponse:
    """The XLSX statement, written to an anonymous temporary file (gone when the response closes it) and sent."""
    fh = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it, which deletes it
    try:
        write_statement_xlsx(invoice, fh)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    response = FileResponse(fh, as_attachment=True, filename=f"{export_name(invoice)}.xlsx")
    response["Content-Type"] = XLSX_CONTENT_TYPE
    response["Cache-Control"] = "no-store"
    return response


def _header_rows(invoice: Invoice, summary: dict) -> list[tuple[str, object, str]]:
    """(label, value, kind) of the header block; kind picks the cell format."""
    cur = invoice.currency
    period = f"{invoice.period_start:%Y-%m-%d} – {invoice.period_end:%Y-%m-%d}"
    return [
        (_("Hosting client"), invoice.customer.company, "text"),
        (_("Contract"), invoice.contract.number, "text"),
        (_("Site"), invoice.site.name, "text"),
        (_("Invoice"), invoice.number or _("Draft"), "text"),
        (_("Status"), invoice.get_status_display(), "text"),
        (_("Period"), period, "text"),
        (_("Currency"), cur, "text"),
        (_("Miners"), invoice.miner_count, "int"),
        (_("Statement rows (miner-days)"), summary["rows"], "int"),
        (_("Energy (kWh)"), summary["energy_kwh"], "kwh"),
        (_("Operator downtime (h)"), summary["downtime_operator_h"], "h"),
        (_("Client downtime (h)"), summary["downtime_client_h"], "h"),
        (_("Excluded downtime (h)"), summary["downtime_excluded_h"], "h"),
        (_("Curtailed at operator's request (h)"), summary["curtailed_h"], "h"),
        (_("Energy charge (%(currency)s)") % {"currency": cur}, round_money(summary["energy_amount"]), "money"),
        (_("Charges (%(currency)s)") % {"currency": cur}, invoice.subtotal, "money"),
        (_("Credits (%(currency)s)") % {"currency": cur}, invoice.credits, "money"),
        (_("Total due (%(currency)s)") % {"currency": cur}, invoice.total, "money"),
        (_("Statement SHA-256 (canonical CSV)"), invoice.statement_sha256 or "—", "text"),
        (_("Generated (UTC)"), timezone.now().strftime("%Y-%m-%d %H:%M:%S"), "text"),
    ]


def _template(invoice: Invoice, columns: list[XlsxColumn], summary: dict) -> tuple[bytes, int, list[int]]:
    """The workbook xlsxwriter writes without the data rows: (its bytes, the title row's 0-based index, the style
    index of each data column)."""
    out = io.BytesIO()
    wb = xlsxwriter.Workbook(out, {"constant_memory": True})
    ws = wb.add_worksheet(_("Statement")[:31])
    bold = wb.add_format({"bold": True})
    title_fmt = wb.add_format({"bold": True, "font_size": 14})
    head_fmt = wb.add_format({"bold": True, "text_wrap": True, "valign": "top", "bottom": 1, "bg_color": "#F2F2F2"})
    header_formats = {
        "text": None,
        "int": wb.add_format({"num_format": "#,##0", "align": "left"}),
        "kwh": wb.add_format({"num_format": "#,##0.000", "align": "left"}),
        "h": wb.add_format({"num_format": "#,##0.000", "align": "left"}),
        "money": wb.add_format({"num_format": "#,##0.00", "align": "left"}),
    }
    column_formats = [wb.add_format({"num_format": c.num_format}) if c.num_format else None for c in columns]
    # A column's default format is what its data cells use; set_column registers it with the workbook.
    for i, (column, fmt) in enumerate(zip(columns, column_formats, strict=True)):
        ws.set_column(i, i, column.width, fmt)
    ws.write_string(0, 0, _("Reconciliation statement"), title_fmt)
    row = 2
    for label, value, kind in _header_rows(invoice, summary):
        # The label runs over the empty columns B and C; the value stands in D.
        ws.write_string(row, 0, str(label), bold)
        if kind == "text":
            ws.write_string(row, HEADER_VALUE_COL, str(value))
        else:  # display only (two or three places); the canonical CSV holds every digit
            ws.write_number(row, HEADER_VALUE_COL, float(value), header_formats[kind])
        row += 1
    title_row = row + 1
    ws.set_row(title_row, 45)
    for i, column in enumerate(columns):
        ws.write_string(title_row, i, str(column.title), head_fmt)
    ws.freeze_panes(title_row + 1, 0)
    wb.close()
    styles = [fmt.xf_index if fmt is not None else 0 for fmt in column_formats]
    return out.getvalue(), title_row, styles


def _col_letter(i: int) -> str:
    return xlsxwriter.utility.xl_col_to_name(i)


def _row_formatter(columns: list[XlsxColumn], styles: list[int]):
    """A function turning one ``values_list`` row (the columns of ``xlsx_columns``, in that order) and its 1-based
    sheet row number into the row's XML. Written out for this one layout: one ``%`` per row, the optional cells (no
    hashrate, no reason, no command) left out, a few µs a row instead of a call per cell."""
    assert [c.field for c in columns] == FIELDS, "the row template below follows xlsx_columns"
    col = [_col_letter(i) for i in range(len(columns))]
    st = [f' s="{style}"' if style else "" for style in styles]

    def fixed(i: int, t: str = "") -> str:  # consumes (row number, value)
        return f'<c r="{col[i]}%s"{st[i]}{t}><v>%s</v></c>'

    def text(i: int) -> str:  # consumes (row number, escaped text)
        return f'<c r="{col[i]}%s"{st[i]} t="inlineStr"><is><t>%s</t></is></c>'

    # %-formatting: str.format spends four times as long on Decimals (their __format__).
    template = (
        '<row r="%s">' + fixed(0) + text(1) + fixed(2) + fixed(3) + fixed(4)
        + "%s"  # average hashrate: absent without telemetry
        + fixed(6) + fixed(7) + fixed(8) + fixed(9)
        + "%s"  # downtime reasons
        + fixed(11)
        + "%s"  # commands
        + fixed(13, ' t="b"')
        + "</row>"
    )  # fmt: skip
    ths_cell, reasons_cell, commands_cell = fixed(5), text(10), text(12)
    day_serials: dict[date, int] = {}

    def row_xml(values, r: int) -> str:
        day, serial, miner_id, kwh, up, ths, d_op, d_cl, d_ex, curt, reasons, amount, commands, reported = values
        excel_day = day_serials.get(day)
        if excel_day is None:
            excel_day = day_serials[day] = (day - EXCEL_EPOCH).days
        return template % (
            r, r, excel_day, r, serial.translate(_XML_TEXT), r, miner_id, r, kwh, r, up,
            "" if ths is None else ths_cell % (r, ths),
            r, d_op, r, d_cl, r, d_ex, r, curt,
            reasons_cell % (r, reasons.translate(_XML_TEXT)) if reasons else "",
            r, amount,
            commands_cell % (r, _command_text(commands)) if commands and commands != "[]" else "",
            r, 1 if reported else 0,
        )  # fmt: skip

    return row_xml


def _command_text(ids_json: str) -> str:
    """``[12, 13]`` (the column read as text: no JSON decoding per row) → ``#12 #13``; ids are integers."""
    return " ".join(f"#{int(part)}" for part in ids_json.strip("[] ").split(",") if part.strip())


def write_statement_xlsx(invoice: Invoice, out) -> int:
    """Write the XLSX statement of ``invoice`` to the binary, seekable file ``out``; return the rows written."""
    columns = xlsx_columns(invoice.currency)
    summary = statement_summary(invoice)
    template, title_row, styles = _template(invoice, columns, summary)
    row_xml = _row_formatter(columns, styles)
    first = title_row + 2  # 1-based number of the first data row
    last = max(first - 1 + summary["rows"], title_row + 1)
    written = 0
    with (
        zipfile.ZipFile(io.BytesIO(template)) as src,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as dst,
    ):
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename != SHEET:
                dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                continue
            sheet = data.decode()
            head, tail = sheet.split("</sheetData>", 1)
            dimension = f'<dimension ref="A1:{_col_letter(len(columns) - 1)}{last}"/>'
            head = _DIMENSION.sub(dimension, head, count=1)
            with dst.open(SHEET, "w", force_zip64=True) as w:
                w.write(head.encode())
                # The command ids are read as text: decoding 310,000 JSON lists cost more than a second.
                qs = (
                    selectors.statement_rows(invoice=invoice)
                    .annotate(commands_text=Cast("command_ids", TextField()))
                    .values_list(*[c.field if c.kind != "ids" else "commands_text" for c in columns])
                )
                with _streaming_read(qs.db):
                    parts: list[str] = []
                    for r, values in enumerate(qs.iterator(chunk_size=CHUNK_ROWS), start=first):
                        parts.append(row_xml(values, r))
                        if len(parts) >= CHUNK_ROWS:
                            w.write("".join(parts).encode())
                            written += len(parts)
                            parts = []
                    if parts:
                        w.write("".join(parts).encode())
                        written += len(parts)
                w.write(("</sheetData>" + tail).encode())
    return written
