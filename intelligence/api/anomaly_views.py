"""``POST /api/v1/assets/{asset_id}/detect_anomalies``: anomalies in a series, with their reasons in words.

An asset is a site, a zone or a miner (``site:1``, ``zone:3``, ``miner:12``), looked up in the caller's scope (a
hidden one is a 404, whatever the body says). The series is the posted ``data_stream`` (``[{"ts", "value"}]``,
any regular step) or, without one, the asset's own 5-minute history of ``metric`` over the scan's days (a zone or
site: the sum of the hashrate or power of the miners the caller sees, their mean chip temperature). Detection is
the anomaly scan's: robust z by MAD, against a daily season when the series spans two days or more, in the
metric's direction (hashrate: drops; chip temperature: rises; power and a posted stream without a metric: both).

Nothing is written: a computation, so the ANALYTICS module's READ is enough."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.db.models import Avg, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.errors import DomainError
from intelligence import anomaly_scan as scan
from intelligence.algorithms.anomaly import DAILY_PERIOD_5MIN, detect

MAX_POINTS = 20_000  # 70 days of 5-minute points
MIN_POINTS = 24
MAX_GRID = 4 * MAX_POINTS  # a stream with gaps is laid on its regular step; this many steps at most
MAX_LIMIT = 1000
ASSET_KINDS = ("site", "zone", "miner")


def _bad(code: str, field: str, message: str, **details) -> DomainError:
    return DomainError(code, message, details={"field": field, **details})


def parse_asset_id(asset_id: str) -> tuple[str, int]:
    kind, sep, raw = str(asset_id).partition(":")
    if not sep or kind not in ASSET_KINDS or not raw.isdigit() or len(raw) > 12:
        raise _bad("invalid_asset_id", "asset_id", "asset_id must be site:<id>, zone:<id> or miner:<id>.")
    return kind, int(raw)


def visible_asset(*, user, kind: str, pk: int):
    """The site, zone or miner if ``user`` sees it; else 404 (no existence leak)."""
    from miners.selectors import miner_list
    from sites.selectors import site_list, zone_list

    qs = {"site": site_list, "zone": zone_list, "miner": miner_list}[kind](user=user)
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No such {kind}.")
    return obj


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_stream(raw) -> tuple[np.ndarray, np.ndarray]:
    """The posted points (epoch seconds, values), sorted by time; 400 naming ``data_stream`` (and the index) when
    one is not right."""
    if not isinstance(raw, list):
        raise _bad("invalid_data_stream", "data_stream", "data_stream must be a list of {ts, value} objects.")
    if len(raw) < MIN_POINTS:
        raise _bad("data_stream_too_short", "data_stream", f"data_stream needs at least {MIN_POINTS} points.")
    if len(raw) > MAX_POINTS:
        raise _bad("data_stream_too_long", "data_stream", f"data_stream may have at most {MAX_POINTS} points.")
    times, values = [], []
    for i, point in enumerate(raw):
        if not isinstance(point, dict):
            raise _bad("invalid_data_stream", "data_stream", "Each point must be an object {ts, value}.", index=i)
        ts = point.get("ts")
        try:
            parsed = parse_datetime(ts) if isinstance(ts, str) and len(ts) <= 40 else None
        except ValueError:  # well formed but not a date (month 13)
            parsed = None
        if parsed is None:
            raise _bad("invalid_ts", "data_stream.ts", "ts must be an ISO-8601 date and time.", index=i)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = _number(point.get("value"))
        if value is None:
            raise _bad("invalid_value", "data_stream.value", "value must be a finite number.", index=i)
        times.append(parsed.astimezone(UTC))
        values.append(value)
    secs = np.array([t.timestamp() for t in times])
    order = np.argsort(secs, kind="stable")
    secs = secs[order]
    if np.any(np.diff(secs) == 0):
        raise _bad("invalid_ts", "data_stream.ts", "Two points have the same ts.")
    return secs, np.asarray(values, dtype=float)[order]


def on_grid(secs: np.ndarray, values: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray, int | None]:
    """The points laid on their regular step (the median gap; NaN where one is missing) and the daily period in
    steps when the step divides a day and the series spans two days."""
    step_s = float(np.median(np.diff(secs)))
    if step_s < 1:
        raise _bad("invalid_ts", "data_stream.ts", "Points must be at least a second apart.")
    k = np.rint((secs - secs[0]) / step_s).astype(np.int64)
    if k[-1] + 1 > MAX_GRID:
        raise _bad("invalid_ts", "data_stream.ts", "The points are too irregular: gaps far longer than their step.")
    grid = pd.to_datetime(secs[0] + np.arange(k[-1] + 1) * step_s, unit="s", utc=True)
    out = np.full(len(grid), np.nan)
    out[k] = values  # two points in one step: the later one
    period = None
    if 86400 % step_s == 0:
        p = int(86400 // step_s)
        period = p if p >= 2 and len(grid) >= 2 * p else None
    return grid, out, period


def asset_history(*, user, kind: str, obj, metric: scan.Metric) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The asset's 5-minute series of ``metric`` from midnight UTC ``history_days`` ago (one query)."""
    from sites.selectors import scope_of
    from telemetry.models import History5m

    now = timezone.now()
    end = scan._floor(now)
    start, n = scan.grid_for(end)
    qs = History5m.objects.filter(bucket__gte=start, bucket__lt=end)
    qs = qs.filter(**{"miner_id": obj.pk} if kind == "miner" else {f"miner__{kind}_id": obj.pk})
    q = scope_of(user).q(prefix="miner__")
    if q is not None:
        qs = qs.filter(q)
    if metric.needs_hashing:
        qs = qs.filter(uptime_fraction__gte=scan.HASHING_MIN_UPTIME)
    agg = Avg(metric.column) if metric.unit == "°C" else Sum(metric.column)
    rows = qs.values("bucket").annotate(v=agg).order_by("bucket").values_list("bucket", "v")
    values = np.full(n, np.nan)
    for bucket, v in rows:
        i = int((bucket - start) / timedelta(minutes=5))
        if 0 <= i < n and v is not None:
            values[i] = v
    grid = pd.date_range(start, periods=n, freq="5min")
    return grid, values


