"""The CJK font of the reports: WenQuanYi Micro Hei (static/fonts/wqy-microhei.ttf, Apache-2.0; provenance in
static/fonts/README.md). One TrueType face with Latin and simplified Chinese glyphs, so one font serves both
languages: reportlab embeds a subset of it in every PDF, matplotlib draws the charts' text with it.

Registration is once per process (parsing the 4.6 MB file takes a fraction of a second)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from django.conf import settings

FONT_FILE = Path(settings.BASE_DIR) / "static" / "fonts" / "wqy-microhei.ttf"
PDF_FONT = "HI-CJK"  # the name reportlab knows it by
MPL_FAMILY = "WenQuanYi Micro Hei"  # the family name inside the file

_lock = threading.Lock()


@lru_cache(maxsize=1)
def pdf_font() -> str:
    """Register the font with reportlab (normal, bold and italic all map to it: it has one face) and return its
    name. Raises FileNotFoundError with the path when the font is missing (a report without it would be tofu)."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not FONT_FILE.exists():
        raise FileNotFoundError(f"the reports' CJK font is missing: {FONT_FILE}")
    with _lock:
        pdfmetrics.registerFont(TTFont(PDF_FONT, str(FONT_FILE)))
        for bold in (0, 1):
            for italic in (0, 1):
                addMapping(PDF_FONT, bold, italic, PDF_FONT)
    return PDF_FONT


@lru_cache(maxsize=1)
def mpl_family() -> str:
    """Add the font to matplotlib's font manager and return its family name."""
    from matplotlib import font_manager

    if not FONT_FILE.exists():
        raise FileNotFoundError(f"the reports' CJK font is missing: {FONT_FILE}")
    with _lock:
        font_manager.fontManager.addfont(str(FONT_FILE))
    return MPL_FAMILY
