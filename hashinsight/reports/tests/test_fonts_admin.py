"""No tofu: the shipped font draws every character the Chinese reports can contain (the catalogue's translations and
the characters the renderers add); the font is TrueType (reportlab embeds only that). The admin: jobs and schedules
read-only and scoped, a failed job rendered again through the service."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.test import Client
from fontTools.ttLib import TTFont

from hashinsight.reports import fonts
from hashinsight.reports.models import ReportJob
from hashinsight.reports.tests import factories_reports as fx

CATALOGUE = Path(fonts.__file__).parent / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_the_font_is_truetype_and_draws_every_chinese_text_of_the_reports():
    font = TTFont(str(fonts.FONT_FILE))
    assert "glyf" in font  # TrueType outlines: reportlab can embed it (CFF fonts it cannot)
    cmap = font.getBestCmap()
    texts = [e.msgstr for e in polib.pofile(str(CATALOGUE)) if e.msgstr]
    texts += ["0123456789,.%–—·×/()（）：，。-+ USD PH/s TH/s kWh MWh", "深圳矿场 简体中文"]
    missing = sorted({ch for t in texts for ch in t if ord(ch) not in cmap and not ch.isspace()})
    assert missing == []
    assert len(texts) > 100


def test_the_catalogue_is_complete():
    po = polib.pofile(str(CATALOGUE))
    assert po.percent_translated() == 100 and not po.fuzzy_entries()
    assert Path(str(CATALOGUE).replace(".po", ".mo")).stat().st_mtime >= CATALOGUE.stat().st_mtime - 5


@pytest.mark.django_db
def test_admin_is_scoped_and_read_only(farm, django_capture_on_commit_callbacks):
    from unittest import mock

    from hashinsight.reports import services

    fx.site_month(farm)
    owner = farm.users["owner"]
    boom = mock.patch("hashinsight.reports.data.site_month", side_effect=RuntimeError("boom"))
    with boom, django_capture_on_commit_callbacks(execute=True):
        failed = services.report_request(user=owner, kind="site_monthly", site=farm.site_b.pk, month="2026-09",
                                             formats=["xlsx"])  # fmt: skip
    failed.refresh_from_db()
    assert failed.status == "failed"
    owner.is_staff = True
    owner.save()
    so_a = farm.users["siteowner_a"]
    so_a.is_staff = True
    so_a.save()
    c = Client()
    c.force_login(so_a)
    page = c.get("/admin/reports/reportjob/")
    assert page.status_code == 200 and f"/admin/reports/reportjob/{failed.pk}/" not in page.content.decode()
    assert c.get(f"/admin/reports/reportjob/{failed.pk}/change/").status_code == 404
    c.force_login(owner)
    assert c.get(f"/admin/reports/reportjob/{failed.pk}/change/").status_code == 200
    assert c.get("/admin/reports/reportjob/add/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        done = c.post("/admin/reports/reportjob/", {"action": "render_again", "_selected_action": [failed.pk]})
    assert done.status_code == 302
    assert ReportJob.objects.get(pk=failed.pk).status == "done"
