"""The demo farm's market data (called by ``manage.py seed_demo``, which ``make run`` runs): the shipped BTC
history into MarketDay, and the shipped ERCOT prices (day-ahead hourly, real-time 15-minute) as the Texas site's
power prices. Idempotent and quick on a re-seed: the history is one bulk upsert (~0.5 s), the prices are skipped
when the site already holds them (one query per market). And the network models: the two quick ones (difficulty
epochs, the hashprice composite), trained and activated when they beat naive, so a new demo serves models, not the
naive fallback, before the weekly training first runs; and the BTC price's Prophet and XGBoost, whose backtests
(naive beats them on price) the forecasts page shows next to naive from the first run."""

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


# Seconds each, not minutes. The BTC price's Prophet and XGBoost (about 2 s and 3.5 s of CPU on the shipped
# history) lose to naive on price, so naive serves it; they are trained for their backtest, which the forecasts
# page shows next to naive and from which the served price forecast takes naive's own metrics.
DEMO_MODELS = (
    ("difficulty", ("difficulty_epoch",)),
    ("hashprice", ("hashprice_composite",)),
    ("btc_price", ("prophet", "xgboost")),
)


def seed_demo_models() -> list[str]:
    """Train each target's demo models and activate the one that beats naive (as the weekly training does), where
    no model is active and none of them was trained yet (a re-seed trains nothing); one line per target."""
    from intelligence import forecasting
    from intelligence.forecast_tasks import activate_winners

    lines = []
    for target, algorithms in DEMO_MODELS:
        active = forecasting.active_model(target)
        if active is not None:
            lines.append(f"{target}: {active.algorithm} v{active.version} already active")
            continue
        trained = (
            ForecastModel.objects.filter(target=target, subject=forecasting.NETWORK, algorithm__in=algorithms)
            .exclude(trained_at=None)
            .exists()
        )
        if trained:
            lines.append(f"{target}: {', '.join(algorithms)} already trained (naive serves)")
            continue
        models = [
            forecasting.model_train(model=forecasting.model_register(target=target, algorithm=algorithm))
            for algorithm in algorithms
        ]
        activated = set(activate_winners([m for m in models if m.status == ForecastModel.Status.CANDIDATE]))
        for model in models:
            if model.pk in activated:
                state = "active"
            elif model.status == ForecastModel.Status.CANDIDATE:
                state = "candidate (naive served: it does not beat naive)"
            else:
                state = f"{model.status} (naive served: {model.error or 'no forecast'})"
            lines.append(f"{target}: {model.algorithm} v{model.version} {state}")
    return lines
