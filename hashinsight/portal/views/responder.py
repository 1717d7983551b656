"""The real-time responder pages (CURTAILMENT READ; FULL and a manage grant on the site to change settings): the
sites with their responder's settings, last decision and real-time price (sort, filter by state and site, CSV), and
one site's page: the settings form with enable/disable buttons and the latest decisions (last price, price used,
each group's breakeven and miners on, the moves and the commands; sort, filter, CSV).

Reads and writes go through ``intelligence.responder`` (hidden site → 404); its refusals come back as messages
on the page, never as a server error. No script or style inline (CSP)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from intelligence import responder as service
from intelligence.api.responder_views import actions_text
from sites import selectors as site_selectors

MODULE = Module.CURTAILMENT


MODES = {"hard": _("Hard: stop the miners"), "soft": _("Soft: throttle first")}
YES_NO = {True: _("Yes"), False: _("No")}


def _fixed(places: int):
    """The CSV's value with the field's own decimal places (SQLite hands subqueries' decimals back as floats)."""
    step = Decimal(1).scaleb(-places)
    return lambda value: None if value is None else Decimal(str(value)).quantize(step)


class SiteFilterForm(ListFilterForm):
    enabled = forms.ChoiceField(
        required=False, label=_("Responder"),
        choices=[("", _("Enabled or not")), ("yes", _("Enabled")), ("no", _("Disabled"))],
    )  # fmt: skip
    site = forms.TypedChoiceField(required=False, coerce=int, label=_("Site"))
    lookups = {"site": "pk"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("Any site")), *[(pk, name) for pk, name in sites]]

    def filter_enabled(self, qs, value):
        return qs.filter(r_enabled=value == "yes")


class SiteTable(ListPage):
    columns = [
        Column("site", _("Site"), sort="name"),
        Column("enabled", _("Responder"), sort="r_enabled"),
        Column("price", _("Real-time price (USD/MWh)"), sort="price_usd_per_mwh", numeric=True),
        Column("last_decision", _("Last decision (UTC)"), sort="last_decision_at"),
        Column("settings", _("Settings")),
        Column("changed_by", _("Changed by"), sort="r_changed_by"),
    ]
    csv_columns = [
        CsvColumn(_("Site"), "name"),
        CsvColumn(_("Site slug"), "slug"),
        CsvColumn(_("Enabled"), "r_enabled", display=YES_NO),
        CsvColumn(_("Command mode"), "r_mode", display=MODES),
        CsvColumn(_("Hysteresis (USD/MWh)"), "r_hysteresis", display=_fixed(2)),
        CsvColumn(_("Minimum on (min)"), "r_min_on"),
        CsvColumn(_("Minimum off (min)"), "r_min_off"),
        CsvColumn(_("Ramp limit (kW/h)"), "r_ramp", display=_fixed(3)),
        CsvColumn(_("Last price interval handled (UTC)"), "r_last_interval"),
        CsvColumn(_("Last decision for (UTC)"), "last_decision_at"),
        CsvColumn(_("Last decision's moves (group from→to miners on)"), "last_decision", display=actions_text),
        CsvColumn(_("Real-time price (USD/MWh)"), "price_usd_per_mwh", display=_fixed(2)),
        CsvColumn(_("Real-time price interval start (UTC)"), "price_at"),
        CsvColumn(_("Changed by"), "r_changed_by"),
    ]
    filter_form = SiteFilterForm
    default_sort = "site"
    csv_name = "responder-sites"

    def get_queryset(self):
        return service.responder_site_list(user=self.request.user)

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name").values_list("pk", "name")}

    def context(self):
        rows = list(self.page.object_list)
        for row in rows:
            row.mode_label = MODES.get(row.r_mode, row.r_mode)
            row.moves = actions_text(row.last_decision)
        return {"rows": rows}


@module_required(MODULE)
def responder_sites(request):
    return SiteTable(request).respond("portal/responder/sites.html")


class SettingsForm(forms.Form):
    hysteresis_usd_per_mwh = forms.DecimalField(
        min_value=0, max_value=service.MAX_HYSTERESIS, decimal_places=2, label=_("Hysteresis (USD/MWh)")
    )
    min_on_minutes = forms.IntegerField(min_value=0, max_value=service.MAX_MINUTES, label=_("Minimum on (min)"))
    min_off_minutes = forms.IntegerField(min_value=0, max_value=service.MAX_MINUTES, label=_("Minimum off (min)"))
    ramp_kw_per_hour = forms.DecimalField(
        required=False, min_value=0, decimal_places=3, label=_("Ramp limit (kW/h, empty: none)")
    )
    command_mode = forms.ChoiceField(choices=list(MODES.items()), label=_("Command mode"))

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
