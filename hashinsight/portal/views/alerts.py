"""The alerts page."""

from __future__ import annotations

from django.shortcuts import render

from hashinsight.accounts.roles import Module
from hashinsight.portal.views.common import module_required
from telemetry import selectors as alert_selectors


@module_required(Module.HOSTING)
def alert_list(request):
    alerts = alert_selectors.alert_list(user=request.user).exclude(status="resolved")[:200]
    return render(request, "portal/alert_list.html", {"alerts": alerts})
