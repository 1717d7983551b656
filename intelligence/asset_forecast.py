"""Per-asset power and energy forecasts (``POST /api/v1/assets/{asset_id}/predict``): the Django side of
``intelligence.algorithms.asset_forecast``.

An asset is a site, a zone or a miner, found in the caller's scope by the anomaly module's ``parse_asset_id`` /
``visible_asset`` (one rule for every per-asset endpoint). Its history is what the caller may see of it: a site
seen whole (owners, admins, the site's operator) reads the site rollup; a hosting client reads the sum of its own
miners there, never the whole site's power. The 5-minute layer gives each hour's mean power (a window a miner did
not report counts as drawing nothing: an unreported machine is off); hours the 5-minute layer does not hold (it
keeps 90 days, and a miner may have joined rollups late) take their day's energy ÷ 24 from the daily layer.

"Models preloaded": a forecast depends only on the asset, the caller's view of it and the last complete hour of
the 5-minute layer (its data version). So the full 168-hour forecast is computed once per (asset, view, hour),
kept in this process's LRU and in the shared cache (``asset_forecast:{asset}:{view}:{hour}``), and every request
of any horizon in that hour slices it: no history query and no fit on the hot path. ``asset_forecast_warm`` fills
both for every site and zone after each hourly health run; a miner's is computed on its first request of the hour
(a single miner's history is one small query). Posted ``historical_data`` is fitted per request (it is the
caller's own data, a few milliseconds for the seasonal model) and cached under the digest of the points."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from hashinsight.core import cache as cache_helper
from hashinsight.core.cache import register_builder
from hashinsight.core.errors import DomainError
from intelligence.algorithms import asset_forecast as af

log = logging.getLogger(__name__)

HISTORY_DAYS = 28
MAX_POINTS = 20_000  # 70 days of 5-minute points
LRU_SIZE = 512
_lru: OrderedDict[str, dict] = OrderedDict()
_lru_lock = threading.Lock()


def _bad(code: str, field: str, message: str, **details) -> DomainError:
    return DomainError(code, message, details={"field": field, **details})


# --- the process-level LRU -------------------------------------------------------------------------------------------


def _lru_get(key: str) -> dict | None:
    with _lru_lock:
        value = _lru.get(key)
        if value is not None:
            _lru.move_to_end(key)
        return value


def _lru_put(key: str, value: dict) -> None:
    with _lru_lock:
        _lru[key] = value
        _lru.move_to_end(key)
        while len(_lru) > LRU_SIZE:
            _lru.popitem(last=False)


def lru_clear() -> None:
    with _lru_lock:
        _lru.clear()


# --- views of an asset and its data version --------------------------------------------------------------------------


def view_of(user) -> str:
    """How ``user`` sees telemetry: ``all`` (whole sites: owners, admins, a site's operator, whose site
    ``visible_asset`` already checked) or ``c<ids>`` (a hosting client: its own miners only)."""
    from sites.selectors import scope_of

    scope = scope_of(user)
    if scope.kind == "customers":
        return "c" + "-".join(str(i) for i in sorted(scope.ids))
    return "all"


def _customer_ids(view: str) -> list[int] | None:
    if view == "all":
        return None
    return [int(i) for i in view[1:].split("-") if i]


def data_hour(now: datetime | None = None) -> datetime:
    """The end of the last complete hour the 5-minute layer holds (the rollup cursor's, else the clock's)."""
    from telemetry.models import RollupCursor
    from telemetry.rollups import CURSOR_5M

    now = now or timezone.now()
    done = RollupCursor.objects.filter(layer=CURSOR_5M).values_list("done_until", flat=True).first()
    end = min(now, done) if done else now
    return end.replace(minute=0, second=0, microsecond=0)


def _hour_tag(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y%m%d%H")


# --- the asset's history ---------------------------------------------------------------------------------------------


def asset_hourly(*, kind: str, pk: int, view: str, end: datetime, days: int = HISTORY_DAYS) -> tuple[
    af.HourlySeries, str
]:  # fmt: skip
    """Mean kW per hour over ``days`` days before ``end`` for the asset as ``view`` sees it, and which layers it
    came from. Two aggregate queries (5-minute, daily), whatever the number of miners."""
    from telemetry.models import Daily, History5m, SiteDaily, SiteHistory5m

    start = end - timedelta(days=days)
    n = days * 24
    kw = np.full(n, np.nan)
    customers = _customer_ids(view)
    whole_site = kind == "site" and customers is None
    if whole_site:
        qs5 = SiteHistory5m.objects.filter(site_id=pk, bucket__gte=start, bucket__lt=end)
        rows5 = qs5.annotate(h=TruncHour("bucket", tzinfo=UTC)).values("h").annotate(w=Sum("power_w"), c=Count("*"))
    else:
        qs5 = History5m.objects.filter(bucket__gte=start, bucket__lt=end, **_filter(kind, pk, customers))
        rows5 = qs5.annotate(h=TruncHour("bucket", tzinfo=UTC)).values("h").annotate(w=Sum("avg_power_w"), c=Count("*"))
    got5 = 0
    for row in rows5.values_list("h", "w"):
        i = int((row[0] - start) / timedelta(hours=1))
        if 0 <= i < n:
            # 12 five-minute windows an hour: their summed watts ÷ 12 is the hour's mean, ÷ 1000 in kW
            kw[i] = (row[1] or 0.0) / 12 / 1000
            got5 += 1
    got_daily = 0
    if np.isnan(kw).any():
        if whole_site:
            daily = SiteDaily.objects.filter(site_id=pk)
        else:
            daily = Daily.objects.filter(**_filter(kind, pk, customers))
        daily = daily.filter(day__gte=start.date(), day__lt=end.date()).values("day").annotate(e=Sum("energy_kwh"))
        for day, energy in daily.values_list("day", "e"):
            first = int((datetime.combine(day, datetime.min.time(), tzinfo=UTC) - start) / timedelta(hours=1))
            for i in range(max(0, first), min(n, first + 24)):
                if np.isnan(kw[i]):
                    kw[i] = (energy or 0.0) / 24
                    got_daily += 1
    source = "+".join(s for s, c in (("history_5m", got5), ("daily", got_daily)) if c) or "none"
    return af.HourlySeries(int(start.timestamp()), af.fill_gaps(kw)), source


def _filter(kind: str, pk: int, customers: list[int] | None) -> dict:
    f = {"miner_id": pk} if kind == "miner" else {"site_id": pk} if kind == "site" else {"miner__zone_id": pk}
    if customers is not None:
        f["customer_id__in"] = customers
    return f


# --- forecasts -------------------------------------------------------------------------------------------------------


def _compute(kind: str, pk: int, view: str, hour: datetime) -> dict:
    series, source = asset_hourly(kind=kind, pk=pk, view=view, end=hour)
    try:
        fc = af.forecast_power(series, af.MAX_HORIZON)
    except af.AssetDataError as exc:
        return {"error": exc.code, "message": exc.message, "source": source}
    return {**fc.as_dict(), "source": source}


@register_builder("asset_forecast")
def _asset_forecast_entry(*, asset: str, view: str, hour: str) -> dict:
    """``asset_forecast:{asset}:{view}:{hour}``: the 168-hour forecast of one asset as one view sees it, from the
    history up to that hour (or the reason there is none)."""
    kind, _, pk = asset.partition(":")
    at = datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)
    return _compute(kind, int(pk), view, at)


def history_forecast(*, kind: str, pk: int, view: str, hour: datetime) -> tuple[dict, str]:
    """The asset's preloaded forecast for this data version: process LRU, then the shared cache, then computed
    (and stored in both). Returns the entry and where it came from (``lru``, ``hit``, ``miss``, ``bypass``)."""
    parts = {"asset": f"{kind}:{pk}", "view": view, "hour": _hour_tag(hour)}
    key = cache_helper.cache_key("asset_forecast", **parts)
    entry = _lru_get(key)
    if entry is not None:
        return entry, "lru"
    # the key names its data version: an entry never goes stale within its hour
    cached = cache_helper.get("asset_forecast", fresh_s=cache_helper.KEEP_S, **parts)
    _lru_put(key, cached.value)
    return cached.value, cached.state


def posted_forecast(secs: np.ndarray, kw: np.ndarray, interval_s: float | None) -> tuple[dict, str]:
    digest = hashlib.sha256(secs.tobytes() + kw.tobytes()).hexdigest()[:32]
    key = f"posted:{digest}"
    entry = _lru_get(key)
    if entry is not None:
        return entry, "lru"
    series = af.to_hourly(secs, kw, interval_s=interval_s)
    try:
        entry = af.forecast_power(series, af.MAX_HORIZON).as_dict()
    except af.AssetDataError as exc:
        raise _bad(exc.code, "historical_data", exc.message) from None
    entry["source"] = "historical_data"
    _lru_put(key, entry)
    return entry, "computed"


def asset_forecast_warm(*, hour: datetime | None = None) -> dict:
    """Fill the cache with every site's and zone's forecast as a whole-site view sees it (what operators ask for;
    clients' and miners' views are computed on their first request of the hour)."""
    from sites.models import Site, Zone

    hour = hour or data_hour()
    warmed = failed = 0
    for kind, ids in (("site", Site.objects.values_list("pk", flat=True)),
                      ("zone", Zone.objects.values_list("pk", flat=True))):  # fmt: skip
        for pk in ids:
            parts = {"asset": f"{kind}:{pk}", "view": "all", "hour": _hour_tag(hour)}
            try:
                cache_helper.build_and_store("asset_forecast", **parts)
                warmed += 1
            except Exception:
                log.warning("asset forecast warm-up failed", extra={"asset": parts["asset"]}, exc_info=True)
                failed += 1
    return {"warmed": warmed, "failed": failed, "hour": hour.isoformat()}


# --- the request -----------------------------------------------------------------------------------------------------


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_horizon(raw) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= af.MAX_HORIZON:
        raise _bad("invalid_horizon", "forecast_horizon",
                   f"forecast_horizon must be a whole number of hours from 1 to {af.MAX_HORIZON}.")  # fmt: skip
    return raw


def parse_interval(raw) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 1440:
        raise _bad("invalid_interval", "interval_minutes", "interval_minutes must be a whole number from 1 to 1440.")
    return raw


def _parse_ts(ts) -> datetime | None:
    """ISO-8601 as posted; the C parser first (Python 3.11 reads "Z" and offsets), Django's for the rest."""
    if not isinstance(ts, str) or len(ts) > 40:
        return None
    try:
        return datetime.fromisoformat(ts)
    except ValueError:
        pass
    try:
        return parse_datetime(ts)
    except ValueError:  # well formed but not a date (month 13)
        return None


