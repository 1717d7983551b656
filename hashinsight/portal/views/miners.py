"""The miner list."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.portal.forms.filters import MinerFilterForm
from hashinsight.portal.tables import Column, CsvColumn, ListPage
from hashinsight.portal.views.common import module_required
from miners import selectors as miner_selectors
from miners.models import Miner
from sites import selectors as site_selectors


class MinerTable(ListPage):
    columns = [
        Column("serial", _("Serial"), sort="serial"),
        Column("model", _("Model"), sort="model__name"),
        Column("site", _("Site"), sort="site__name"),
        Column("zone", _("Zone"), sort="zone__name"),
        Column("position", _("Position"), sort=("rack", "shelf", "slot")),
        Column("client", _("Client"), sort="customer__company"),
        Column("status", _("Status"), sort="status"),
        Column("firmware", _("Firmware"), sort="firmware"),
        Column("telemetry", _("Telemetry")),
    ]
    csv_columns = [
        CsvColumn(_("Serial"), "serial"),
        CsvColumn(_("Asset tag"), "asset_tag"),
        CsvColumn(_("Vendor"), "model__vendor"),
        CsvColumn(_("Model"), "model__name"),
        CsvColumn(_("Nominal hashrate (TH/s)"), "model__hashrate_ths"),
        CsvColumn(_("Nominal power (W)"), "model__power_w"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Zone"), "zone__name"),
        CsvColumn(_("Rack"), "rack"),
        CsvColumn(_("Shelf"), "shelf"),
        CsvColumn(_("Slot"), "slot"),
        CsvColumn(_("Hosting client"), "customer__company"),
        CsvColumn(_("Status"), "status", display=dict(Miner.Status.choices)),
        CsvColumn(_("Firmware"), "firmware"),
        CsvColumn(_("Pool worker"), "pool_worker"),
    ]
    filter_form = MinerFilterForm
    default_sort = "serial"
    csv_name = "miners"

    def get_queryset(self):
        return miner_selectors.miner_list(user=self.request.user).defer("identity_sealed")

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).only("id", "name").order_by("name")}


@module_required(Module.HOSTING)
def miner_list(request):
    return MinerTable(request).respond("portal/miner_list.html")
