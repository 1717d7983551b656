"""The curtailment planner pages: the list (sort, filter, CSV), the planner form (a plan made, or the refusal naming
the constraint), one plan (chart data, schedule, profit comparison, solver, send button) and sending it (→ the
commands page); CURTAILMENT READ to read, FULL to plan and send; hidden plans 404; no inline script or style."""

from __future__ import annotations

import json
import re

import pytest

from commands.models import Command
from intelligence import curtailment_plans as plans
from intelligence.models import CurtailmentPlan
from intelligence.tests.test_plans_api import with_prices


@pytest.fixture
def priced(farm):
    return with_prices(farm)


pytestmark = pytest.mark.django_db


def assert_no_inline_code(html: str):
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html and " style=" not in html


def make(priced, site="site_a"):
    data = {"site": getattr(priced, site).pk, "start": priced.start}
    return plans.plan_create(actor=priced.users["owner"], data=data)


def test_plan_page_shows_chart_data_schedule_comparison_and_solver(client, priced):
    plan = make(priced)
    client.force_login(priced.users["siteowner_a"])
    r = client.get(f"/curtailment/plans/{plan.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert_no_inline_code(html)
    data = json.loads(re.search(r'<script id="plan-chart-data" type="application/json">(.*?)</script>', html).group(1))
    assert data["prices"] == plan.inputs["prices_usd_per_mwh"] and len(data["labels"]) == 24
    assert data["curtailed"][16] is True and data["curtailed"][0] is False
    assert html.count('data-curtailed="1"') == sum(data["curtailed"])
    assert f">{plan.profit_usd}<" in html.replace(",", "")
    assert 'data-testid="solver-gap"' in html and 'data-testid="send-plan"' in html
    assert "vendor/chart.js/chart.umd.js" in html and "js/curtailment-planner.js" in html


def test_send_from_the_page_leads_to_the_commands_page(client, priced):
    plan = make(priced)
    client.force_login(priced.users["siteowner_a"])
    r = client.post(f"/curtailment/plans/{plan.pk}/send/", {"mode": "hard"})
    assert r.status_code == 302 and r["Location"].startswith("/commands/?site=")
    plan.refresh_from_db()
    assert plan.status == "sent" and plan.commands.count() == Command.objects.count() > 0


def test_read_only_and_hidden(client, priced):
    a, b = make(priced), make(priced, "site_b")
    client.force_login(priced.users["siteowner_b_ro"])
    assert client.get(f"/curtailment/plans/{a.pk}/").status_code == 404
    page = client.get(f"/curtailment/plans/{b.pk}/").content.decode()
    assert 'data-testid="send-plan"' not in page  # a read-only grant: no button, and the POST is refused
    client.post(f"/curtailment/plans/{b.pk}/send/")
    b.refresh_from_db()
    assert b.status == "draft" and not b.commands.exists()
    assert client.get("/curtailment/planner/").status_code == 200  # FULL role; the form offers no site of theirs
    client.force_login(priced.users["client_x"])
    for url in ("/curtailment/plans/", "/curtailment/planner/", f"/curtailment/plans/{a.pk}/"):
        assert client.get(url).status_code == 403


def test_planner_form_makes_a_plan_or_names_the_constraint(client, priced):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    client.force_login(priced.users["siteowner_a"])
    page = client.get("/curtailment/planner/").content.decode()
    assert_no_inline_code(page)
    assert priced.site_a.name in page and priced.site_b.name not in page
    local = datetime.fromisoformat(priced.start).astimezone(ZoneInfo(priced.site_a.timezone))
    form = {"site": priced.site_a.pk, "day": local.date().isoformat(), "hour": local.hour, "hours": 24}
    r = client.post("/curtailment/planner/", form)
    plan = CurtailmentPlan.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/curtailment/plans/{plan.pk}/"
    assert plan.starts_at.isoformat() == datetime.fromisoformat(priced.start).isoformat()
    r = client.post("/curtailment/planner/", {**form, "cap_kw": "0", "ramp_kw_per_hour": "1"})
    assert r.status_code == 200 and "ramp_kw_per_hour" in r.content.decode()
    r = client.post("/curtailment/planner/", {**form, "hours": 48})  # prices for 24 h only
    assert r.status_code == 200 and "prices_usd_per_mwh" in r.content.decode()
    assert CurtailmentPlan.objects.count() == 1


def test_list_sorts_filters_and_exports(client, priced):
    a, b = make(priced), make(priced, "site_b")
    client.force_login(priced.users["owner"])
    html = client.get("/curtailment/plans/?sort=id").content.decode()
    assert_no_inline_code(html)
    assert html.index(f">#{a.pk}<") < html.index(f">#{b.pk}<")
    only_b = client.get(f"/curtailment/plans/?site={priced.site_b.pk}").content.decode()
    assert f">#{b.pk}<" in only_b and f">#{a.pk}<" not in only_b
    csv = client.get("/curtailment/plans/?format=csv&sort=id")
    text = b"".join(csv.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert text[0].startswith("Plan,Site") and len(text) == 3


def test_pages_in_chinese(client, priced):
    plan = make(priced)
    client.force_login(priced.users["owner"])
    r = client.get(f"/curtailment/plans/{plan.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 200 and 'lang="zh-hans"' in r.content.decode()


def test_admin_lists_plans_read_only_within_scope(client, priced):
    a, b = make(priced), make(priced, "site_b")
    for name in ("owner", "siteowner_a"):
        priced.users[name].is_staff = True
        priced.users[name].save(update_fields=["is_staff"])
    client.force_login(priced.users["owner"])
    listing = client.get("/admin/intelligence/curtailmentplan/")
    assert listing.status_code == 200
    page = client.get(f"/admin/intelligence/curtailmentplan/{a.pk}/change/")
    assert page.status_code == 200 and "prices_usd_per_mwh" in page.content.decode()
    assert client.get("/admin/intelligence/curtailmentplan/add/").status_code == 403
    client.post(f"/admin/intelligence/curtailmentplan/{a.pk}/change/", {"status": "failed"})
    a.refresh_from_db()
    assert a.status == "draft"
    client.force_login(priced.users["siteowner_a"])
    assert client.get(f"/admin/intelligence/curtailmentplan/{b.pk}/change/").status_code == 404


def test_the_planner_starts_on_a_day_the_site_has_prices_for(client, farm):
    """The demo's shipped prices end in the past: the form starts on their last full day, not on a tomorrow that
    would only answer missing_prices; with tomorrow's prices loaded it starts on tomorrow."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from intelligence.models import PowerMarket, PowerPrice
    from sites.models import Site

    Site.objects.filter(pk__in=[farm.site_a.pk, farm.site_b.pk]).update(timezone="UTC")
    first_hour = datetime(2025, 3, 10, tzinfo=UTC)
    PowerPrice.objects.bulk_create(
        PowerPrice(site=farm.site_b, market=PowerMarket.DAY_AHEAD, interval_start=first_hour + timedelta(hours=h),
                   interval_minutes=60, usd_per_mwh=Decimal(40))
        for h in range(48)
    )  # fmt: skip
    client.force_login(farm.users["owner"])
    form = client.get("/curtailment/planner/").context["form"]
    assert form.initial["site"] == farm.site_b.pk  # the site with prices, not the first by name
    assert str(form.initial["day"]) == "2025-03-11"  # the last day with all 24 hours
