"""/api/edge/v1/ identity endpoints: register (an enrollment code for credentials), health (the
collector's self-report) and inventory (the miners it should poll)."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from hashinsight.core.errors import DomainError
from miners.models import Miner
from telemetry import devices
from telemetry.edge_auth import EdgeDeviceView


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """Names the edge device token in the schema (otherwise drf-spectacular warns on every edge view)."""

    target_class = "telemetry.edge_auth.DeviceTokenAuthentication"
    name = "edgeDeviceToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "hie_<prefix>_<secret>"}


INVENTORY_PAGE_DEFAULT = 1000
INVENTORY_PAGE_MAX = 5000


class RegisterSerializer(serializers.Serializer):
    enrollment_code = serializers.CharField(max_length=64, trim_whitespace=True)
    name = serializers.CharField(max_length=devices.NAME_MAX_CHARS)
    version = serializers.CharField(max_length=devices.VERSION_MAX_CHARS, required=False, allow_blank=True)


class SiteRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class RegisteredSerializer(serializers.Serializer):
    device_id = serializers.IntegerField()
    site_id = serializers.IntegerField()
    zone_id = serializers.IntegerField(allow_null=True)
    token = serializers.CharField(help_text="Bearer token for every other edge call; shown only this once.")
    hmac_secret = serializers.CharField(help_text="Base64url HMAC-SHA256 key for signed commands; shown once.")
    site = SiteRefSerializer()


def credentials_body(device, token: str, hmac_secret: str) -> dict:
    return {
        "device_id": device.pk, "site_id": device.site_id, "zone_id": device.zone_id, "token": token,
        "hmac_secret": hmac_secret, "site": {"slug": device.site.slug, "name": device.site.name},
    }  # fmt: skip


def no_store(response: Response) -> Response:
    """A response carrying a secret is never kept by a cache."""
    response["Cache-Control"] = "no-store"
    return response


class RegisterView(APIView):
    """Exchange a one-time enrollment code for this collector's token and HMAC secret (shown once).
    No authentication; throttled per address (scope ``edge_register``)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "edge_register"

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer}, auth=[])
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # The device's address is recorded by its first authenticated request (last_seen_at/ip together).
        device, token, hmac_secret = devices.device_register(
            code=data["enrollment_code"], name=data["name"], version=data.get("version", "")
        )
        return no_store(Response(credentials_body(device, token, hmac_secret), status=status.HTTP_201_CREATED))


class HealthSerializer(serializers.Serializer):
    """Documentation of the body; ``telemetry.devices.clean_health`` validates it (the same rules as a
    report arriving any other way). Unknown keys are ignored."""

    version = serializers.CharField(required=False, max_length=devices.VERSION_MAX_CHARS)
    spool_depth = serializers.IntegerField(required=False, min_value=0, help_text="samples waiting in the spool")
    poll_errors = serializers.IntegerField(required=False, min_value=0, help_text="failed polls since last report")
    push_errors = serializers.IntegerField(required=False, min_value=0, help_text="failed pushes since last report")
    miners_polled = serializers.IntegerField(required=False, min_value=0)
    miners_total = serializers.IntegerField(required=False, min_value=0)
    uptime_s = serializers.IntegerField(required=False, min_value=0, help_text="seconds since the collector started")
    last_push_at = serializers.DateTimeField(required=False)
    last_poll_at = serializers.DateTimeField(required=False)
    last_error = serializers.CharField(required=False, max_length=devices.HEALTH_TEXT_MAX_CHARS)


class HealthView(EdgeDeviceView, APIView):
    """The collector's report about itself, stored on the device (the previous one is replaced)."""

    @extend_schema(
        request=HealthSerializer,
        responses={200: inline_serializer("EdgeHealthStored", {"health": serializers.DictField()})},
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise DomainError("invalid_health", "The health report must be a JSON object.")
        health = {key: value for key, value in body.items() if key != "version"}
        device = devices.device_report_health(device=self.device, health=health, version=body.get("version"))
        return Response({"health": device.health})


class InventoryMinerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    serial = serializers.CharField()
    model = serializers.CharField(help_text="model code from the catalog")
    zone_id = serializers.IntegerField()
    status = serializers.CharField()
    ip = serializers.CharField(help_text="network address to poll; empty when not recorded")
    hashrate_ths = serializers.FloatField(help_text="nominal hashrate (TH/s)")
    power_w = serializers.FloatField(help_text="nominal power (W)")


class InventoryView(EdgeDeviceView, APIView):
    """The miners this device polls: its site's (only its zone's if it has one), retired ones left out.
    Keyset-paginated by id: pass ``after`` = the previous page's ``next_after`` until it is null."""

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="return miners with a larger id (keyset cursor)"),
            OpenApiParameter("limit", int, description=f"page size, at most {INVENTORY_PAGE_MAX}"),
        ],
        responses={
            200: inline_serializer(
                "EdgeInventory",
                {
                    "site_id": serializers.IntegerField(),
                    "zone_id": serializers.IntegerField(allow_null=True),
                    "miners": InventoryMinerSerializer(many=True),
                    "next_after": serializers.IntegerField(allow_null=True),
                    "next": serializers.CharField(allow_null=True, help_text="path of the next page, or null"),
                },
            )
        },
    )
    def get(self, request):
        after = _int_param(request, "after", default=0, low=0, high=2**63 - 1)
        limit = _int_param(request, "limit", default=INVENTORY_PAGE_DEFAULT, low=1, high=INVENTORY_PAGE_MAX)
        device = self.device
        qs = Miner.objects.filter(site_id=device.site_id, pk__gt=after).exclude(status=Miner.Status.RETIRED)
        if device.zone_id is not None:
            qs = qs.filter(zone_id=device.zone_id)
        rows = list(qs.select_related("model").order_by("pk")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        miners = [_inventory_row(m) for m in rows]
        next_after = rows[-1].pk if more else None
        return Response(
            {
                "site_id": device.site_id,
                "zone_id": device.zone_id,
                "miners": miners,
                "next_after": next_after,
                "next": f"{request.path}?{urlencode({'after': next_after, 'limit': limit})}" if more else None,
            }
        )


def _inventory_row(m: Miner) -> dict:
    return {
        "id": m.pk, "serial": m.serial, "model": m.model.code, "zone_id": m.zone_id, "status": m.status,
        "ip": m.get_identity().get("ip", ""), "hashrate_ths": float(m.model.hashrate_ths),
        "power_w": float(m.model.power_w),
    }  # fmt: skip


def _int_param(request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise DomainError(
            "invalid_parameter", f"{name} must be a whole number from {low} to {high}.", details={name: raw[:40]}
        )
    return value
