from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from sites.selectors import require_site_manageable
from telemetry import selectors, services
from telemetry.api.filtersets import AlertFilter
from telemetry.api.serializers import AlertNoteSerializer, AlertSerializer


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts on the sites and miners you can see. Acknowledge and resolve need HOSTING FULL."""

    module = Module.HOSTING
    permission_classes = [ModuleAccess]
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["last_seen", "first_seen", "count"]

    def get_queryset(self):
        return selectors.alert_list(user=self.request.user)

    def _act(self, fn):
        alert = self.get_object()
        require_site_manageable(user=self.request.user, site_id=alert.site_id)
        # The optional note is validated by the service (text, at most 500 characters), as for the portal.
        data = self.request.data if hasattr(self.request.data, "get") else {}
        note = data.get("note", "")
        return Response(AlertSerializer(fn(alert=alert, actor=self.request.user, note=note)).data)

    @extend_schema(request=AlertNoteSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._act(services.alert_acknowledge)

    @extend_schema(request=AlertNoteSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._act(services.alert_resolve)
