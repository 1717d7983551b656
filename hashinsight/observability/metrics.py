"""Prometheus metrics. Per-process instruments (request durations, WebSocket connections) plus a
collector that reads shared state (outbox, jobs, failures) from the database at scrape time, so
every web replica reports the same cluster-wide figures whichever process ran the work."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_DURATION = Histogram(
    "hashinsight_http_request_duration_seconds",
    "HTTP request duration by route and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
WEBSOCKET_CONNECTIONS = Gauge(
    "hashinsight_websocket_connections", "Open WebSocket connections in this process.", registry=REGISTRY
)


def _database_figures() -> dict:
    """The cluster-wide figures, as plain data (cacheable): four queries."""
    from django.db.models import Count, Sum
    from django.utils import timezone

    from hashinsight.events.models import EventFailure, JobRun, OutboxEvent

    now = timezone.now()
    since = now - timedelta(hours=24)
    # Counts and run time per type and status in one read; the run time is then summed per type.
    recent = list(
        JobRun.objects.filter(created_at__gte=since)
        .values("job_type", "status")
        .annotate(n=Count("id"), ms=Sum("duration_ms"))
        .order_by()
    )
    ms: dict[str, int] = {}
    for r in recent:
        ms[r["job_type"]] = ms.get(r["job_type"], 0) + (r["ms"] or 0)
    return {
        "outbox": [(r["status"], r["n"]) for r in OutboxEvent.objects.values("status").annotate(n=Count("pk"))],
        "runs": [(r["job_type"], r["status"], r["n"]) for r in recent],
        "durations": [(job_type, total / 1000) for job_type, total in ms.items()],
        "failures": EventFailure.objects.filter(created_at__gte=since).count(),
        "done_1m": OutboxEvent.objects.filter(finished_at__gte=now - timedelta(minutes=1)).count(),
    }


def database_figures() -> dict:
    """``_database_figures`` through the shared cache for METRICS_DB_CACHE_S: a scrape (or an
    anonymous hit, where /metrics is public) costs at most one cache read most of the time, and
    every web replica serves the same figures. A cache that is down only costs the queries."""
    from django.conf import settings
    from django.core.cache import cache

    ttl = settings.METRICS_DB_CACHE_S
    if ttl <= 0:
        return _database_figures()
    try:
        figures = cache.get("metrics:database")
    except Exception:
        return _database_figures()
    if figures is None:
        figures = _database_figures()
        with contextlib.suppress(Exception):
            cache.set("metrics:database", figures, timeout=ttl)
    return figures


class DatabaseCollector:
    def describe(self):
        return []  # nothing to query at registration (import) time; families appear on scrape

    def collect(self):
        figures = database_figures()
        backlog = GaugeMetricFamily("hashinsight_outbox_events", "Outbox events by status.", labels=["status"])
        for status, n in figures["outbox"]:
            backlog.add_metric([status], n)
        yield backlog
        runs = CounterMetricFamily(
            "hashinsight_job_runs_24h", "Job runs in the last 24 h by type and status.", labels=["job_type", "status"]
        )
        duration = GaugeMetricFamily(
            "hashinsight_job_duration_seconds_sum_24h", "Total job run time in the last 24 h.", labels=["job_type"]
        )
        for job_type, status, n in figures["runs"]:
            runs.add_metric([job_type, status], n)
        for job_type, seconds in figures["durations"]:
            duration.add_metric([job_type], seconds)
        yield runs
        yield duration
        failures = GaugeMetricFamily("hashinsight_event_failures_24h", "Events that exhausted their retries, 24 h.")
        failures.add_metric([], figures["failures"])
        yield failures
        processed = CounterMetricFamily(
            "hashinsight_events_done_1m", "Events finished in the last minute (ingest/processing rate)."
        )
        processed.add_metric([], figures["done_1m"])
        yield processed


REGISTRY.register(DatabaseCollector())


class MetricsMiddleware:
    """Times every request, labelled by the URL pattern (not the raw path, to bound cardinality)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else ("unmatched" if response.status_code == 404 else "other")
        REQUEST_DURATION.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - start)
        return response
