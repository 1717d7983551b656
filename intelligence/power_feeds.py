"""Power price feeds: where a site's prices come from when nobody uploads them. None is configured by default.

- A feed is any object with a ``name`` and ``fetch(*, market, start, end) -> PriceSeries`` (intervals starting in
  [start, end), UTC; ``intelligence.algorithms.power_prices.PriceSeries``); it raises ``PowerFeedError`` when it
  cannot answer (network, the market's API, no data for the span).
- ``settings.POWER_PRICE_FEEDS`` maps a site's slug to a registered name or a dotted path, e.g.
  ``{"tx-permian": "ercot_shipped"}``; a site not named has no feed.
- ``power_prices_refresh(site=, market=, start=, end=)`` fetches and loads through the same service as an upload
  (``intelligence.power_price_services.power_prices_load``), so a feed's rows are checked and idempotent alike.
- ``power_feeds_refresh()`` is what runs it: every 5 minutes the Beat job ``intelligence.power_prices_refresh``
  (``intelligence.power_feed_tasks``, a JobRun per run) and ``manage.py refresh_power_prices`` fetch, for every site
  in ``POWER_PRICE_FEEDS``, both markets from the last stored interval on; ``power_feeds_health()`` is their state
  for /api/health.

Each fetch starts at the site's last stored interval of that market (inclusive: a corrected last price replaces the
stored one, and a healthy feed always answers something), but never more than ``LOOKBACK`` before now: the first
fetch of a new site back-fills a week, and a hole older than that is left to an upload instead of being walked
through a week per run. Only the intervals that are new or whose price changed are loaded, so a run with nothing new
writes nothing (no row, no load event). Real-time ends at now and keeps only intervals that have
ended (a real feed has no others; the shipped one holds the whole history and would otherwise hand the responder the
future); day-ahead runs to ``DAY_AHEAD_HORIZON`` ahead (tomorrow in any time zone). A feed's failure of any kind —
its own error, a network error, data the table cannot hold — is that market's outcome, recorded in the job run and
shown by /api/health; the market's load is one transaction, so nothing of a failed market is written, and the other
market and the other sites go on. A feed should bound its own I/O (timeouts); the task's soft time limit bounds the
run.

``ercot_shipped`` serves the shipped ERCOT hub-average prices (offline; the demo site's, provenance in
intelligence/data/PROVENANCE.md): the example adapter and the one the tests use. A live ISO adapter (ERCOT's public
API, a utility's tariff feed) implements the same two members.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string

from intelligence.algorithms import power_prices as pp
from intelligence.models import PowerMarket, PowerPrice

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(days=7)  # the furthest back a fetch starts (a new site's back-fill)
DAY_AHEAD_HORIZON = timedelta(hours=48)  # tomorrow's prices for a site in any time zone
MARKETS = (PowerMarket.DAY_AHEAD.value, PowerMarket.REAL_TIME.value)
# A site is stale when its newest real-time interval ended more than this many intervals ago. One interval behind
# is normal (a price is published after its interval ends, and this job runs every 5 minutes), a second absorbs a
# late publication, a third is a missed one; past three the responder is deciding on a price the nowcast has to
# carry across a quarter of an hour (5-minute data) or 45 minutes (15-minute data), and someone should look.
STALE_AFTER_INTERVALS = 3
REFRESH_JOB = "power_prices_refresh"
HEALTH_RUNS = 24  # the latest job runs read for each site's last outcome (two hours of 5-minute runs)


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


def _m64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "m")


def _trimmed(series: pp.PriceSeries, *, start: datetime, end: datetime, ended_by: datetime | None) -> pp.PriceSeries:
    """The intervals starting in [start, end) — a feed may answer more than it was asked — and, with ``ended_by``,
    only those that have ended by then."""
    keep = (series.start_utc >= _m64(start)) & (series.start_utc < _m64(end))
    if ended_by is not None:
        keep &= series.start_utc + np.timedelta64(series.step_minutes, "m") <= _m64(ended_by)
    return pp.PriceSeries(series.start_utc[keep], series.usd_per_mwh[keep], series.step_minutes, series.name)


def _fetch_and_load(*, site, feed, market: str, start: datetime, end: datetime):
    from intelligence.power_price_services import power_prices_load

    series = _trimmed(feed.fetch(market=market, start=start, end=end), start=start, end=end, ended_by=None)
    return power_prices_load(site=site, market=market, series=series, source=f"feed:{feed.name}")


def power_prices_refresh(*, site, market: str, start: datetime, end: datetime):
    """Fetch ``site``'s prices for [start, end) from its feed and load them; None when it has no feed."""
    feed = power_feed_for(site)
    if feed is None:
        return None
    return _fetch_and_load(site=site, feed=feed, market=market, start=start, end=end)


