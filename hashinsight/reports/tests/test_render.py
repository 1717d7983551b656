"""Each format opens and says what it should: the PDF (``%PDF``, the site's name, the CJK font embedded, Chinese text
in zh-hans), the workbook (openpyxl: the four sheets, a chart, numbers as numbers, no formula from text) and the deck
(python-pptx: its slides, Chinese in zh-hans)."""

from __future__ import annotations

import base64
import io
import re
import zlib

import openpyxl
import pytest
from django.utils import translation
from pptx import Presentation

from hashinsight.reports import data
from hashinsight.reports.charts import render_charts
from hashinsight.reports.render_pdf import render_pdf
from hashinsight.reports.render_pptx import render_pptx
from hashinsight.reports.render_xlsx import render_xlsx, sheet_names
from hashinsight.reports.tests import factories_reports as fx

pytestmark = pytest.mark.django_db
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def site_data(farm):
    fx.market_month()
    fx.site_month(farm)
    farm.site_a.name = "深圳一号 Site A"
    farm.site_a.save()
    return data.site_month(site=farm.site_a, month=fx.MONTH)


def pdf_streams(pdf: bytes):
    """The PDF's streams, decoded (reportlab writes them ASCII85 over Flate)."""
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        raw = m.group(1).strip()
        if raw.endswith(b"~>"):
            raw = base64.a85decode(raw[:-2].replace(b"\n", b""))
        try:
            yield zlib.decompress(raw)
        except zlib.error:
            yield raw


def pdf_chars(pdf: bytes) -> str:
    """Every character the embedded font subset draws (its ToUnicode map): what the pages show, as text."""
    out = []
    for s in pdf_streams(pdf):
        for code in re.findall(rb"<[0-9A-F]{2}> <([0-9A-F]{4})>", s):
            out.append(chr(int(code, 16)))
    return "".join(out)


def pdf_title(pdf: bytes) -> str:
    """The document's /Title (a PDF string: octal escapes, UTF-16 with a byte-order mark)."""
    raw = re.search(rb"/Title \((.*?)(?<!\\)\)", pdf, re.S).group(1)
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw)
    raw = re.sub(rb"\\([()\\])", rb"\1", raw)
    return raw[2:].decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("latin-1")


def test_pdf_opens_names_the_site_and_embeds_the_cjk_font(site_data):
    with translation.override("en"):
        pdf = render_pdf(site_data, render_charts(site_data))
    assert pdf.startswith(b"%PDF-")
    assert b"WenQuanYiMicroHei" in pdf  # the subset is embedded: no viewer-side substitution
    assert pdf_title(pdf) == "Monthly site report — 深圳一号 Site A"
    assert set("深圳一号") <= set(pdf_chars(pdf))  # the site's name is drawn with the embedded glyphs
    assert b"/Subtype /Image" in pdf  # the charts
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 3


def test_pdf_in_chinese_uses_the_catalogue(site_data):
    with translation.override("zh-hans"):
        pdf = render_pdf(site_data, render_charts(site_data))
    assert pdf_title(pdf).startswith("矿场月度报告")
    drawn = pdf_chars(pdf)
    assert set("矿场月度报告概要在线率限电") <= set(drawn)  # the page text is Chinese, from the catalogue
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000


def test_xlsx_has_the_sheets_a_chart_and_numbers(site_data):
    with translation.override("en"):
        body = render_xlsx(site_data)
        names = sheet_names()
    wb = openpyxl.load_workbook(io.BytesIO(body))
    assert wb.sheetnames == ["Summary", "Daily", "Miners", "Incidents"] == list(names.values())
    daily = wb["Daily"]
    assert len(daily._charts) == 3
    assert daily.cell(1, 1).value == "Day"
    assert daily.cell(2, 3).value == pytest.approx(540.0)  # hashrate TH/s (a small fleet: TH/s, not PH/s)
    assert daily.max_row == 31
    summary = [c.value for c in wb["Summary"]["A"] if c.value]
    assert "Monthly site report" in summary and "Uptime" in summary
    incidents = wb["Incidents"]
    assert incidents.cell(4, 2).value == "Critical"