def _limit(raw) -> int:
    if raw is None:
        return 100
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_LIMIT:
        raise _bad("invalid_limit", "limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return raw


class DetectAnomaliesView(APIView):
    module = Module.ANALYTICS
    permission_classes = [ModuleAccess]
    detail = True  # a computation that writes nothing: READ on the module is enough for this POST

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Anomalies in an asset's series (posted data_stream or its own history), with reasons",
    )
    def post(self, request, asset_id: str):
        """Body: ``{"data_stream": [{"ts": "2026-11-26T00:00:00Z", "value": 198.2}, …], "metric": "hashrate" |
        "temperature" | "power", "limit": 100}`` (all optional; without ``data_stream`` the asset's own history).
        Answer: the anomalous points, highest score first, each with ts, value, expected, score (robust |z|),
        severity (info/warning/critical) and the reason in words."""
        kind, pk = parse_asset_id(asset_id)
        obj = visible_asset(user=request.user, kind=kind, pk=pk)
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise _bad("invalid_body", "body", "The body must be a JSON object.")
        metric_key = body.get("metric")
        if metric_key is not None and metric_key not in scan.METRIC_BY_KEY:
            raise _bad("invalid_metric", "metric", f"metric must be one of {', '.join(scan.METRIC_BY_KEY)}.")
        metric = scan.METRIC_BY_KEY.get(metric_key or "hashrate")
        limit = _limit(body.get("limit"))
        stream = body.get("data_stream")
        if stream is not None:
            secs, values = parse_stream(stream)
            grid, series, period = on_grid(secs, values)
            direction = metric.direction if metric_key else "both"
            source = "data_stream"
        else:
            grid, series = asset_history(user=request.user, kind=kind, obj=obj, metric=metric)
            seasonal = len(grid) >= 2 * DAILY_PERIOD_5MIN and np.sum(~np.isnan(series)) >= scan.SEASONAL_MIN_POINTS
            period = DAILY_PERIOD_5MIN if seasonal else None
            direction = metric.direction
            source = "history"
        known = int(np.sum(~np.isnan(series)))
        if known < MIN_POINTS:
            raise _bad("not_enough_data", "data_stream", f"At least {MIN_POINTS} points with a value are needed.")
        named = bool(metric_key) or source == "history"  # a posted stream without a metric is just "value"
        points = detect(
            series, method="mad", period=period, timestamps=grid, metric=metric.label if named else "value",
            unit=metric.unit if named else "", direction=direction,
        )  # fmt: skip
        return Response(
            {
                "asset_id": f"{kind}:{pk}",
                "metric": metric.key if named else None,
                "unit": metric.unit if named else "",
                "source": source,
                "points": known,
                "detector": "mad_seasonal" if period else "mad",
                "count": len(points),
                "anomalies": [
                    {
                        "ts": p.timestamp.isoformat() if p.timestamp is not None else None,
                        "value": round(p.value, 6),
                        "expected": round(p.expected, 6),
                        "score": round(p.score, 3),
                        "severity": p.severity,
                        "reason": p.reason,
                    }
                    for p in points[:limit]
                ],
                "generated_at": datetime.now(UTC).isoformat(),
            }
        )