# -- the periodic refresh --------------------------------------------------------------------------------------


def configured_feed_sites() -> dict[str, str]:
    """``POWER_PRICE_FEEDS``: site slug → feed name, as configured."""
    return dict(getattr(settings, "POWER_PRICE_FEEDS", None) or {})


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def refresh_window(*, market: str, last: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the next fetch: from the last stored interval (at most ``LOOKBACK`` back) to now (real-time)
    or ``DAY_AHEAD_HORIZON`` ahead (day-ahead)."""
    floor = _floor_hour(now - LOOKBACK)
    start = floor if last is None else max(last, floor)
    end = now if market == PowerMarket.REAL_TIME else _floor_hour(now) + DAY_AHEAD_HORIZON
    return start, end


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _changed(series: pp.PriceSeries, *, site, market: str) -> tuple[pp.PriceSeries, int, int]:
    """The intervals of ``series`` not stored yet or stored with another price or step (one query over the
    fetched span), and how many of each: what a load has to write. Rounded as the load rounds."""
    from intelligence.power_price_services import CENT

    if len(series) == 0:
        return series, 0, 0
    starts = series.datetimes()
    rows = PowerPrice.objects.filter(
        site=site, market=market, interval_start__gte=starts[0], interval_start__lte=starts[-1]
    ).values_list("interval_start", "usd_per_mwh", "interval_minutes")
    stored = {start: (price, step) for start, price, step in rows}
    keep = np.zeros(len(series), dtype=bool)
    new = updated = 0
    for i, (start, value) in enumerate(zip(starts, series.usd_per_mwh.tolist(), strict=True)):
        held = stored.get(start)
        if held is None:
            keep[i], new = True, new + 1
        elif held != (Decimal(repr(value)).quantize(CENT), series.step_minutes):
            keep[i], updated = True, updated + 1
    changed = pp.PriceSeries(series.start_utc[keep], series.usd_per_mwh[keep], series.step_minutes, series.name)
    return changed, new, updated


def _refresh_market(*, site, feed, market: str, now: datetime) -> dict:
    from intelligence.power_price_services import power_prices_load

    last = (
        PowerPrice.objects.filter(site=site, market=market)
        .order_by("-interval_start")
        .values_list("interval_start", flat=True)
        .first()
    )
    start, end = refresh_window(market=market, last=last, now=now)
    if start >= end:
        return {"new": 0, "updated": 0, "intervals": 0, "last": _iso(last)}
    ended_by = now if market == PowerMarket.REAL_TIME else None
    series = _trimmed(feed.fetch(market=market, start=start, end=end), start=start, end=end, ended_by=ended_by)
    changed, new, updated = _changed(series, site=site, market=market)
    # Only what is new or different is loaded: a run with nothing new writes nothing and publishes nothing.
    if len(changed):
        power_prices_load(site=site, market=market, series=changed, source=f"feed:{feed.name}")
    newest = max((t for t in (last, *series.datetimes()[-1:]) if t), default=None)
    return {"new": new, "updated": updated, "intervals": len(series), "last": _iso(newest)}


def _refresh_site(*, slug: str, feed_name: str, now: datetime) -> dict:
    from celery.exceptions import SoftTimeLimitExceeded

    from sites.models import Site

    outcome = {"site": slug, "feed": feed_name, "markets": {}, "error": ""}
    site = Site.objects.filter(slug=slug).first()
    if site is None:
        outcome["error"] = f"no site with the slug {slug!r}"
        return outcome
    try:
        feed = power_feed_for(site)
    except ImproperlyConfigured as exc:
        outcome["error"] = str(exc)[:500]
        return outcome
    except Exception as exc:  # the feed's own constructor failed: its site's outcome, like a failed fetch
        outcome["error"] = _failure(exc)
        return outcome
    outcome["feed"] = feed.name
    errors = []
    for market in MARKETS:
        try:
            outcome["markets"][market] = _refresh_market(site=site, feed=feed, market=market, now=now)
        except (SoftTimeLimitExceeded, DatabaseError):
            raise  # the run's own limit, or our database: the task's to record and retry, not the feed's failure
        except Exception as exc:  # a feed is outside code: whatever it raises is its failure, recorded, not raised
            logger.warning("power price feed %s failed for %s %s: %s", feed.name, slug, market, exc)
            outcome["markets"][market] = {"error": _failure(exc)}
            errors.append(f"{market}: {_failure(exc)}")
    outcome["error"] = "; ".join(errors)[:500]
    return outcome


def power_feeds_refresh(*, slug: str | None = None, now: datetime | None = None) -> list[dict]:
    """Fetch and load both markets for every site in ``POWER_PRICE_FEEDS`` (or only ``slug``); one outcome per site
    (``site``, ``feed``, ``markets``: per market ``new``, ``intervals``, ``last`` or ``error``; ``error``). Repeats
    are idempotent: a second run with nothing new published rewrites the same last interval and adds nothing."""
    now = now or timezone.now()
    configured = configured_feed_sites()
    if slug is not None:
        configured = {slug: configured[slug]} if slug in configured else {}
    return [_refresh_site(slug=s, feed_name=name, now=now) for s, name in sorted(configured.items())]


# -- health ------------------------------------------------------------------------------------------------------


def _last_outcomes(slugs: set[str]) -> dict[str, dict]:
    """Each site's newest recorded outcome among the latest job runs; a run that failed as a whole (our database, its
    time limit) recorded no per-site outcome and counts as the outcome of every site."""
    from hashinsight.events.models import JobRun

    runs = (
        JobRun.objects.filter(job_type=REFRESH_JOB)
        .exclude(status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING])
        .order_by("-created_at", "-pk")
        .values("created_at", "status", "result", "error")[:HEALTH_RUNS]
    )
    found: dict[str, dict] = {}
    for run in runs:
        if run["status"] != JobRun.Status.SUCCESS:
            for s in slugs - found.keys():
                found[s] = {"at": run["created_at"], "error": run["error"] or run["status"]}
            break
        for o in (run["result"] or {}).get("sites", []):
            if o.get("site") in slugs and o["site"] not in found:
                found[o["site"]] = {"at": run["created_at"], "error": o.get("error", "")}
        if found.keys() >= slugs:
            break
    return found


def power_feeds_health(*, now: datetime | None = None) -> dict:
    """The power price feeds' state for /api/health, per configured site: the feed, the newest real-time interval
    stored, its age (seconds since it ended), the newest day-ahead interval, the last refresh, and ``status``: ``ok``,
    ``stale`` (no new real-time interval for more than ``STALE_AFTER_INTERVALS`` intervals, or none) or ``error``
    (the last refresh of the site failed; its error is given). The overall ``status`` is the worst site's, or
    ``unconfigured``. Informational: it never raises and never makes the service degraded. Costs two indexed
    queries per configured site and one for the job runs."""
    try:
        now = now or timezone.now()
        configured = configured_feed_sites()
        if not configured:
            return {"status": "unconfigured", "sites": [], "stale_after_intervals": STALE_AFTER_INTERVALS}
        from sites.models import Site

        site_ids = dict(Site.objects.filter(slug__in=configured).values_list("slug", "pk"))
        outcomes = _last_outcomes(set(configured))
        sites = []
        for slug, name in sorted(configured.items()):
            rt = da = None
            if slug in site_ids:
                rows = PowerPrice.objects.filter(site_id=site_ids[slug]).order_by("-interval_start")
                rt = rows.filter(market=PowerMarket.REAL_TIME).values("interval_start", "interval_minutes").first()
                da = rows.filter(market=PowerMarket.DAY_AHEAD).values_list("interval_start", flat=True).first()
            age = stale = None
            if rt is not None:
                ended = rt["interval_start"] + timedelta(minutes=rt["interval_minutes"])
                age = max(0, round((now - ended).total_seconds()))
                stale = age > STALE_AFTER_INTERVALS * rt["interval_minutes"] * 60
            last = outcomes.get(slug)
            error = (last or {}).get("error") or ("" if slug in site_ids else f"no site with the slug {slug!r}")
            sites.append({
                "site": slug,
                "feed": name,
                "status": "error" if error else ("stale" if rt is None or stale else "ok"),
                "last_interval": _iso(rt["interval_start"]) if rt else None,
                "interval_minutes": rt["interval_minutes"] if rt else None,
                "age_s": age,
                "last_day_ahead_interval": _iso(da),
                "last_refresh": _iso(last["at"]) if last else None,
                "error": error,
            })  # fmt: skip
        order = ("ok", "stale", "error")
        worst = max((s["status"] for s in sites), key=order.index)
        return {"status": worst, "sites": sites, "stale_after_intervals": STALE_AFTER_INTERVALS}
    except Exception as exc:  # the health page reports; it never fails because of a price feed
        return {"status": "error", "error": type(exc).__name__}