def parse_historical(raw, interval_minutes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The posted ``[{"ts", "power_kw"}]`` as sorted epoch seconds and kW; a 400 naming the point otherwise."""
    if not isinstance(raw, list):
        raise _bad("invalid_historical_data", "historical_data", "historical_data must be a list of {ts, power_kw}.")
    if len(raw) > MAX_POINTS:
        raise _bad("too_many_points", "historical_data", f"historical_data may have at most {MAX_POINTS} points.")
    if len(raw) < af.MIN_HOURS:
        raise _bad("too_few_points", "historical_data", f"historical_data needs at least {af.MIN_HOURS} points.")
    secs = np.empty(len(raw))
    kw = np.empty(len(raw))
    for i, point in enumerate(raw):
        if not isinstance(point, dict):
            raise _bad("invalid_historical_data", "historical_data", "Each point must be {ts, power_kw}.", index=i)
        ts = point.get("ts")
        parsed = _parse_ts(ts)
        if parsed is None:
            raise _bad("invalid_ts", "historical_data.ts", "ts must be an ISO-8601 date and time.", index=i)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = _number(point.get("power_kw"))
        if value is None or not math.isfinite(value):
            raise _bad("invalid_value", "historical_data.power_kw", "power_kw must be a finite number (not NaN).",
                       index=i)  # fmt: skip
        if value < 0:
            raise _bad("negative_value", "historical_data.power_kw", "power_kw cannot be negative.", index=i)
        secs[i], kw[i] = parsed.timestamp(), value
    order = np.argsort(secs, kind="stable")
    secs, kw = secs[order], kw[order]
    if np.any(np.diff(secs) == 0):
        raise _bad("duplicate_ts", "historical_data.ts", "Two points have the same ts.")
    if interval_minutes is not None and len(secs) > 1:
        step = float(np.median(np.diff(secs)))
        if abs(step - interval_minutes * 60) > 1:
            raise _bad("interval_mismatch", "interval_minutes",
                       f"The points are {step / 60:g} minutes apart, not {interval_minutes}.")  # fmt: skip
    if secs[-1] - secs[0] > 400 * 86400:
        raise _bad("invalid_ts", "historical_data.ts", "The points span more than 400 days.")
    return secs, kw


def asset_predict(*, user, asset_id: str, body) -> dict:
    """The answer of ``POST /api/v1/assets/{asset_id}/predict`` (a hidden asset is a 404 before the body is read)."""
    from intelligence.api.anomaly_views import parse_asset_id, visible_asset

    kind, pk = parse_asset_id(asset_id)
    visible_asset(user=user, kind=kind, pk=pk)
    if not isinstance(body, dict):
        raise _bad("invalid_body", "body", "The body must be a JSON object.")
    horizon = parse_horizon(body.get("forecast_horizon"))
    interval = parse_interval(body.get("interval_minutes"))
    raw = body.get("historical_data")
    if raw is not None:
        secs, kw = parse_historical(raw, interval)
        entry, served = posted_forecast(secs, kw, interval * 60 if interval else None)
    else:
        hour = data_hour()
        entry, served = history_forecast(kind=kind, pk=pk, view=view_of(user), hour=hour)
        if "error" in entry:
            raise DomainError(
                "not_enough_history" if entry["error"] == "too_few_points" else entry["error"],
                f"{entry['message']} (the asset's history, source: {entry['source']}); post historical_data instead.",
                details={"field": "historical_data", "source": entry["source"]},
            )  # fmt: skip
    fc = af.AssetForecast.from_dict(entry).head(horizon)
    return {
        "asset_id": f"{kind}:{pk}",
        "unit": {"power": "kW", "energy": "kWh"},
        "forecast_horizon": horizon,
        "source": entry.get("source", ""),
        "method": fc.method,
        "fallback_reason": fc.reason,
        "history_hours": fc.history_hours,
        "served_from": served,
        "points": fc.points(),
        "total": fc.energy_total(),
        "generated_at": datetime.now(UTC).isoformat(),
    }