def test_xlsx_never_turns_text_into_a_formula(farm):
    fx.site_month(farm)
    from telemetry.models import Alert

    Alert.objects.update(message='=HYPERLINK("http://evil")')
    d = data.site_month(site=farm.site_a, month=fx.MONTH)
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(d)))
    cell = wb["Incidents"].cell(4, 6)
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"


def test_xlsx_in_chinese(site_data):
    with translation.override("zh-hans"):
        wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(site_data)))
    assert all(CJK.search(n) for n in wb.sheetnames)
    assert wb.worksheets[0].cell(1, 1).value == "矿场月度报告"


def test_pptx_has_its_slides(site_data):
    charts = render_charts(site_data)
    with translation.override("en"):
        prs = Presentation(io.BytesIO(render_pptx(site_data, charts)))
    titles = [s.shapes.title.text for s in prs.slides]
    assert titles[0] == "Monthly site report"
    assert titles[1] == "Key figures"
    assert "Top incidents" in titles[-1]
    assert len(prs.slides) == 2 + len(charts) + 1
    pictures = [sh for s in prs.slides for sh in s.shapes if sh.shape_type == 13]
    assert len(pictures) == len(charts) == 4


def test_pptx_in_chinese(site_data):
    with translation.override("zh-hans"):
        prs = Presentation(io.BytesIO(render_pptx(site_data, render_charts(site_data))))
    text = " ".join(sh.text_frame.text for s in prs.slides for sh in s.shapes if sh.has_text_frame)
    assert "矿场月度报告" in text and "关键指标" in text


def test_client_statement_formats(farm):
    fx.site_month(farm)
    d = data.client_statement(invoice=fx.issued_invoice(farm))
    charts = render_charts(d)
    with translation.override("zh-hans"):
        pdf = render_pdf(d, charts)
        wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(d)))
        prs = Presentation(io.BytesIO(render_pptx(d, charts)))
    assert pdf.startswith(b"%PDF-") and pdf_title(pdf).startswith("客户对账单")
    summary = [c.value for row in wb.worksheets[0].iter_rows() for c in row if c.value]
    assert "INV-2026-09-0001" in summary and "Energy, metered" in summary
    assert wb.worksheets[2].cell(4, 1).value == farm.miners[("site-a", "client-x")].serial
    assert any(s.shapes.title.text == "发票明细" for s in prs.slides)


def test_an_empty_month_still_renders(farm):
    d = data.site_month(site=farm.site_b, month=fx.MONTH)
    assert d.days == [] and render_charts(d) == {}
    assert render_pdf(d, {}).startswith(b"%PDF-")
    assert openpyxl.load_workbook(io.BytesIO(render_xlsx(d))).sheetnames
    assert len(Presentation(io.BytesIO(render_pptx(d, {}))).slides) == 3


def test_every_format_names_the_day_of_a_carried_forward_hashprice(farm):
    """The market data end on the 20th: the PDF, the workbook and the deck say the hashprice of the 21st to the 30th
    is the 20th's, in English and in Chinese."""
    from intelligence.models import MarketDay

    fx.market_month()
    MarketDay.objects.filter(date__gt=fx.day(19)).delete()
    fx.site_month(farm)
    d = data.site_month(site=farm.site_a, month=fx.MONTH)
    english = "Hashprice as of 2026-09-20, used for 2026-09-21 – 2026-09-30 (no later market data)."
    chinese = "算力价格截至 2026-09-20，沿用于 2026-09-21 – 2026-09-30（此后无市场数据）。"
    for language, note in (("en", english), ("zh-hans", chinese)):
        with translation.override(language):
            wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(d)))
            prs = Presentation(io.BytesIO(render_pptx(d, {})))
            pdf = render_pdf(d, {})
        assert note in [c.value for c in wb.worksheets[0]["A"]], language
        assert note in prs.slides[0].placeholders[1].text_frame.text, language
        if language == "zh-hans":
            assert set("截至沿用此后无市场数据") <= set(pdf_chars(pdf))
