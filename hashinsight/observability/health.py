"""Health figures for /api/health and the readiness check for /ready."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone


def _timed(fn):
    start = time.perf_counter()
    try:
        detail = fn()
        return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2), **(detail or {})}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def check_database():
    def ping():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    return _timed(ping)


def check_redis():
    if not settings.REDIS_URL:
        return {"ok": True, "configured": False}

    def ping():
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping()

    return _timed(ping)


def check_broker():
    def ping():
        from hashinsight.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return {"transport": app.conf.broker_url.split(":", 1)[0]}

    return _timed(ping)


def check_worker():
    from hashinsight.observability.heartbeat import stale_before
    from hashinsight.observability.models import WorkerHeartbeat

    last = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if last is None:
        return {"ok": False, "last_heartbeat": None, "age_s": None}
    age = (timezone.now() - last).total_seconds()
    # Each worker beats from a thread of its own (observability/heartbeat.py): three missed beats mean
    # no worker is alive, not merely that the workers are busy.
    return {"ok": last >= stale_before(), "last_heartbeat": last.isoformat(), "age_s": round(age, 1)}


def health() -> dict:
    from hashinsight.events.models import EventFailure, JobRun
    from hashinsight.events.outbox import backlog

    database = check_database()
    body = {
        "database": database,
        "redis": check_redis(),
        "broker": check_broker(),
    }
    if database["ok"]:
        since = timezone.now() - timedelta(hours=24)
        body |= {
            "worker": check_worker(),
            "outbox_backlog": backlog(),
            "task_failures": EventFailure.objects.filter(created_at__gte=since).count()
            + JobRun.objects.filter(created_at__gte=since, status=JobRun.Status.FAILED).count(),
            # The intelligence layer's figures (each null with a ``<field>_reason`` when there is no data).
            **intelligence_figures(),
            # Informational: a missing or stale market feed is reported here, never makes the service degraded.
            "market_data": _market_data(),
            # Informational too: per site in POWER_PRICE_FEEDS, its newest prices and the last refresh's outcome.
            "power_price_feeds": _power_price_feeds(),
        }
    checks = [body["database"], body["redis"], body["broker"], body.get("worker", {"ok": False})]
    body["status"] = "down" if not database["ok"] else ("ok" if all(c["ok"] for c in checks) else "degraded")
    body["time"] = timezone.now().isoformat()
    return body


def ready() -> tuple[bool, dict]:
    checks = {"database": check_database(), "redis": check_redis()}
    return all(c["ok"] for c in checks.values()), checks


def _market_data():
    from intelligence.market_data import market_health

    return market_health()


def _power_price_feeds():
    from intelligence.power_feeds import power_feeds_health

    return power_feeds_health()


# --- the intelligence layer's figures ------------------------------------------------------------------------------
#
# Each is an object with its unit and ``measured_at`` (when the figure was measured, not when health was asked), or
# null next to ``<field>_reason`` saying why. They are read from what the forecast code, the plan store and the smart
# alerts job already recorded — a cache read and one small indexed query — and cached together for
# ``INTELLIGENCE_FIGURES_S``; nothing is computed for the health request itself, and a failure of one figure reports
# that figure as null with the error's name, never a failed health check.

INTELLIGENCE_FIGURES_S = 60
FORECAST_LATENCY_WINDOW = timedelta(days=7)  # builds older than this say nothing about the service now
OPTIMIZATION_PLANS = 20  # the median over the latest this many plans


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a sorted, non-empty list."""
    import math

    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _forecast_latency():
    from intelligence.forecasting import build_timings

    since = timezone.now() - FORECAST_LATENCY_WINDOW
    samples = [(t, ms, kind) for t, ms, kind in build_timings() if t >= since.timestamp()]
    if not samples:
        return None, "no forecast built in the last 7 days"
    values = sorted(ms for _t, ms, _kind in samples)
    newest = max(t for t, _ms, _kind in samples)
    return {
        "unit": "ms",
        "of": "forecast builds (forecast:{user} and revenue_forecast:{subject} entries, build to cache)",
        "p50": round(_percentile(values, 50), 1),
        "p95": round(_percentile(values, 95), 1),
        "max": round(values[-1], 1),
        "samples": len(values),
        "measured_at": datetime.fromtimestamp(newest, tz=UTC).isoformat(timespec="seconds"),
    }, ""


def _optimization_runtime():
    import statistics

    from intelligence.models import CurtailmentPlan

    rows = list(
        CurtailmentPlan.objects.exclude(solver={})
        .order_by("-created_at", "-pk")
        .values_list("solver", "created_at")[:OPTIMIZATION_PLANS]
    )
    runtimes = [float(s["runtime_s"]) for s, _at in rows if isinstance(s, dict) and s.get("runtime_s") is not None]
    if not runtimes:
        return None, "no curtailment plan solved yet"
    return {
        "unit": "s",
        "of": "curtailment plan solves (build + CBC), median of the latest plans",
        "median": round(statistics.median(runtimes), 4),
        "max": round(max(runtimes), 4),
        "plans": len(runtimes),
        "measured_at": rows[0][1].isoformat(timespec="seconds"),
    }, ""


def _roi_drift():
    from django.core.cache import cache

    from hashinsight.core.cache import cache_key

    drift = cache.get(cache_key("roi_drift"))
    if not drift:
        return None, "not measured yet: the smart alerts job records it"
    if drift.get("value") is None:
        return None, drift.get("reason") or "no profit in the earlier period to compare with"
    return drift, ""


def intelligence_figures() -> dict:
    """``forecast_latency``, ``optimization_runtime`` and ``roi_drift`` (and a ``<field>_reason`` for each null)."""
    from django.core.cache import cache

    from hashinsight.core.cache import cache_key

    key = cache_key("health_intelligence")
    try:
        cached = cache.get(key)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    body = {}
    for field, fn in (
        ("forecast_latency", _forecast_latency),
        ("optimization_runtime", _optimization_runtime),
        ("roi_drift", _roi_drift),
    ):
        try:
            value, reason = fn()
        except Exception as exc:  # a figure that cannot be read is reported, never a failed health check
            value, reason = None, f"unavailable: {type(exc).__name__}"
        body[field] = value
        if value is None:
            body[f"{field}_reason"] = reason
    try:
        cache.set(key, body, INTELLIGENCE_FIGURES_S)
    except Exception:  # the cache down: the figures are still answered, only recomputed next time
        logging.getLogger(__name__).warning("health figures not cached", extra={"cache_key": key})
    return body
