"""The miner list."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render

from hashinsight.accounts.roles import Module
from hashinsight.portal.forms.filters import MinerFilterForm
from hashinsight.portal.views.common import PAGE_SIZE, module_required
from miners import selectors as miner_selectors
from sites import selectors as site_selectors


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
