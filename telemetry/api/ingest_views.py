"""Edge ingest: sample batches and safety events, authenticated by the device token.

The body is read here, not by a DRF parser: it may be gzip'd, and decompression must stop at a hard
limit (a zip bomb answers 413 having cost at most that much memory). Every refusal of the whole
request (413, 400, 415, 503) has the standard error shape; single samples are refused in the answer's
``rejected`` list instead.

Each answer carries a ``Server-Timing`` header (auth, parse, validate, write, live, commit, total, and cpu:
the request thread's CPU time inside the view) so the benchmark reports where the time goes from the
server's own clocks."""

from __future__ import annotations

import gc
import time
import zlib
from contextlib import contextmanager

import orjson
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from hashinsight.core.api.parsers import RequestTooLarge, refuse_nul
from hashinsight.core.errors import DomainError
from telemetry.edge_auth import EdgeDeviceView
from telemetry.ingest import MAX_SAMPLES, validate_samples
from telemetry.ingest_store import fresher_miner_map, miner_map, store_batch
from telemetry.safety import MAX_EVENTS, store_safety_events, validate_safety_events

# 5,000 samples are ~2 MB of JSON; the limit applies to the body as sent and, again, once decompressed.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_SAFETY_BODY_BYTES = 2 * 1024 * 1024


def read_json_body(request, *, limit: int):
    """The request's JSON document (gzip'd or not), never holding more than ``limit`` bytes of it."""
    django_request = request._request
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError(_("Malformed Content-Length header.")) from None
    if declared > limit:
        raise RequestTooLarge()
    body = django_request.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge()
    encoding = django_request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding == "gzip":
        body = gunzip_capped(body, limit=limit)
    elif encoding not in ("", "identity"):
        raise exceptions.UnsupportedMediaType(encoding, detail=_("Content-Encoding must be gzip or identity."))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None


def gunzip_capped(data: bytes, *, limit: int) -> bytes:
    """Decompress one gzip member, refusing (413) output beyond ``limit`` before producing more."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error:
        raise exceptions.ParseError(_("The gzip body could not be decompressed.")) from None
    if len(out) > limit:
        raise RequestTooLarge(_("The request body is too large once decompressed."))
    if not decompressor.eof:
        raise exceptions.ParseError(_("The gzip body is truncated."))
    if decompressor.unused_data:
        raise exceptions.ParseError(_("The gzip body has data after its end (send a single gzip member)."))
    return out


def _list_field(data, name: str, maximum: int) -> list:
    if not isinstance(data, dict):
        raise DomainError("invalid_body", f'The body must be a JSON object with a "{name}" list.', status=400)
    items = data.get(name)
    if not isinstance(items, list):
        raise DomainError("invalid_body", f'"{name}" must be a list.', status=400)
    if len(items) > maximum:
        raise DomainError(
            f"too_many_{name}", f"At most {maximum} {name} per request; split the batch.", status=400,
            details={"max": maximum, "received": len(items)},
        )  # fmt: skip
    return items


def _unknown_serials(rejected: list[dict]) -> set[str]:
    return {r["miner"] for r in rejected if r["reason"] == "unknown_miner" and r["miner"] is not None}


def _server_timing(timings: dict) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in timings.items())


def _json_response(body: dict, timings: dict) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), content_type="application/json")
    response["Server-Timing"] = _server_timing(timings)
    return response


_BATCH_RESULT = OpenApiTypes.OBJECT


@contextmanager
def cyclic_gc_paused():
    """No cyclic garbage collection while a batch is handled. Its thousands of dicts and lists (acyclic,
    freed by reference counting when the request ends) otherwise trigger full collections that scan
    every object of the process: measured at ~30 ms of a ~40 ms request's CPU. The collector runs as
    usual afterwards; a concurrent request that also paused it just finds it paused."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class _TimedEdgeView(EdgeDeviceView, APIView):
    def initial(self, request, *args, **kwargs):
        self.cpu_started = time.thread_time()
        started = time.perf_counter()
        super().initial(request, *args, **kwargs)  # authenticates the device: one indexed read
        self.timings = {"auth": time.perf_counter() - started}

    def finish_timings(self, started: float) -> dict:
        self.timings["total"] = time.perf_counter() - started + self.timings["auth"]
        self.timings["cpu"] = time.thread_time() - self.cpu_started  # this request's own CPU, in the view
        return self.timings


