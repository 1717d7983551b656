"""The dashboard: fleet status for operators and clients, portfolio figures for customers."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from hashinsight.accounts.roles import Access, Module, has_access
from miners import selectors as miner_selectors
from miners.models import Miner


@login_required
def dashboard(request):
    summary = miner_selectors.fleet_summary(user=request.user) if has_access(request.user, Module.HOSTING) else None
    portfolio = None
    if has_access(request.user, Module.BASIC, Access.FULL):
        entries = miner_selectors.portfolio_list(user=request.user)
        if entries:
            portfolio = {
                "entries": entries,
                "hashrate_ths": sum(e.model.hashrate_ths * e.quantity for e in entries),
                "power_kw": sum(e.model.power_w * e.quantity for e in entries) / 1000,
            }
    chart = None
    if summary:
        statuses = [s.value for s in Miner.Status]
        chart = {
            "labels": [row["site"] for row in summary["by_site"]],
            "datasets": [
                {"label": str(Miner.Status(s).label), "data": [row["statuses"].get(s, 0) for row in summary["by_site"]]}
                for s in statuses
            ],
        }
    return render(
        request,
        "portal/dashboard.html",
        {"summary": summary, "portfolio": portfolio, "chart_json": json.dumps(chart) if chart else None},
    )
