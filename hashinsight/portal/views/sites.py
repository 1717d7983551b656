"""Site pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.portal.forms.filters import SiteFilterForm
from hashinsight.portal.tables import Column, CsvColumn, ListPage
from hashinsight.portal.views.common import module_required
from hashinsight.portal.views.dashboard import market_context
from intelligence.market import latest_snapshot
from miners import selectors as miner_selectors
from miners.models import Miner
from miners.summaries import fleet_money
from sites import selectors as site_selectors


class SiteTable(ListPage):
    columns = [
        Column("name", _("Name"), sort="name"),
        Column("location", _("Location"), sort="location"),
        Column("timezone", _("Time zone"), sort="timezone"),
        Column("capacity", _("Capacity (kW)"), sort="capacity_kw", numeric=True),
        Column("miners", _("Miners"), sort="miner_count", numeric=True),
    ]
    csv_columns = [
        CsvColumn(_("Name"), "name"),
        CsvColumn(_("Slug"), "slug"),
        CsvColumn(_("Location"), "location"),
        CsvColumn(_("Time zone"), "timezone"),
        CsvColumn(_("Capacity (kW)"), "capacity_kw"),
        CsvColumn(_("Miners"), "miner_count"),
    ]
    filter_form = SiteFilterForm
    default_sort = "name"
    csv_name = "sites"

    def get_queryset(self):
        return miner_selectors.site_list_with_miner_count(user=self.request.user)


@module_required(Module.HOSTING)
def site_list(request):
    return SiteTable(request).respond("portal/site_list.html")


@module_required(Module.HOSTING)
def site_detail(request, slug):
    site = get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)
    money = fleet_money(user=request.user, site=site)
    # The cached figures: for a client its own miners here, for an operator the whole site.
    row = money.sites[0] if money and money.sites else None
    by_status = row.by_status if row else {}
    zone_figures = row.zones if row else {}
    zones = [(z, zone_figures.get(z.pk, {})) for z in site_selectors.zone_list(user=request.user).filter(site=site)]
    response = render(
        request,
        "portal/site_detail.html",
        {
            "site": site,
            "zones": zones,
            "money": money,
            "row": row,
            "by_status": [(Miner.Status(s).label, by_status.get(s, 0)) for s in Miner.Status.values],
            "can_manage": site_selectors.site_is_manageable(user=request.user, site_id=site.pk),
            **market_context(money.market_date if money else latest_snapshot().date),
        },
    )
    if money:
        response["X-Cache"] = money.cache_state
    return response
