"""/api/v1/edge-devices and /api/v1/edge-enrollments: the sites' collectors as their operators see them.
Reads need HOSTING READ and a site in the user's operating scope; rotate, revoke and new enrollment
codes need HOSTING FULL and a manage grant on the site (a read-only grant answers 403, a hidden
device 404)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.filters import scoped_choice
from sites.selectors import site_list, zone_list
from telemetry import devices
from telemetry.api.device_serializers import (
    EdgeDeviceCredentialsSerializer,
    EdgeDeviceSerializer,
    EnrollmentCreatedSerializer,
    EnrollmentCreateSerializer,
)
from telemetry.api.edge_device_views import no_store
from telemetry.models import EdgeDevice


class EdgeDeviceFilter(filters.FilterSet):
    site = scoped_choice(site_list)
    zone = scoped_choice(zone_list)
    revoked = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = EdgeDevice
        fields = ["site", "zone", "revoked"]


class EdgeDeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Edge collectors of the sites you operate. Rotate and revoke need a manage grant on the site."""

    module = Module.HOSTING
    permission_classes = [ModuleAccess]
    serializer_class = EdgeDeviceSerializer
    filterset_class = EdgeDeviceFilter
    search_fields = ["name", "version"]
    ordering_fields = ["name", "last_seen_at", "created_at", "site__name"]

    def get_queryset(self):
        return devices.device_list(user=self.request.user).order_by("site__name", "name", "pk")

    @extend_schema(request=None, responses={200: EdgeDeviceCredentialsSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        """New token and HMAC secret, returned only here; the old ones stop working at once."""
        device, token, hmac_secret = devices.device_rotate(device=self.get_object(), actor=request.user)
        device.token, device.hmac_secret = token, hmac_secret
        return no_store(Response(EdgeDeviceCredentialsSerializer(device).data))

    @extend_schema(request=None, responses={200: EdgeDeviceSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """The device's next request answers 401. Revoking twice changes nothing."""
        device = devices.device_revoke(device=self.get_object(), actor=request.user)
        return Response(EdgeDeviceSerializer(device).data)


class EdgeEnrollmentViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A one-time code that a new collector exchanges for its credentials (valid 24 h, single use)."""

    module = Module.HOSTING
    permission_classes = [ModuleAccess]
    serializer_class = EnrollmentCreateSerializer

    def get_queryset(self):
        return EdgeDevice.objects.none()  # create only; kept for the schema generator

    @extend_schema(request=EnrollmentCreateSerializer, responses={201: EnrollmentCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrollment, code = devices.enrollment_code_create(
            site=serializer.validated_data["site"], zone=serializer.validated_data.get("zone"), actor=request.user
        )
        enrollment.code = code
        return no_store(Response(EnrollmentCreatedSerializer(enrollment).data, status=status.HTTP_201_CREATED))
