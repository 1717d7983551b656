"""The one cache helper: the seed's key names, versioned invalidation, lazy rebuild and
stale-while-revalidate. When the cache (Redis) is down, reads compute from the database instead.

An entry is ``{"v": version, "at": built_at, "value": ...}``. ``invalidate`` bumps the key's version,
so every process sees the old entry as stale at once; a stale entry is served (``X-Cache: stale``)
while one background rebuild — guarded by a short lock — replaces it. ``invalidate_group`` does the same
for every key of a kind that shares its leading parts (``GROUPS``: every day's plan of a site), whose
keys are too many to name."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

KEYS = {
    "user_portfolio": "user_portfolio:{id}",
    "forecast": "forecast:{id}",
    "optimize": "optimize:{id}:{date}",
    "site_summary": "site_summary:{id}",
    "customer_summary": "customer_summary:{id}",  # a hosting client's miners only, never a whole site
    "telemetry_summary": "telemetry_summary:{site}:{scope}",  # live dashboard: whole site, or clients' miners
    "roi_explain": "roi_explain:{digest}",  # ROI attribution: digest of the query, the resolved scope and the language
    "anomaly_baseline": "anomaly_baseline:{chunk}:{hour}",  # anomaly scan: a chunk's baselines (first miner id, hour)
    "revenue_forecast": "revenue_forecast:{subject}",  # a site's (site:<id>) or hosting client's (customer:<id>)
    "forecast_timings": "forecast_timings",  # the newest forecast builds' durations (/api/health forecast_latency)
    "roi_drift": "roi_drift",  # the fleet's profit change, last 7 days vs the 7 before (smart alerts job → health)
    "health_intelligence": "health_intelligence",  # /api/health's three intelligence figures, cached for 60 s
    "asset_forecast": "asset_forecast:{asset}:{view}:{hour}",  # 168 h of an asset's power; view: all or c<clients>
    "miner_health": "miner_health:{id}",  # a user's miner-health summary (counts per tier, worst miners)
}
# Kinds whose keys can also be made stale all at once by their leading parts (``invalidate_group``). Such an
# entry's version is its key's plus its group's: both only ever rise, so a bump of either leaves it stale.
GROUPS = {
    "optimize": "optimize:{id}",  # every day's plan of one site: its prices or its fleet changed
}
FRESH_S = 300
KEEP_S = 24 * 3600
LOCK_S = 60
_BUILDERS: dict[str, Callable[..., Any]] = {}


class Cached(NamedTuple):
    value: Any
    state: str  # hit | miss | stale | bypass


def register_builder(name: str):
    def decorator(fn):
        _BUILDERS[name] = fn
        return fn

    return decorator


def cache_key(name: str, **parts) -> str:
    return KEYS[name].format(**parts)


def _version(key: str) -> int:
    return cache.get(f"v:{key}") or 0


def _current_version(name: str, key: str, parts: dict) -> int:
    """The key's version, plus its group's when the kind has one (one round-trip either way)."""
    group = GROUPS.get(name)
    if group is None:
        return _version(key)
    names = [f"v:{key}", f"v:{group.format(**parts)}:*"]
    found = cache.get_many(names)
    return sum(found.get(n) or 0 for n in names)


def _store(key: str, value, version: int) -> None:
    try:
        cache.set(key, {"v": version, "at": time.time(), "value": value}, KEEP_S)
    except Exception:
        logger.warning("cache unavailable; value not stored", extra={"cache_key": key})


def build_and_store(name: str, **parts):
    """Build and store the entry, stamped with the version read *before* building: an invalidation
    that lands mid-build then leaves the new entry already stale, instead of blessing old data."""
    key = cache_key(name, **parts)
    try:
        version = _current_version(name, key, parts)
    except Exception:
        logger.warning("cache unavailable; computing from the database", extra={"cache_key": key})
        return _BUILDERS[name](**parts)
    return _build(name, key, version, parts)


def _build(name: str, key: str, version: int, parts: dict):
    value = _BUILDERS[name](**parts)
    _store(key, value, version)
    return value


def invalidate(name: str, **parts) -> None:
    invalidate_many(name, [parts])


def invalidate_many(name: str, parts_list: list[dict]) -> None:
    """Bump the version of many keys; on Redis in one pipelined round-trip (INCR creates missing keys)."""
    _bump([f"v:{cache_key(name, **parts)}" for parts in parts_list])


def invalidate_group(name: str, parts_list: list[dict]) -> None:
    """Make every entry of a grouped kind (``GROUPS``) stale for each of ``parts_list``'s leading parts, e.g.
    ``invalidate_group("optimize", [{"id": 3}])``: every day's plan of site 3, whichever days were cached.
    Served stale and rebuilt on the next read, as after ``invalidate``."""
    _bump([f"v:{GROUPS[name].format(**parts)}:*" for parts in parts_list])


def _bump(version_keys: list[str]) -> None:
    if not version_keys:
        return
    try:
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            # Django exposes no pipeline; its client wrapper (private, stable since 4.0) gives the redis client.
            client = backend._cache.get_client(write=True)
            pipe = client.pipeline(transaction=False)
            for key in version_keys:
                pipe.incr(backend.make_and_validate_key(key))
            pipe.execute()
            return
        for key in version_keys:
            try:
                backend.incr(key)
            except ValueError:  # no version yet
                backend.set(key, 1, None)
    except Exception:
        logger.warning("cache unavailable; invalidation skipped", extra={"cache_keys": version_keys[:5]})


def get(
    name: str, *, fresh_s: float = FRESH_S, max_stale_s: float | None = None, build_on_miss: bool = True, **parts
) -> Cached:
    """Read through the cache: hit, stale (served, rebuilt in the background) or miss (built now).
    ``max_stale_s`` bounds how old a stale entry may be and still be served: a live figure older than
    that is rebuilt now rather than shown (a dashboard opened after a quiet hour). ``build_on_miss=False``: a
    miss (or a cache that cannot be read) answers ``Cached(None, "miss")`` at once and queues the build, for a
    page that reads several entries whose build may take seconds and must not make the reader wait for all."""
    builder = _BUILDERS[name]
    key = cache_key(name, **parts)
    try:
        entry = cache.get(key)
        version = _current_version(name, key, parts)
    except Exception:
        logger.warning("cache unavailable; computing from the database", extra={"cache_key": key})
        return Cached(builder(**parts), "bypass") if build_on_miss else Cached(None, "miss")
    if entry is None:
        if not build_on_miss:
            _rebuild_in_background(name, key, parts)
            return Cached(None, "miss")
        return Cached(_build(name, key, version, parts), "miss")
    age = time.time() - entry["at"]
    if entry["v"] == version and age < fresh_s:
        return Cached(entry["value"], "hit")
    if max_stale_s is not None and age >= fresh_s + max_stale_s:
        return Cached(_build(name, key, version, parts), "miss")
    _rebuild_in_background(name, key, parts)
    return Cached(entry["value"], "stale")


def _rebuild_in_background(name: str, key: str, parts: dict) -> None:
    try:
        if not cache.add(f"lock:{key}", 1, LOCK_S):
            return  # another rebuild is already on its way
    except Exception:
        return
    from hashinsight.core.tasks import rebuild_cache

    try:
        rebuild_cache.delay(name, parts)
    except Exception:
        cache.delete(f"lock:{key}")
