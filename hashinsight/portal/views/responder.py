"""The real-time responder pages (CURTAILMENT READ; FULL and a manage grant on the site to change settings): the
sites with their responder's state, and one site's page: the settings form with enable/disable buttons and the
latest decisions (last price, price used, each group's breakeven and miners on, the moves and the commands; sort,
filter, CSV).

Reads and writes go through ``intelligence.responder`` (hidden site → 404); its refusals come back as messages
on the page, never as a server error. No script or style inline (CSP)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Max
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from intelligence import responder as service
from intelligence.api.responder_views import actions_text
from intelligence.models import RealtimeResponder, ResponderDecision
from sites import selectors as site_selectors

MODULE = Module.CURTAILMENT


@module_required(MODULE)
def responder_sites(request):
    sites = list(site_selectors.site_list(user=request.user).order_by("name"))
    saved = {r.site_id: r for r in RealtimeResponder.objects.filter(site__in=sites)}
    last = dict(
        ResponderDecision.objects.filter(site__in=sites).values_list("site_id").annotate(at=Max("interval_start"))
    )
    rows = [{"site": s, "responder": saved.get(s.pk), "last_decision": last.get(s.pk)} for s in sites]
    return render(request, "portal/responder/sites.html", {"rows": rows})


class SettingsForm(forms.Form):
    hysteresis_usd_per_mwh = forms.DecimalField(
        min_value=0, max_value=service.MAX_HYSTERESIS, decimal_places=2, label=_("Hysteresis (USD/MWh)")
    )
    min_on_minutes = forms.IntegerField(min_value=0, max_value=service.MAX_MINUTES, label=_("Minimum on (min)"))
    min_off_minutes = forms.IntegerField(min_value=0, max_value=service.MAX_MINUTES, label=_("Minimum off (min)"))
    ramp_kw_per_hour = forms.DecimalField(
        required=False, min_value=0, decimal_places=3, label=_("Ramp limit (kW/h, empty: none)")
    )
    command_mode = forms.ChoiceField(
        choices=[("hard", _("Hard: stop the miners")), ("soft", _("Soft: throttle first"))], label=_("Command mode")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"

    def body(self) -> dict:
        d = self.cleaned_data
        return {
            "hysteresis_usd_per_mwh": str(d["hysteresis_usd_per_mwh"]), "min_on_minutes": d["min_on_minutes"],
            "min_off_minutes": d["min_off_minutes"],
            "ramp_kw_per_hour": None if d.get("ramp_kw_per_hour") is None else str(d["ramp_kw_per_hour"]),
            "command_mode": d["command_mode"],
        }  # fmt: skip


class DecisionFilterForm(ListFilterForm):
    acted = forms.ChoiceField(
        required=False, label=_("Moves"),
        choices=[("", _("All decisions")), ("yes", _("With moves")), ("no", _("Without moves"))],
    )  # fmt: skip
    day = forms.DateField(
        required=False, label=_("Interval on (UTC date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    lookups = {"day": "interval_start__date"}

    def filter_acted(self, qs, value):
        return qs.exclude(decision__actions=[]) if value == "yes" else qs.filter(decision__actions=[])


class DecisionTable(ListPage):
    columns = [
        Column("interval", _("Interval (UTC)"), sort="interval_start"),
        Column("price", _("Last price (USD/MWh)"), sort="price_usd_per_mwh", numeric=True),
        Column("used", _("Price used (USD/MWh)"), sort="decided_price_usd_per_mwh", numeric=True),
        Column("groups", _("Breakeven (USD/MWh), on")),
        Column("moves", _("Moves")),
        Column("commands", _("Commands")),
    ]
    csv_columns = [
        CsvColumn(_("Decision"), "id"),
        CsvColumn(_("Interval start (UTC)"), "interval_start"),
        CsvColumn(_("Last price (USD/MWh)"), "price_usd_per_mwh"),
        CsvColumn(_("Price used (USD/MWh)"), "decided_price_usd_per_mwh"),
        CsvColumn(_("Moves (group from→to miners on)"), "decision", display=actions_text),
        CsvColumn(_("Decided (UTC)"), "created_at"),
    ]
    filter_form = DecisionFilterForm
    default_sort = "-interval"
    csv_name = "responder-decisions"

    def __init__(self, request, site):
        self.site = site
        self.extra: dict = {}
        super().__init__(request)

    def context(self):
        return self.extra

    def get_queryset(self):
        return service.decision_list(user=self.request.user, site_id=self.site.pk)


def _site(request, site_id: int):
    try:
        return service.responder_get(user=request.user, site_id=site_id)
    except DomainError:
        raise Http404 from None


@module_required(MODULE)
def responder_detail(request, site_id: int):
    r = _site(request, site_id)
    may_edit = has_access(request.user, MODULE, Access.FULL) and site_selectors.site_is_manageable(
        user=request.user, site_id=r.site_id
    )
    initial = {
        "hysteresis_usd_per_mwh": r.hysteresis_usd_per_mwh, "min_on_minutes": r.min_on_minutes,
        "min_off_minutes": r.min_off_minutes, "ramp_kw_per_hour": r.ramp_kw_per_hour, "command_mode": r.command_mode,
    }  # fmt: skip
    form = SettingsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not may_edit:
            raise Http404
        if form.is_valid():
            try:
                service.responder_update(actor=request.user, site_id=r.site_id, data=form.body())
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, gettext("Responder settings saved."))
                return redirect("portal:responder-detail", site_id=r.site_id)
    if not may_edit:
        for field in form.fields.values():
            field.disabled = True
    table = DecisionTable(request, r.site)
    table.extra = {"responder": r, "settings_form": form, "may_edit": may_edit, "site": r.site}
    return table.respond("portal/responder/detail.html")


@require_POST
@module_required(MODULE, Access.FULL)
def responder_toggle(request, site_id: int, action: str):
    _site(request, site_id)
    enabled = action == "enable"
    try:
        service.responder_update(actor=request.user, site_id=site_id, data={"enabled": enabled})
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            gettext("Responder enabled: its commands are proposed as you.")
            if enabled
            else gettext("Responder disabled."),
        )
    return redirect("portal:responder-detail", site_id=site_id)
