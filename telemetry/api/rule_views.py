"""``/api/v1/sites/{site_id}/alert-rules``: the site's five alert rules. Readers of the site read
them; its managers change them (PUT all five, PATCH some). A site you cannot see is a 404; one you
only read answers 403 to a change."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from sites.selectors import require_site_manageable, site_is_manageable, site_list
from telemetry.api.rule_serializers import AlertRulesPatchSerializer, AlertRulesPutSerializer, SiteAlertRulesSerializer
from telemetry.rule_services import alert_rules_update, site_rules


class SiteAlertRulesView(APIView):
    module = Module.HOSTING
    permission_classes = [ModuleAccess]

    def _site(self):
        return get_object_or_404(site_list(user=self.request.user), pk=self.kwargs["site_id"])

    def _answer(self, site, rules) -> Response:
        body = {
            "site": site.pk,
            "can_manage": site_is_manageable(user=self.request.user, site_id=site.pk),
            "rules": rules,
        }
        return Response(SiteAlertRulesSerializer(body).data)

    @extend_schema(responses=SiteAlertRulesSerializer, summary="A site's alert rules")
    def get(self, request, site_id: int):
        site = self._site()
        return self._answer(site, site_rules(site=site))

    def _write(self, request, serializer_class):
        site = self._site()
        require_site_manageable(user=request.user, site_id=site.pk)
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(site, alert_rules_update(site=site, actor=request.user, changes=serializer.changes()))

    @extend_schema(
        request=AlertRulesPutSerializer, responses=SiteAlertRulesSerializer, summary="Replace a site's alert rules"
    )
    def put(self, request, site_id: int):
        return self._write(request, AlertRulesPutSerializer)

    @extend_schema(
        request=AlertRulesPatchSerializer, responses=SiteAlertRulesSerializer, summary="Change some alert rules"
    )
    def patch(self, request, site_id: int):
        return self._write(request, AlertRulesPatchSerializer)
