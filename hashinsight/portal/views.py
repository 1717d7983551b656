"""Server-rendered portal pages. Every page reads through a selector, so a hidden object is a 404."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404, render

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.portal.forms import CalculatorForm, MinerFilterForm
from intelligence.market import latest_snapshot
from intelligence.profitability import FORMULA, ProfitInputs, mining_profitability
from miners import selectors as miner_selectors
from miners.models import Miner
from sites import selectors as site_selectors
from telemetry import selectors as alert_selectors

PAGE_SIZE = 50


def module_required(module: str, access: Access = Access.READ):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_access(request.user, module, access):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


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


@module_required(Module.HOSTING)
def site_list(request):
    sites = site_selectors.site_list(user=request.user).annotate(
        miner_count=Count("miners", filter=miner_selectors.miner_scope_q_for(request.user)),
    )
    return render(request, "portal/site_list.html", {"sites": sites})


@module_required(Module.HOSTING)
def site_detail(request, slug):
    site = get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)
    miners = miner_selectors.miner_list(user=request.user).filter(site=site)
    zones = (
        site_selectors.zone_list(user=request.user)
        .filter(site=site)
        .annotate(
            miner_count=Count("miners", filter=miner_selectors.miner_scope_q_for(request.user)),
            nominal_kw=Sum("miners__model__power_w", filter=miner_selectors.miner_scope_q_for(request.user)) / 1000,
        )
    )
    by_status = dict(miners.values_list("status").annotate(n=Count("id")).order_by())
    return render(
        request,
        "portal/site_detail.html",
        {
            "site": site,
            "zones": zones,
            "by_status": [(Miner.Status(s).label, by_status.get(s, 0)) for s in Miner.Status.values],
            "can_manage": site_selectors.site_is_manageable(user=request.user, site_id=site.pk),
        },
    )


@module_required(Module.HOSTING)
def miner_list(request):
    visible_sites = site_selectors.site_list(user=request.user).only("id", "name")
    form = MinerFilterForm(request.GET or None, sites=visible_sites)
    miners = miner_selectors.miner_list(user=request.user).defer("identity_sealed").order_by("id")
    if form.is_valid():
        data = form.cleaned_data
        if data.get("q"):
            miners = miners.filter(
                Q(serial__icontains=data["q"]) | Q(asset_tag__icontains=data["q"]) | Q(pool_worker__icontains=data["q"])
            )
        if data.get("site"):
            miners = miners.filter(site_id=data["site"])
        if data.get("status"):
            miners = miners.filter(status=data["status"])
        if data.get("vendor"):
            miners = miners.filter(model__vendor__iexact=data["vendor"])
    page = Paginator(miners, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "portal/miner_list.html", {"form": form, "page": page, "query": query.urlencode()})


@module_required(Module.HOSTING)
def alert_list(request):
    alerts = alert_selectors.alert_list(user=request.user).exclude(status="resolved")[:200]
    return render(request, "portal/alert_list.html", {"alerts": alerts})


def calculator(request):
    """Open to everyone, signed in or not (BASIC READ, the guest's one page)."""
    form = CalculatorForm(request.GET or None, initial=CalculatorForm.initial_values())
    result = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        result = mining_profitability(
            ProfitInputs(
                hashrate_ths=data["hashrate_ths"],
                power_w=data["power_w"],
                quantity=data["quantity"],
                electricity_usd_per_kwh=data["electricity_usd_per_kwh"],
                btc_price_usd=data["btc_price_usd"],
                difficulty=data["difficulty"],
                block_subsidy_btc=data["block_subsidy_btc"],
                fees_btc_per_block=data["fees_btc_per_block"],
                pool_fee_pct=data["pool_fee_pct"],
            )
        )
    return render(
        request,
        "portal/calculator.html",
        {"form": form, "result": result, "formula": FORMULA, "market": latest_snapshot()},
    )
