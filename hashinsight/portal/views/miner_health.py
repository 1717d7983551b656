"""The "Miner health" page (AI READ): each miner's failure risk with its tier and reasons, riskiest first, filtered
by tier and site, sortable, exported as CSV, and a button to recompute now (``health_predict`` for oneself). The
rows are ``intelligence.miner_health.health_list``'s: a hosting client sees only its own miners.

Reasons are stored with a code and their figures; the page words them in the request's language from those (the
stored English text is the API's and the CSV's)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Module
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from intelligence.miner_health import health_list
from intelligence.models import MinerHealth

REASONS = {
    "temp_margin": _("chip temperature %(temp_c)s °C, %(margin_c)s °C below its %(limit_c)s °C limit"),
    "temp_rise": _("chip temperature up %(rise_c)s °C over the last 3 days"),
    "hashrate_low": _("hashrate at %(pct)s %% of nominal over the last 3 days"),
    "hashrate_falling": _("hashrate fell by %(pct)s %% of nominal in the last 3 days"),
    "restarts": _("%(count)s restarts in 7 days"),
    "reject_rate": _("%(pct)s %% of shares rejected in 7 days"),
    "fan_drop": _("slowest fan %(pct)s %% slower than at the same hours yesterday"),
}


def reason_words(reason: dict) -> str:
    template = REASONS.get(reason.get("code"))
    if template is None:
        return reason.get("text", "")
    try:
        return str(template) % reason.get("params", {})
    except (KeyError, TypeError, ValueError):
        return reason.get("text", "")


class HealthFilterForm(ListFilterForm):
    tier = forms.ChoiceField(required=False, label=_("Tier"))
    site = forms.TypedChoiceField(required=False, coerce=int, label=_("Site"))
    serial = forms.CharField(required=False, max_length=64, label=_("Serial number"))
    lookups = {"tier": "tier", "site": "miner__site_id", "serial": "miner__serial__icontains"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", _("Any tier")), *MinerHealth.Tier.choices]
        self.fields["site"].choices = [("", _("Any site")), *[(pk, name) for pk, name in sites]]


class HealthTable(ListPage):
    columns = [
        Column("serial", _("Miner"), sort="miner__serial"),
        Column("site", _("Site"), sort="miner__site__name"),
        Column("model", _("Model"), sort="miner__model__name"),
        Column("score", _("Failure risk (%)"), sort="score", numeric=True),
        Column("tier", _("Tier"), sort="tier"),
        Column("reasons", _("Reasons")),
        Column("computed", _("Computed (UTC)"), sort="computed_at"),
    ]
    csv_columns = [
        CsvColumn(_("Miner id"), "miner_id"),
        CsvColumn(_("Serial number"), "miner__serial"),
        CsvColumn(_("Site"), "miner__site__name"),
        CsvColumn(_("Model"), "miner__model__name"),
        CsvColumn(_("Failure risk (0–1)"), "score"),
        CsvColumn(_("Tier"), "tier", display=dict(MinerHealth.Tier.choices)),
        CsvColumn(_("Reasons"), "reasons", display=lambda rs: "; ".join(reason_words(r) for r in rs or [])),
        CsvColumn(_("Computed (UTC)"), "computed_at"),
    ]
    filter_form = HealthFilterForm
    default_sort = "-score"
    csv_name = "miner-health"

    def get_queryset(self):
        return health_list(user=self.request.user)

    def form_kwargs(self):
        from sites.selectors import site_list

        return {"sites": site_list(user=self.request.user).order_by("name").values_list("pk", "name")}

    def context(self) -> dict:
        rows = list(self.page.object_list)
        for row in rows:
            row.reason_words = [reason_words(r) for r in row.reasons]
            row.risk_pct = round(row.score * 100)
        counts = dict.fromkeys(MinerHealth.Tier.values, 0)
        for tier, n in self.get_queryset().order_by().values_list("tier").annotate(n=Count("pk")):
            counts[tier] = n
        return {"rows": rows, "tier_counts": [(t, label, counts[t]) for t, label in MinerHealth.Tier.choices]}


@module_required(Module.AI)
def miner_health(request):
    return HealthTable(request).respond("portal/health/miner_health.html")


@require_POST
@module_required(Module.AI)
def miner_health_recompute(request):
    """Queue ``health_predict`` for the user (their own miners; READ is enough: the scores are derived data)."""
    from intelligence.health_tasks import health_request

    health_request(user_id=request.user.pk)
    messages.success(request, gettext("Recomputing the health of your miners; refresh in a minute."))
    return redirect("portal:miner-health")
