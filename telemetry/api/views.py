from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from sites.selectors import require_site_manageable
from telemetry import selectors, services
from telemetry.models import Alert


class AlertSerializer(serializers.ModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True)
    miner_serial = serializers.CharField(source="miner.serial", read_only=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id", "site", "site_name", "miner", "miner_serial", "alert_type", "severity", "status", "message",
            "evidence", "count", "first_seen", "last_seen", "acknowledged_at", "resolved_at",
        ]  # fmt: skip
        read_only_fields = fields


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts on the sites and miners you can see. Acknowledge and resolve need HOSTING FULL."""

    module = Module.HOSTING
    permission_classes = [ModuleAccess]
    serializer_class = AlertSerializer
    filterset_fields = ["site", "status", "severity", "alert_type", "miner"]
    ordering_fields = ["last_seen", "first_seen", "count"]

    def get_queryset(self):
        return selectors.alert_list(user=self.request.user)

    def _act(self, fn):
        alert = self.get_object()
        require_site_manageable(user=self.request.user, site_id=alert.site_id)
        return Response(AlertSerializer(fn(alert=alert, actor=self.request.user)).data)

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._act(services.alert_acknowledge)

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._act(services.alert_resolve)