class TelemetryIngestView(_TimedEdgeView):
    @extend_schema(
        summary="Push a batch of samples (at most 5,000; gzip accepted)",
        request=OpenApiTypes.OBJECT,
        responses={200: _BATCH_RESULT},
        examples=[
            OpenApiExample(
                "batch",
                request_only=True,
                value={
                    "samples": [
                        {
                            "miner": "S19-000123",
                            "ts": "2026-11-26T00:00:00Z",
                            "hashrate_ths": 110.2,
                            "temp_chip_max_c": 71.5,
                            "temp_inlet_c": 24.0,
                            "temp_outlet_c": 45.5,
                            "fan_rpm": [6000, 6020],
                            "power_w": 3250,
                            "status": "hashing",
                            "accepted_shares": 1024,
                            "rejected_shares": 3,
                            "errors": [],
                        }
                    ]
                },
            ),
            OpenApiExample(
                "result",
                response_only=True,
                value={
                    "accepted": 998,
                    "duplicates": 1,
                    "rejected": [{"index": 7, "miner": "X", "reason": "unknown_miner"}],
                },
            ),
        ],
    )
    def post(self, request):
        with cyclic_gc_paused():
            return self._ingest(request)

    def _ingest(self, request):
        timings = self.timings
        started = time.perf_counter()
        samples = _list_field(read_json_body(request, limit=MAX_BODY_BYTES), "samples", MAX_SAMPLES)
        parsed = time.perf_counter()
        site_id = self.device.site_id
        now = timezone.now()
        miners = miner_map(site_id)
        validated = validate_samples(samples, miners, now)
        unknown = _unknown_serials(validated.rejected)
        if unknown and (fresher := fresher_miner_map(site_id, unknown)) is not None:
            validated = validate_samples(samples, fresher, now)  # miners added in the last few seconds
        validated_at = time.perf_counter()
        result = store_batch(site_id=site_id, device_id=self.device.pk, validated=validated, timings=timings)
        timings["parse"] = parsed - started
        timings["validate"] = validated_at - parsed
        body = {"accepted": result.inserted, "duplicates": result.duplicates, "rejected": validated.rejected}
        return _json_response(body, self.finish_timings(started))


class SafetyEventBatchView(_TimedEdgeView):
    @extend_schema(
        summary="Report safety events (at most 500): overheat shutdown, fan failure, power loss, hashboard failure",
        request=OpenApiTypes.OBJECT,
        responses={200: _BATCH_RESULT},
        examples=[
            OpenApiExample(
                "batch",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "c0ffee-1",
                            "miner": "S19-000123",
                            "kind": "overheat_shutdown",
                            "ts": "2026-11-26T00:00:00Z",
                            "details": {"temp_chip_max_c": 96.5},
                        }
                    ]
                },
            ),
        ],
    )
    def post(self, request):
        started = time.perf_counter()
        data = read_json_body(request, limit=MAX_SAFETY_BODY_BYTES)
        events = _list_field(data, "events", MAX_EVENTS)
        refuse_nul(events)  # details are stored as they came; PostgreSQL refuses NUL in text
        site_id = self.device.site_id
        now = timezone.now()
        miners = miner_map(site_id)
        valid, rejected = validate_safety_events(events, miners, now)
        unknown = _unknown_serials(rejected)
        if unknown and (fresher := fresher_miner_map(site_id, unknown)) is not None:
            valid, rejected = validate_safety_events(events, fresher, now)
        created, duplicates = store_safety_events(device=self.device, events=valid)
        body = {"accepted": len(created), "duplicates": duplicates, "rejected": rejected}
        return _json_response(body, self.finish_timings(started))
