"""Live market feeds: where the latest BTC price, difficulty, hashrate and fees come from once the shipped history
ends. Nothing here needs the network unless a feed is configured.

- A feed is any object with a ``name`` and ``fetch_latest(*, timeout_s) -> list[FeedDay]``; it raises ``FeedError``
  for anything that went wrong on the way (network, HTTP status, a body it cannot read).
- ``settings.MARKET_FEED`` picks one: ``""`` (the default) is none; a registered name (``"blockchain_com"``); or the
  dotted path of a class or factory (``"myfarm.feeds.InternalFeed"``), for a feed of one's own.
- The Beat job ``intelligence.market_refresh`` (``intelligence.market_tasks``) fetches and upserts the days as FEED
  rows (``intelligence.market_data.market_days_from_feed``); a failure is recorded in the job run and reported by
  /api/health, never raised into the worker.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_TIMEOUT_S = 10.0


class FeedError(Exception):
    """The feed could not give figures this time (network, HTTP status, unreadable body)."""


@dataclass(frozen=True)
class FeedDay:
    date: date  # UTC day
    btc_price_usd: Decimal
    difficulty: Decimal
    hashrate_ths: Decimal | None = None
    fees_btc: Decimal | None = None  # fees paid to miners over the day
    miners_revenue_usd: Decimal | None = None


class MarketFeed(Protocol):
    name: str

    def fetch_latest(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[FeedDay]: ...


_REGISTRY: dict[str, Callable[[], MarketFeed]] = {}


def register_feed(name: str):
    """Register a feed class (or factory) under ``name`` for ``settings.MARKET_FEED``."""

    def decorator(factory):
        _REGISTRY[name] = factory
        return factory

    return decorator


def registered_feeds() -> list[str]:
    return sorted(_REGISTRY)


def configured_feed_name() -> str:
    return (getattr(settings, "MARKET_FEED", "") or "").strip()


def configured_feed() -> MarketFeed | None:
    """The feed ``settings.MARKET_FEED`` names, or None when none is configured. An unknown name or a path that
    does not import raises ``ImproperlyConfigured`` (a configuration error is not a network error)."""
    from django.core.exceptions import ImproperlyConfigured

    name = configured_feed_name()
    if not name:
        return None
    factory = _REGISTRY.get(name)
    if factory is None:
        if "." not in name:
            raise ImproperlyConfigured(f"MARKET_FEED={name!r}: not one of {registered_feeds()} nor a dotted path")
        try:
            factory = import_string(name)
        except ImportError as exc:
            raise ImproperlyConfigured(f"MARKET_FEED={name!r} cannot be imported: {exc}") from exc
    return factory()


def _get_json(url: str, *, timeout_s: float) -> dict:
    if not url.startswith("https://"):
        raise FeedError(f"{url}: only https URLs are fetched")
    headers = {"Accept": "application/json", "User-Agent": "HashInsight/1.0"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (https only, checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (fixed https URL)
            body = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"HTTP {exc.code} from {url}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FeedError(f"{type(exc).__name__} fetching {url}: {getattr(exc, 'reason', exc)}") from exc
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FeedError(f"{url} did not answer JSON") from exc
    if not isinstance(data, dict):
        raise FeedError(f"{url} answered JSON that is not an object")
    return data


def _number(data: dict, key: str, *, required: bool = True) -> Decimal | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FeedError(f"the answer has no {key!r}")
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise FeedError(f"{key!r} is not a number: {value!r}") from None
    if not number.is_finite() or number < 0 or (required and number == 0):
        raise FeedError(f"{key!r} is out of range: {value!r}")
    return number


@register_feed("blockchain_com")
class BlockchainComFeed:
    """blockchain.com's public network statistics (``https://api.blockchain.info/stats``; no key), the same
    publisher as the shipped history's difficulty and hashrate. One call gives the last 24 hours: market price
    (USD), difficulty, hash rate (GH/s), fees (satoshis), miners' revenue (USD), stamped with a time in ms — kept as
    the figures of that UTC day (refreshed through the day, the last refresh of a day stands)."""

    name = "blockchain_com"
    url = "https://api.blockchain.info/stats"

    def fetch_latest(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[FeedDay]:
        data = _get_json(self.url, timeout_s=timeout_s)
        stamp = _number(data, "timestamp")
        hash_rate_ghs = _number(data, "hash_rate", required=False)
        fees_sats = _number(data, "total_fees_btc", required=False)
        return [
            FeedDay(
                date=datetime.fromtimestamp(float(stamp) / 1000, tz=UTC).date(),
                btc_price_usd=_number(data, "market_price_usd"),
                difficulty=_number(data, "difficulty"),
                hashrate_ths=None if hash_rate_ghs is None else hash_rate_ghs / 1000,
                fees_btc=None if fees_sats is None else fees_sats / 100_000_000,
                miners_revenue_usd=_number(data, "miners_revenue_usd", required=False),
            )
        ]
