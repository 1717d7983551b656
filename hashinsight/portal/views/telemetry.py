"""Telemetry pages: a site's live dashboard, its live list, and a miner's charts. Everything is read
through ``telemetry.telemetry_selectors`` (a client sees its own miners only; hidden → 404). The pages
render their figures on the server, then ``static/js/telemetry-dashboard.js`` and ``miner-charts.js``
keep them current from the JSON API without reloading."""

from __future__ import annotations

from django import forms
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, InvalidCursor, KeysetSlice, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from miners import selectors as miner_selectors
from miners.models import Miner
from sites import selectors as site_selectors
from sites.models import Zone
from sites.selectors import scope_of
from telemetry import alert_messages
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
        "messages": {msg_id: str(text) for msg_id, text in alert_messages.CATALOG.items()},
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
    client = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Hosting client"))
    temp_above = forms.FloatField(required=False, min_value=-100, max_value=300, label=_("Chip above (°C)"))
    temp_below = forms.FloatField(required=False, min_value=-100, max_value=300, label=_("Chip below (°C)"))
    hashrate_below_ths = forms.FloatField(required=False, min_value=0, label=_("Hashrate below (TH/s)"))

    def __init__(self, *args, zones=(), clients=None, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("temp_above", "temp_below", "hashrate_below_ths"):
            self.fields[name].widget.attrs.setdefault("placeholder", str(self.fields[name].label))
        self.fields["zone"].choices = [("", _("All zones")), *zones]
        if clients is None:  # a hosting client sees its own miners only: nothing to choose
            del self.fields["client"]
        else:
            self.fields["client"].choices = [("", _("All clients")), *clients]

    def filter_queryset(self, qs):
        v = self.values()
        return sel.filter_live(
            qs,
            status=v["status"],
            zone=v["zone"],
            customer=v.get("client"),
            temp_above=v["temp_above"],
            temp_below=v["temp_below"],
            hashrate_below_ths=v["hashrate_below_ths"],
        )


class LiveTable(ListPage):
    """Keyset pages over the live rows (``telemetry_selectors.live_page``): every sortable column has an
    index (site, column, miner), so any page — first, middle or last, either direction — is an index
    range read, and nothing counts the whole site. Zone and power are not sortable here (no index; an
    index on the live table costs every ingest)."""

    columns = [
        Column("serial", _("Serial"), sort="serial"),
        Column("zone", _("Zone")),
        Column("status", _("Status"), sort="status"),
        Column("hashrate", _("Hashrate (TH/s)"), sort="hashrate", numeric=True),
        Column("pct", _("Of nominal"), numeric=True),
        Column("temperature", _("Max chip (°C)"), sort="temperature", numeric=True),
        Column("inlet", _("Inlet / outlet (°C)"), numeric=True),
        Column("power", _("Power (W)"), numeric=True),
        Column("last_seen", _("Last seen"), sort="last_seen"),
    ]
    csv_columns = LIVE_CSV
    filter_form = LiveFilterForm
    default_sort = "serial"
    csv_name = "live"
    keyset = True

    def __init__(self, request, site):
        self.site = site
        super().__init__(request)

    def get_queryset(self):
        qs = sel.live_rows(user=self.request.user, site_id=self.site.pk)
        scope = scope_of(self.request.user)
        if scope.kind == "customers" and self.sort_key != "serial":
            # The scope (the miners' current client) still decides; the same test on the row's own copy
            # lets PostgreSQL drop the other clients' rows while it walks a live sort index, without looking
            # each one up in the miners table (a client whose miners sit at the far end of a 100,000-miner
            # sort: ~40 ms instead of ~150 ms). The serial order walks the miners' index: not needed there.
            qs = qs.filter(customer_id__in=scope.ids)
        return qs

    def keyset_fetch(self, qs, *, sort, cursor, limit):
        try:
            found = sel.live_page(qs, sort=sort, cursor=cursor, limit=limit)
        except DomainError as error:
            if error.code == "bad_cursor":
                raise InvalidCursor from error
            raise
        return KeysetSlice(found.rows, found.next_cursor, found.prev_cursor)

    def keyset_order(self, qs, *, sort):
        return sel.live_ordered(qs, sort=sort)

    def form_kwargs(self):
        return live_filter_choices(self.request.user, self.site)

    def context(self):
        labels = _state_labels()
        for row in self.page.object_list:
            row["state_label"] = labels.get(row["state"], row["state"])
        return {"site": self.site}


def live_filter_choices(user, site) -> dict:
    """The zone (and, for those who see several clients, client) choices of the live list. A hosting
    client's zones come from its own miners at the site, not from ``zone_list``'s per-zone EXISTS, which
    reads every miner of a zone the client has none in (~25 ms at 100,000 miners)."""
    scope = scope_of(user)
    if scope.kind == "customers":
        # Two plain reads: the zone ids of its miners here (a range on the miners' customer index), then
        # those zones. As one query PostgreSQL plans a per-zone semi-join reading every miner of each zone.
        mine = miner_selectors.miner_list(user=user).filter(site=site).order_by().values_list("zone_id", flat=True)
        zones = Zone.objects.filter(site=site, pk__in=set(mine.distinct())).order_by("name").values_list("pk", "name")
        return {"zones": list(zones), "clients": None}
    zones = site_selectors.zone_list(user=user).filter(site=site).order_by("name").values_list("pk", "name")
    hosted = Miner.objects.filter(site=site, customer_id=OuterRef("pk"))
    clients = (
        site_selectors.customer_list(user=user).filter(Exists(hosted)).order_by("company").values_list("pk", "company")
    )
    return {"zones": list(zones), "clients": list(clients)}


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
