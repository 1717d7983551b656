"""The demo farm's market data (called by ``manage.py seed_demo``, which ``make run`` runs): the shipped BTC
history into MarketDay, and the shipped ERCOT prices (day-ahead hourly, real-time 15-minute) as the Texas site's
power prices. Idempotent and quick on a re-seed: the history is one bulk upsert (~0.5 s), the prices are skipped
when the site already holds them (one query per market)."""

from __future__ import annotations

from intelligence.market_data import market_load_file
from intelligence.models import PowerMarket
from intelligence.power_price_services import power_prices_load_ercot
from sites.models import Site

DEMO_PRICE_SITE = "tx-permian"  # the demo site in ERCOT's territory


def seed_demo_market(*, site_slug: str = DEMO_PRICE_SITE) -> list[str]:
    """Load the demo's market data; returns one line per part for the seed command's output."""
    history = market_load_file()
    lines = [f"market days {history.first} … {history.last}: {history.written:,} loaded, {history.kept:,} kept"]
    site = Site.objects.filter(slug=site_slug).first()
    if site is None:
        return [*lines, f"no site {site_slug!r}: no power prices loaded"]
    for market in (PowerMarket.DAY_AHEAD, PowerMarket.REAL_TIME):
        summary = power_prices_load_ercot(site=site, market=market, only_if_missing=True)
        lines.append(
            f"{site.slug} {market}: already loaded"
            if summary is None
            else f"{site.slug} {market}: {summary.intervals:,} ERCOT intervals of {summary.step_minutes} min"
        )
    return lines
