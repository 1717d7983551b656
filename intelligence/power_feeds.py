"""Power price feeds: where a site's prices come from when nobody uploads them. None is configured by default.

- A feed is any object with a ``name`` and ``fetch(*, market, start, end) -> PriceSeries`` (intervals starting in
  [start, end), UTC; ``intelligence.algorithms.power_prices.PriceSeries``); it raises ``PowerFeedError`` when it
  cannot answer (network, the market's API, no data for the span).
- ``settings.POWER_PRICE_FEEDS`` maps a site's slug to a registered name or a dotted path, e.g.
  ``{"tx-permian": "ercot_shipped"}``; a site not named has no feed.
- ``power_prices_refresh(site=, market=, start=, end=)`` fetches and loads through the same service as an upload
  (``intelligence.power_price_services.power_prices_load``), so a feed's rows are checked and idempotent alike.

``ercot_shipped`` serves the shipped ERCOT hub-average prices (offline; the demo site's, provenance in
intelligence/data/PROVENANCE.md): the example adapter and the one the tests use. A live ISO adapter (ERCOT's public
API, a utility's tariff feed) implements the same two members.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from intelligence.algorithms import power_prices as pp
from intelligence.models import PowerMarket


class PowerFeedError(Exception):
    """The feed could not give prices this time."""


class PowerPriceFeed(Protocol):
    name: str

    def fetch(self, *, market: str, start: datetime, end: datetime) -> pp.PriceSeries: ...


_REGISTRY: dict[str, Callable[[], PowerPriceFeed]] = {}


def register_power_feed(name: str):
    def decorator(factory):
        _REGISTRY[name] = factory
        return factory

    return decorator


def registered_power_feeds() -> list[str]:
    return sorted(_REGISTRY)


def power_feed_for(site) -> PowerPriceFeed | None:
    """The feed configured for ``site`` (by slug in ``settings.POWER_PRICE_FEEDS``), or None."""
    name = (getattr(settings, "POWER_PRICE_FEEDS", None) or {}).get(site.slug, "")
    if not name:
        return None
    factory = _REGISTRY.get(name)
    if factory is None:
        try:
            factory = import_string(name)
        except ImportError as exc:
            raise ImproperlyConfigured(f"POWER_PRICE_FEEDS[{site.slug!r}]={name!r} is not a feed: {exc}") from exc
    return factory()


@register_power_feed("ercot_shipped")
class ShippedErcotFeed:
    """The shipped ERCOT hub-average prices: day-ahead hourly, real-time 15-minute (2024-01 … 2025-11)."""

    name = "ercot_shipped"

    def fetch(self, *, market: str, start: datetime, end: datetime) -> pp.PriceSeries:
        series = pp.load_hourly("da") if market == PowerMarket.DAY_AHEAD else pp.load_15min()
        hours = (end - start).total_seconds() / 3600
        window = series.window(start, hours)
        if len(window) == 0:
            raise PowerFeedError(f"no shipped {market} prices between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}")
        return window


def power_prices_refresh(*, site, market: str, start: datetime, end: datetime):
    """Fetch ``site``'s prices for [start, end) from its feed and load them; None when it has no feed."""
    from intelligence.power_price_services import power_prices_load

    feed = power_feed_for(site)
    if feed is None:
        return None
    series = feed.fetch(market=market, start=start, end=end)
    return power_prices_load(site=site, market=market, series=series, source=f"feed:{feed.name}")
