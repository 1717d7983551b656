"""The figures a report shows, against hand-computed values: a site's September (three miners, 200 TH/s nominal each,
180 TH/s measured, 97 % uptime, 250 kWh a day each, one 4-hour curtailment, two alerts and a safety event) and client
X's statement (its one miner's 30 statement rows)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import translation

from hashinsight.billing.calc.carried import Carried
from hashinsight.reports import content, data
from hashinsight.reports.tests import factories_reports as fx

pytestmark = pytest.mark.django_db


def hashprice_by_hand() -> Decimal:
    # USD per TH/s per day = 1e12 H/s × 86,400 s / (difficulty × 2^32) × (subsidy 3.125 + fees 0.1 BTC) × price
    btc = Decimal(10**12 * 86400) / (fx.DIFFICULTY * Decimal(2**32)) * Decimal("3.225")
    return (btc * fx.PRICE).quantize(Decimal("0.000001"))


def test_site_month_figures(farm):
    fx.market_month()
    fx.site_month(farm)
    d = data.site_month(site=farm.site_a, month=fx.day(17))
    assert (d.period_start, d.period_end, len(d.days)) == (fx.MONTH, fx.day(29), 30)
    assert d.miners == 3 and d.nominal_ths == 600.0
    assert d.avg_hashrate_ths == pytest.approx(540.0)
    assert d.hashrate_pct == pytest.approx(90.0)
    assert d.uptime_pct == pytest.approx(97.0)
    assert d.energy_kwh == pytest.approx(22_500.0)
    hp = hashprice_by_hand()
    assert d.days[0].hashprice_usd == hp
    per_day = (Decimal("540") * hp).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert d.revenue_usd == per_day * 30
    assert d.cost == Decimal("37.50") * 30  # 750 kWh × 0.05 USD/kWh a day
    assert d.curtailment.events == 1 and d.curtailment.hours == pytest.approx(4.0)
    assert d.days[12].curtailed_h == pytest.approx(4.0) and d.days[11].curtailed_h == 0
    assert d.curtailment.energy_avoided_kwh == Decimal("2000.000")
    assert d.curtailment.revenue_forgone_usd == Decimal("123.45")
    # The worst first: the two critical ones (the 6-hour alert before the instant safety event), then the warning.
    assert [(i.source, i.severity) for i in d.incidents] == [
        ("alert", "critical"),
        ("safety", "critical"),
        ("alert", "warning"),
    ]
    assert d.incidents[0].duration_h == pytest.approx(6.0)
    assert d.incident_counts == {"critical": 2, "warning": 1, "info": 0}
    assert len(d.miner_rows) == 3 and d.miner_rows[0].days == 30
    assert [(m.miners, m.nominal_ths) for m in d.model_rows] == [(3, 600.0)]
    assert d.model_rows[0].hashrate_ths == pytest.approx(540.0)


def test_site_month_falls_back_to_miner_rows_when_the_site_row_is_missing(farm):
    from telemetry.models import SiteDaily

    fx.site_month(farm)
    SiteDaily.objects.filter(day=fx.day(4)).delete()
    d = data.site_month(site=farm.site_a, month=fx.MONTH)
    day4 = next(x for x in d.days if x.day == fx.day(4))
    assert (day4.miners_reporting, day4.hashrate_ths, day4.energy_kwh) == (3, pytest.approx(540.0), 750.0)
    assert d.days[0].revenue_usd is None or d.days[0].hashprice_usd is not None  # market optional


def test_site_month_queries_do_not_grow_with_the_fleet(farm, django_assert_max_num_queries):
    fx.market_month()
    fx.site_month(farm)
    with django_assert_max_num_queries(14):
        data.site_month(site=farm.site_a, month=fx.MONTH)


def test_client_statement_figures_are_the_clients_own(farm):
    fx.market_month()
    fx.site_month(farm)
    inv = fx.issued_invoice(farm)
    d = data.client_statement(invoice=inv)
    assert (d.subject, d.site_name, d.miners, d.nominal_ths) == (farm.client_x.company, farm.site_a.name, 1, 200.0)
    assert len(d.days) == 30 and d.energy_kwh == pytest.approx(7500.0)
    assert d.hashrate_pct == pytest.approx(90.0)
    assert d.cost == Decimal("15.00") * 30
    assert [m.serial for m in d.miner_rows] == [farm.miners[("site-a", "client-x")].serial]
    assert d.miner_rows[0].downtime_operator_h == pytest.approx(0.72 * 30)
    assert d.invoice.number == "INV-2026-09-0001" and [ln.amount for ln in d.invoice.lines] == [
        Decimal("450.00"),
        Decimal("-22.50"),
    ]
    messages = [i.message for i in d.incidents]
    assert "Miner X stopped reporting" in messages
    assert not any("Client Y" in m for m in messages)  # another client's alert at the same site
    assert d.incident_counts["critical"] == 2 and d.incident_counts["warning"] == 0


def test_a_feed_that_stopped_months_ago_carries_its_last_hashprice_forward(farm):
    """The shipped market history ends months before a report's month: the report prices revenue at the last known
    hashprice rather than showing none (0 USD of revenue would be wrong; the stale feed shows in /api/health)."""
    from datetime import timedelta

    from intelligence.models import MarketDay

    MarketDay.objects.create(
        date=fx.MONTH - timedelta(days=120), btc_price_usd=fx.PRICE, difficulty=fx.DIFFICULTY, fees_btc=fx.FEES_BTC
    )
    fx.site_month(farm)
    d = data.site_month(site=farm.site_a, month=fx.day(17))
    assert {day.hashprice_usd for day in d.days} == {hashprice_by_hand()}
    assert d.revenue_usd > 0
    # ... and says which day's hashprice it is
    as_of = fx.MONTH - timedelta(days=120)
    assert d.hashprice_carried == [Carried(fx.MONTH, fx.day(29), as_of)]
    with translation.override("en"):
        assert content.market_notes(d) == [
            f"Hashprice as of {as_of:%Y-%m-%d}, used for 2026-09-01 – 2026-09-30 (no later market data)."
        ]
    with translation.override("zh-hans"):
        note = f"算力价格截至 {as_of:%Y-%m-%d}，沿用于 2026-09-01 – 2026-09-30（此后无市场数据）。"
        assert content.market_notes(d) == [note]


def test_a_month_with_its_own_market_days_names_no_earlier_hashprice(farm):
    fx.market_month()
    fx.site_month(farm)
    d = data.site_month(site=farm.site_a, month=fx.MONTH)
    assert d.hashprice_carried == [] and content.market_notes(d) == []


def test_days_after_the_feed_ends_name_its_last_day(farm):
    """The market data end on the 20th: the 21st to the 30th show the 20th's hashprice, and the report says so."""
    from intelligence.models import MarketDay

    fx.market_month()
    MarketDay.objects.filter(date__gt=fx.day(19)).delete()
    fx.site_month(farm)
    site = data.site_month(site=farm.site_a, month=fx.MONTH)
    assert site.hashprice_carried == [Carried(fx.day(20), fx.day(29), fx.day(19))]
    statement = data.client_statement(invoice=fx.issued_invoice(farm))
    assert statement.hashprice_carried == [Carried(fx.day(20), fx.day(29), fx.day(19))]
    with translation.override("en"):
        assert content.market_notes(statement) == [
            "Hashprice as of 2026-09-20, used for 2026-09-21 – 2026-09-30 (no later market data)."
        ]
