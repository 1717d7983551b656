"""Site pages."""

from __future__ import annotations

from django.db.models import Count, Sum
from django.shortcuts import get_object_or_404, render

from hashinsight.accounts.roles import Module
from hashinsight.portal.views.common import module_required
from miners import selectors as miner_selectors
from miners.models import Miner
from sites import selectors as site_selectors


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
