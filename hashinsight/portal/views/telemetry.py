"""Telemetry pages: a site's live dashboard, its live list, and a miner's charts. Everything is read
through ``telemetry.telemetry_selectors`` (a client sees its own miners only; hidden → 404). The pages
render their figures on the server, then ``static/js/telemetry-dashboard.js`` and ``miner-charts.js``
keep them current from the JSON API without reloading."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.portal.tables import Column, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from miners import selectors as miner_selectors
from sites import selectors as site_selectors
from telemetry import telemetry_selectors as sel
from telemetry.alert_types import alert_type_labels
from telemetry.api.telemetry_views import LIVE_CSV
from telemetry.models import Alert, SampleStatus

POLL_MS = 15_000


def _state_labels() -> dict:
    return {**{k: str(v) for k, v in SampleStatus.choices}, "online": str(_("Online"))}


def _js_labels() -> dict:
    """Words the scripts write into the page, translated here (the scripts hold no text of their own)."""
    return {
        "states": _state_labels(),
        "severities": {k: str(v) for k, v in Alert.Severity.choices},
        "alertTypes": {code: str(label) for code, label in alert_type_labels().items()},
        "hashrate": str(_("Hashrate (TH/s)")),
        "nominal": str(_("Nominal (TH/s)")),
        "fleetHashrate": str(_("Fleet hashrate (TH/s)")),
        "miners": str(_("Miners")),
        "chip": str(_("Max chip (°C)")),
        "inlet": str(_("Inlet (°C)")),
        "outlet": str(_("Outlet (°C)")),
        "power": str(_("Power (W)")),
        "fan": str(_("Fan (rpm)")),
        "none": str(_("None")),
        "noData": str(_("No data in this range.")),
        "loadFailed": str(_("Could not load the figures; retrying.")),
        "updated": str(_("Updated")),
        "layers": {
            "raw": str(_("Raw samples")),
            "5m": str(_("5-minute averages")),
            "daily": str(_("Daily figures")),
        },
        "everySeconds": str(_("one point per %(seconds)s s")),
    }


@module_required(Module.HOSTING)
def site_dashboard(request, slug):
    site = get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)
    summary = dict(sel.site_summary(user=request.user, site_id=site.pk).value)
    summary["recent_alerts"] = [dict(a) for a in summary["recent_alerts"]]  # labelled below, not in the cache
    severity_labels = dict(Alert.Severity.choices)
    for alert in summary["recent_alerts"]:
        alert["severity_label"] = severity_labels.get(alert["severity"], alert["severity"])
    config = {
        "summaryUrl": reverse("telemetry-site-summary", kwargs={"site_id": site.pk}),
        "historyUrl": reverse("telemetry-site-history", kwargs={"site_id": site.pk}),
        "minerUrl": reverse("portal:telemetry-miner", kwargs={"pk": 0}),
        "pollMs": POLL_MS,
        "labels": _js_labels(),
    }
    return render(
        request,
        "portal/telemetry/site_dashboard.html",
        {
            "site": site,
            "s": summary,
            "config": config,
            "states": [(k, label, summary["by_state"][k]) for k, label in SampleStatus.choices],
            "severities": [(k, label, summary["open_alerts"][k]) for k, label in Alert.Severity.choices],
        },
    )


class LiveFilterForm(ListFilterForm):
    status = forms.ChoiceField(
        required=False,
        choices=[("", _("Any status")), ("online", _("Online")), *SampleStatus.choices],
        label=_("Status"),
    )
    zone = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Zone"))
    temp_above = forms.FloatField(required=False, min_value=-100, max_value=300, label=_("Chip above (°C)"))
    temp_below = forms.FloatField(required=False, min_value=-100, max_value=300, label=_("Chip below (°C)"))
    hashrate_below_ths = forms.FloatField(required=False, min_value=0, label=_("Hashrate below (TH/s)"))

    def __init__(self, *args, zones=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("temp_above", "temp_below", "hashrate_below_ths"):
            self.fields[name].widget.attrs.setdefault("placeholder", str(self.fields[name].label))
        self.fields["zone"].choices = [("", _("All zones")), *[(z.pk, z.name) for z in zones]]

    def filter_queryset(self, qs):
        v = self.values()
        return sel.filter_live(
            qs,
            status=v["status"],
            zone=v["zone"],
            temp_above=v["temp_above"],
            temp_below=v["temp_below"],
            hashrate_below_ths=v["hashrate_below_ths"],
        )


class LiveTable(ListPage):
    columns = [
        Column("serial", _("Serial"), sort="miner__serial"),
        Column("zone", _("Zone"), sort="miner__zone__name"),
        Column("status", _("Status"), sort="status"),
        Column("hashrate", _("Hashrate (TH/s)"), sort="hashrate_ghs", numeric=True),
        Column("pct", _("Of nominal"), numeric=True),
        Column("temperature", _("Max chip (°C)"), sort="temp_chip_max_c", numeric=True),
        Column("inlet", _("Inlet / outlet (°C)"), numeric=True),
        Column("power", _("Power (W)"), sort="power_w", numeric=True),
        Column("last_seen", _("Last seen"), sort="last_seen"),
    ]
    csv_columns = LIVE_CSV
    filter_form = LiveFilterForm
    default_sort = "serial"
    csv_name = "live"

    def __init__(self, request, site):
        self.site = site
        super().__init__(request)

    def get_queryset(self):
        return sel.live_rows(user=self.request.user, site_id=self.site.pk).select_related(
            "miner", "miner__zone", "miner__model"
        )

    def form_kwargs(self):
        zones = site_selectors.zone_list(user=self.request.user).filter(site=self.site).order_by("name")
        return {"zones": zones}

    def context(self):
        labels = _state_labels()
        for row in self.page.object_list:
            nominal = float(row.miner.model.hashrate_ths)
            row.ths = row.hashrate_ghs / 1000 if row.hashrate_ghs is not None else None
            row.pct = 100 * row.ths / nominal if row.ths is not None and nominal else None
            row.state_label = labels.get(row.state, row.state)
        return {"site": self.site}


@module_required(Module.HOSTING)
def live_list(request, slug):
    site = get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)
    return LiveTable(request, site).respond("portal/telemetry/live_list.html")


RANGES = (("24h", _("24 h")), ("7d", _("7 days")), ("90d", _("90 days")))


@module_required(Module.HOSTING)
def miner_detail(request, pk):
    miner = get_object_or_404(
        miner_selectors.miner_list(user=request.user).defer("identity_sealed"),
        pk=pk,
    )
    live = sel.miner_live(user=request.user, miner=miner)
    config = {
        "historyUrl": reverse("telemetry-miner-history", kwargs={"miner_id": miner.pk}),
        "nominalThs": float(miner.model.hashrate_ths),
        "labels": _js_labels(),
    }
    fans = [f for f in (live.fan_rpm if live else []) if isinstance(f, int | float)]
    return render(
        request,
        "portal/telemetry/miner_detail.html",
        {
            "miner": miner,
            "live": live,
            "hashrate_ths": live.hashrate_ghs / 1000 if live and live.hashrate_ghs is not None else None,
            "pct": (
                100 * live.hashrate_ghs / 1000 / float(miner.model.hashrate_ths)
                if live and live.hashrate_ghs is not None
                else None
            ),
            "fans": fans,
            "state_label": _state_labels().get(live.state) if live else None,
            "alerts": sel.miner_open_alerts(user=request.user, miner=miner)[:20],
            "ranges": RANGES,
            "config": config,
        },
    )
