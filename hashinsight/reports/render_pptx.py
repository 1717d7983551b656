"""The deck (python-pptx, 16:9, the default template): a title slide, the key figures, the invoice (client
statement), one slide per chart (the same PNGs as the PDF) and the top incidents. Text runs name the reports' CJK
font as their East Asian and Latin face, so PowerPoint and LibreOffice pick it when it is installed and fall back to
their own CJK font otherwise (slides carry text, not glyphs)."""

from __future__ import annotations

import io

from pptx import Presentation
from pptx.util import Emu, Inches, Pt

from hashinsight.reports import content
from hashinsight.reports.data import ReportData
from hashinsight.reports.fonts import MPL_FAMILY

INCIDENT_ROWS = 10
WIDE, HIGH = Inches(13.333), Inches(7.5)
LAYOUT_TITLE, LAYOUT_TITLE_ONLY = 0, 5


def render_pptx(data: ReportData, charts: dict[str, bytes]) -> bytes:
    prs = Presentation()
    prs.slide_width, prs.slide_height = WIDE, HIGH

    slide = prs.slides.add_slide(prs.slide_layouts[LAYOUT_TITLE])
    slide.shapes.title.text = content.title(data)
    slide.placeholders[1].text = "\n".join([content.subtitle(data), *content.market_notes(data), content.footer(data)])
    _font_all(slide)

    _table_slide(prs, _kpi_title(), [_kv_header(), *[[k, v] for k, v in content.kpis(data)]], [0.45, 0.55], 12)
    invoice = content.lines_table(data)
    if invoice is not None:
        _table_slide(prs, invoice.title, [invoice.header, *invoice.rows], [0.05, 0.45, 0.12, 0.08, 0.12, 0.18], 11)
    titles = content.chart_titles(data)
    for key in ("hashrate", "uptime", "energy", "money"):
        if key in charts:
            slide = prs.slides.add_slide(prs.slide_layouts[LAYOUT_TITLE_ONLY])
            slide.shapes.title.text = titles[key]
            width = WIDE - Inches(1)
            height = Emu(int(width * 2.8 / 7.2))
            slide.shapes.add_picture(io.BytesIO(charts[key]), Inches(0.5), Inches(1.6), width=width, height=height)
            _font_all(slide)
    incidents = content.incidents_table(data)
    rows = incidents.rows[:INCIDENT_ROWS] or [[content.no_rows(), "", "", "", "", ""]]
    _table_slide(
        prs,
        incidents.title,
        [incidents.header, *[[*r[:5], r[5][:80]] for r in rows]],
        [0.14, 0.1, 0.2, 0.14, 0.1, 0.32],
        10,
    )
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def _kpi_title() -> str:
    from django.utils.translation import gettext as _

    return _("Key figures")


def _kv_header() -> list[str]:
    from django.utils.translation import gettext as _

    return [_("Item"), _("Value")]


def _table_slide(prs, title: str, rows: list[list[str]], widths: list[float], size: int) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[LAYOUT_TITLE_ONLY])
    slide.shapes.title.text = title
    width = WIDE - Inches(1)
    n_rows, n_cols = len(rows), len(rows[0])
    shape = slide.shapes.add_table(n_rows, n_cols, Inches(0.5), Inches(1.5), width, Inches(0.3) * n_rows)
    table = shape.table
    for c, w in enumerate(widths):
        table.columns[c].width = Emu(int(width * w))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            cell = table.cell(r, c)
            cell.text = str(value)
            for p in cell.text_frame.paragraphs:
                for run in p.runs:
                    run.font.size = Pt(size)
    _font_all(slide)


def _font_all(slide) -> None:
    """Name the CJK font on every run (Latin and East Asian), so Chinese never falls to a Latin-only face."""
    for shape in slide.shapes:
        frames = []
        if shape.has_text_frame:
            frames.append(shape.text_frame)
        if getattr(shape, "has_table", False) and shape.has_table:
            frames += [cell.text_frame for row in shape.table.rows for cell in row.cells]
        for frame in frames:
            for p in frame.paragraphs:
                for run in p.runs:
                    run.font.name = MPL_FAMILY
                    rpr = run._r.get_or_add_rPr()
                    ea = rpr.find("{http://schemas.openxmlformats.org/drawingml/2006/main}ea")
                    if ea is None:
                        ea = rpr.makeelement("{http://schemas.openxmlformats.org/drawingml/2006/main}ea", {})
                        rpr.append(ea)
                    ea.set("typeface", MPL_FAMILY)
