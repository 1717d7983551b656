"""The PDF (reportlab platypus, A4): title, summary, invoice (client statement), charts, daily figures, fleet by
model or per-miner table, top incidents. All text in the reports' CJK font (embedded as a subset), so 中文 shows in
any viewer; long Chinese text wraps per character (``wordWrap="CJK"``)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils.translation import get_language
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from hashinsight.reports import content
from hashinsight.reports.data import ReportData
from hashinsight.reports.fonts import pdf_font

HEAD_BG = colors.HexColor("#e9ecef")
GRID = colors.HexColor("#adb5bd")
MINER_ROWS_PDF = 200  # a client's per-miner table is in full in the workbook; the PDF shows the first 200


def render_pdf(data: ReportData, charts: dict[str, bytes]) -> bytes:
    font = pdf_font()
    cjk = (get_language() or "").startswith("zh")
    st = _styles(font, cjk)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{content.title(data)} — {data.subject}",
        author="HashInsight",
        subject=content.subtitle(data),
    )
    width = doc.width
    story = [
        Paragraph(escape(content.title(data)), st["title"]),
        Paragraph(escape(content.subtitle(data)), st["sub"]),
        Spacer(1, 4 * mm),
        Paragraph(escape(_summary_heading()), st["h2"]),
        _kv_table(content.kpis(data), st, width),
    ]
    notes = [Paragraph(escape(note), st["sub"]) for note in content.market_notes(data)]
    if notes:
        story += [Spacer(1, 2 * mm), *notes]
    invoice = content.invoice_table(data)
    if invoice is not None:
        story += [Spacer(1, 4 * mm), Paragraph(escape(invoice.title), st["h2"]), _kv_table(invoice.rows, st, width)]
        lines = content.lines_table(data)
        story += [
            Spacer(1, 4 * mm),
            Paragraph(escape(lines.title), st["h2"]),
            _table(lines, st, width, widths=[0.05, 0.45, 0.12, 0.1, 0.12, 0.16], numeric_from=2),
        ]
    if charts:  # two charts a page, the first pair under the summary when they fit
        for key in ("hashrate", "uptime", "energy", "money"):
            if key in charts:
                img = Image(io.BytesIO(charts[key]), width=width, height=width * 2.8 / 7.2)
                story += [Spacer(1, 3 * mm), img]
    daily = content.daily_table(data)
    story += [PageBreak(), Paragraph(escape(daily.title), st["h2"]), *notes, _table(daily, st, width, small=True)]
    models = content.models_table(data)
    if models is not None:
        story += [
            Spacer(1, 4 * mm),
            Paragraph(escape(models.title), st["h2"]),
            _table(models, st, width, widths=[0.3, 0.1, 0.15, 0.15, 0.12, 0.18]),
        ]
    miners = content.miners_table(data)
    miners.rows = miners.rows[:MINER_ROWS_PDF]
    widths = [0.16, 0.3, 0.1, 0.14, 0.14, 0.16] if data.kind == "site_monthly" else None
    story += [
        Spacer(1, 4 * mm),
        Paragraph(escape(miners.title), st["h2"]),
        _table(miners, st, width, small=True, widths=widths, numeric_from=2),
    ]
    incidents = content.incidents_table(data)
    story += [
        Spacer(1, 4 * mm),
        KeepTogether(
            [
                Paragraph(escape(incidents.title), st["h2"]),
                _table(incidents, st, width, small=True, widths=[0.15, 0.1, 0.2, 0.14, 0.09, 0.32], numeric_cols=(4,)),
            ]
        ),
    ]
    footer = content.footer(data)

    def on_page(canvas, doc_):
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#6c757d"))
        canvas.drawString(doc_.leftMargin, 9 * mm, footer)
        canvas.drawRightString(doc_.leftMargin + doc_.width, 9 * mm, str(doc_.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


def _summary_heading() -> str:
    from django.utils.translation import gettext as _

    return _("Summary")


def _styles(font: str, cjk: bool) -> dict[str, ParagraphStyle]:
    wrap = "CJK" if cjk else None
    return {
        "title": ParagraphStyle("t", fontName=font, fontSize=20, leading=26, spaceAfter=2, wordWrap=wrap),
        "sub": ParagraphStyle(
            "s", fontName=font, fontSize=11, leading=15, textColor=colors.HexColor("#495057"), wordWrap=wrap
        ),
        "h2": ParagraphStyle("h", fontName=font, fontSize=13, leading=17, spaceBefore=2, spaceAfter=4, wordWrap=wrap),
        "cell": ParagraphStyle("c", fontName=font, fontSize=8, leading=10, wordWrap="CJK"),
        "small": ParagraphStyle("x", fontName=font, fontSize=6.5, leading=8, wordWrap="CJK"),
        "num": ParagraphStyle("n", fontName=font, fontSize=8, leading=10, alignment=2),
        "smallnum": ParagraphStyle("y", fontName=font, fontSize=6.5, leading=8, alignment=2),
    }


def _kv_table(rows, st, width) -> Table:
    data = [[Paragraph(escape(str(k)), st["cell"]), Paragraph(escape(str(v)), st["cell"])] for k, v in rows]
    t = Table(data, colWidths=[width * 0.42, width * 0.58])
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, GRID),
                ("BACKGROUND", (0, 0), (0, -1), HEAD_BG),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return t


def _table(table: content.Table, st, width, *, small=False, widths=None, numeric_from=1, numeric_cols=None) -> Table:
    text, num = (st["small"], st["smallnum"]) if small else (st["cell"], st["num"])
    cols = len(table.header)
    numeric = set(numeric_cols) if numeric_cols is not None else set(range(numeric_from, cols))
    data = [[Paragraph(escape(h), text) for h in table.header]]
    for row in table.rows or [[content.no_rows()] + [""] * (cols - 1)]:
        data.append([Paragraph(escape(str(v)), num if i in numeric else text) for i, v in enumerate(row)])
    col_widths = [width * w for w in widths] if widths else [width / cols] * cols
    t = Table(data, colWidths=col_widths, repeatRows=1)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    if not table.rows:
        style.append(("SPAN", (0, 1), (-1, 1)))
    t.setStyle(TableStyle(style))
    return t
