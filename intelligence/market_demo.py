"""The demo farm's market data (called by ``manage.py seed_demo``, which ``make run`` runs): the shipped BTC
history into MarketDay, and the shipped ERCOT prices (day-ahead hourly, real-time 15-minute) as the Texas site's
power prices. Idempotent and quick on a re-seed: the history is one bulk upsert (~0.5 s), the prices are skipped
when the site already holds them (one query per market). And the two quick network models (difficulty epochs, the
hashprice composite), trained and activated when they beat naive, so a new demo serves models, not the naive
fallback, before the weekly training first runs."""

from __future__ import annotations

from intelligence.market_data import market_load_file
from intelligence.models import ForecastModel, PowerMarket
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


# Seconds each, not minutes: Prophet and XGBoost wait for the weekly training (they lose to naive on price anyway).
DEMO_MODELS = (("difficulty", "difficulty_epoch"), ("hashprice", "hashprice_composite"))


def seed_demo_models() -> list[str]:
    """Train and activate the quick network models where no model is active yet; one line per target."""
    from intelligence import forecasting
    from intelligence.forecast_tasks import activate_winners

    lines = []
    for target, algorithm in DEMO_MODELS:
        active = forecasting.active_model(target)
        if active is not None:
            lines.append(f"{target}: {active.algorithm} v{active.version} already active")
            continue
        model = forecasting.model_train(model=forecasting.model_register(target=target, algorithm=algorithm))
        activated = activate_winners([model]) if model.status == ForecastModel.Status.CANDIDATE else []
        state = "active" if activated else f"{model.status} (naive served: {model.error or 'it does not beat naive'})"
        lines.append(f"{target}: {algorithm} v{model.version} {state}")
    return lines
