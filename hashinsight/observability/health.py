"""Health figures for /api/health and the readiness check for /ready."""

from __future__ import annotations

import time
from datetime import timedelta

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
            # Filled by the intelligence milestone (forecast and optimizer runs record their timings).
            "forecast_latency": None,
            "optimization_runtime": None,
            "roi_drift": None,
            # Informational: a missing or stale market feed is reported here, never makes the service degraded.
            "market_data": _market_data(),
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
