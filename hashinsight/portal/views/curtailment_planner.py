"""The curtailment planner pages (CURTAILMENT READ; FULL to make and send plans): the stored plans (sort, filter,
CSV), the planner form (site, window, constraints → a plan made and stored by ``intelligence.curtailment_plans``)
with tomorrow's plans of the sites priced for it (the daily job's, read through the cache like
``GET /api/optimize/curtailment``), and one plan: its price chart with the curtailed hours shaded, the schedule
(hour × group on-count, kW, USD), the profit next to running everything and the price-threshold rule, the solver's
status and gap, and "Send for approval", which proposes its CURTAIL commands and leads to the commands page.

Reads go through ``intelligence.curtailment_plans`` selectors (hidden → 404); every write through its services,
whose refusals come back as messages on the page (a 400's constraint named), never as a server error. The chart is
drawn by ``static/js/curtailment-planner.js`` from a ``json_script`` block (no inline script, CSP)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from intelligence import curtailment_plans as plans
from intelligence.models import CurtailmentPlan
from intelligence.solver_outcome import solver_outcome
from sites import selectors as site_selectors

MODULE = Module.CURTAILMENT
P = CurtailmentPlan.Status


# ---------------------------------------------------------------------------------------------------------
# The stored plans


class PlanFilterForm(ListFilterForm):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *P.choices], label=_("Status"))
    day = forms.DateField(
        required=False, label=_("First hour on (UTC date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    lookups = {"site": "site_id", "status": "status", "day": "starts_at__date"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]


class PlanTable(ListPage):
    columns = [
        Column("id", _("Plan"), sort="id", numeric=True),
        Column("site", _("Site"), sort="site__name"),
        Column("starts", _("First hour (UTC)"), sort="starts_at"),
        Column("hours", _("Hours"), sort="hours", numeric=True),
        Column("status", _("Status"), sort="status"),
        Column("profit", _("Plan (USD)"), sort="profit_usd", numeric=True),
        Column("run_all", _("Run all (USD)"), sort="run_all_profit_usd", numeric=True),
        Column("threshold", _("Threshold rule (USD)"), sort="threshold_profit_usd", numeric=True),
        Column("created", _("Created (UTC)"), sort="created_at"),
    ]
    csv_columns = [
        CsvColumn(_("Plan"), "id"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("First hour (UTC)"), "starts_at"),
        CsvColumn(_("Hours"), "hours"),
        CsvColumn(_("Status"), "status", display=dict(P.choices)),
        CsvColumn(_("Planned profit (USD)"), "profit_usd"),
        CsvColumn(_("Profit running everything (USD)"), "run_all_profit_usd"),
        CsvColumn(_("Profit with the price-threshold rule (USD)"), "threshold_profit_usd"),
        CsvColumn(_("Created (UTC)"), "created_at"),
        CsvColumn(_("Sent for approval (UTC)"), "sent_at"),
    ]
    filter_form = PlanFilterForm
    default_sort = "-created"
    csv_name = "curtailment-plans"

    def get_queryset(self):
        return plans.plan_list(user=self.request.user).defer("inputs", "result")

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name")}

    def context(self):
        return {"can_plan": has_access(self.request.user, MODULE, Access.FULL)}


@module_required(MODULE)
def plan_list(request):
    return PlanTable(request).respond("portal/plans/list.html")


# ---------------------------------------------------------------------------------------------------------
# The planner form


class PlannerForm(forms.Form):
    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    day = forms.DateField(label=_("First day (site time)"), widget=forms.DateInput(attrs={"type": "date"}))
    hour = forms.TypedChoiceField(
        coerce=int, initial=0, label=_("First hour (site time)"), choices=[(h, f"{h:02d}:00") for h in range(24)]
    )
    hours = forms.IntegerField(
        min_value=plans.MIN_HOURS, max_value=plans.MAX_HOURS, initial=24, label=_("Hours (24–168)")
    )
    cap_kw = forms.DecimalField(required=False, min_value=0, label=_("Power cap (kW)"))
    curtail_pct = forms.DecimalField(required=False, min_value=0, max_value=100, label=_("Curtail at least (%)"))
    min_on_hours = forms.DecimalField(required=False, min_value=0, label=_("Minimum on time (h)"))
    min_off_hours = forms.DecimalField(required=False, min_value=0, label=_("Minimum off time (h)"))
    ramp_kw_per_hour = forms.DecimalField(required=False, min_value=0, label=_("Ramp limit (kW per hour)"))

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = {s.pk: s for s in sites}
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"

    def request_body(self) -> dict:
        d = self.cleaned_data
        site = self.sites[d["site"]]
        local = datetime.combine(d["day"], time(d["hour"]), tzinfo=ZoneInfo(site.timezone or "UTC"))
        constraints = {
            key: float(d[key])
            for key in ("cap_kw", "curtail_pct", "min_on_hours", "min_off_hours", "ramp_kw_per_hour")
            if d.get(key) is not None
        }
        start = local.astimezone(UTC)
        start = start.replace(minute=0, second=0, microsecond=0)  # zones with half-hour offsets: the hour before
        return {"site": site.pk, "start": start.isoformat(), "hours": d["hours"], "constraints": constraints}


@module_required(MODULE, Access.FULL)
def planner(request):
    sites = list(site_selectors.manageable_site_list(user=request.user).order_by("name"))
    if request.method == "POST":
        form = PlannerForm(request.POST, sites=sites)
        if form.is_valid():
            try:
                plan = plans.plan_create(actor=request.user, data=form.request_body())
            except DomainError as exc:
                constraint = exc.details.get("constraint")
                message = exc.message
                if constraint:
                    message = gettext("No plan: %(message)s (constraint: %(constraint)s)") % {
                        "message": exc.message, "constraint": constraint,
                    }  # fmt: skip
                form.add_error(None, message)
            else:
                messages.success(request, gettext("Plan #%(id)s made.") % {"id": plan.pk})
                return redirect("portal:curtailment-plan-detail", pk=plan.pk)
    tomorrow = []
    if request.method != "POST":
        latest = _latest_day_ahead(sites)
        first, day = _default_window(sites, latest)
        initial = {"site": first.pk if first else None, "day": day, "hour": 0, "hours": 24}
        form = PlannerForm(initial=initial, sites=sites)
        tomorrow = _tomorrow_plans(request.user, sites, latest)  # not beside a refused form: its errors come first
    response = render(
        request, "portal/plans/planner.html",
        {"form": form, "has_sites": bool(sites), "default_order": True, "tomorrow": tomorrow},
    )  # fmt: skip
    if tomorrow:
        response["X-Cache"] = ",".join(row["cache"] for row in tomorrow)
    return response


TOMORROW_SITES = 6  # at most this many cached reads per page


def _tomorrow_plans(user, sites, latest) -> list[dict]:
    """Tomorrow's plan (site time) of each site priced through tomorrow, the first ``TOMORROW_SITES`` by name: the
    daily job's, through ``plans.day_plan`` (the cache). A miss is queued, not made here: a plan under hard
    constraints may use its whole time limit, and the page reads several sites; the row says it is being made.
    Sites without tomorrow's prices are not read: there is nothing to plan yet."""
    rows = []
    for site in sites:
        day = (timezone.now().astimezone(ZoneInfo(site.timezone or "UTC")) + timedelta(days=1)).date()
        if site.pk not in latest or latest[site.pk] < plans.day_window(site, day) + timedelta(hours=23):
            continue
        cached = plans.day_plan(user=user, site_id=site.pk, day=day, build_on_miss=False)
        value = cached.value or {}
        plan = value.get("plan")
        rows.append({
            "site": site, "day": day, "plan": plan, "cache": cached.state, "pending": cached.value is None,
            "message": None if plan else value.get("message"),
            "curtailed_hours": _curtailed_hours(plan) if plan else 0,
        })  # fmt: skip
        if len(rows) == TOMORROW_SITES:
            break
    return rows


def _curtailed_hours(plan: dict) -> int:
    """Hours in which the plan runs below the site's full power (the detail page's rule)."""
    groups = plan.get("inputs", {}).get("groups", [])
    full_kw = sum(g["count"] * g["kw_each"] for g in groups)
    return sum(1 for kw in plan.get("result", {}).get("plan", {}).get("power_kw", []) if kw < full_kw - 1e-6)


def _latest_day_ahead(sites) -> dict:
    """Each site's last day-ahead interval start (sites without day-ahead prices left out). One query."""
    from django.db.models import Max

    from intelligence.models import PowerMarket, PowerPrice

    return dict(
        PowerPrice.objects.filter(site__in=sites, market=PowerMarket.DAY_AHEAD)
        .values_list("site_id")
        .annotate(last=Max("interval_start"))
    )


def _default_window(sites, latest):
    """The site and day the form starts with: the first site with day-ahead prices, and tomorrow (site time) when it
    has prices for it, else the last day it has prices for (the demo's shipped ERCOT prices end in the past), so the
    first "Plan" a user presses works."""
    first = next((site for site in sites if site.pk in latest), sites[0] if sites else None)
    zone = ZoneInfo(first.timezone if first else "UTC")
    tomorrow = (timezone.now().astimezone(zone) + timedelta(days=1)).date()
    if first is None or first.pk not in latest:
        return first, tomorrow
    # The last day whose 24 hours are all there: the day of the last interval's start, minus one unless it is 23:00.
    last = latest[first.pk].astimezone(zone)
    last_full_day = last.date() if last.hour == 23 else last.date() - timedelta(days=1)
    return first, min(tomorrow, last_full_day)


# ---------------------------------------------------------------------------------------------------------
# One plan


def _load(request, pk: int) -> CurtailmentPlan:
    try:
        return plans.plan_get(user=request.user, plan_id=pk)
    except DomainError:
        raise Http404 from None


def _rows(plan: CurtailmentPlan) -> tuple[list[dict], list[dict], dict]:
    """The schedule as table rows (one per hour, in the site's time), the group legend and the chart's data."""
    tz = ZoneInfo(plan.site.timezone or "UTC")
    groups = plan.inputs.get("groups", [])
    res = plan.result.get("plan", {})
    on = res.get("on_counts", {})
    prices = plan.inputs.get("prices_usd_per_mwh", [])
    full_kw = sum(g["count"] * g["kw_each"] for g in groups)
    rows, labels, curtailed = [], [], []
    for h in range(plan.hours):
        at = (plan.starts_at + timedelta(hours=h)).astimezone(tz)
        power = res.get("power_kw", [0] * plan.hours)[h]
        cut = power < full_kw - 1e-6
        rows.append(
            {
                "hour": at.strftime("%Y-%m-%d %H:%M"),
                "short": at.strftime("%m-%d %H:%M"),
                "price": prices[h] if h < len(prices) else None,
                "on": [(on.get(g["id"], [0] * plan.hours)[h], g["count"]) for g in groups],
                "power_kw": power,
                "revenue": Decimal(res.get("revenue_usd", ["0"] * plan.hours)[h]),
                "cost": Decimal(res.get("cost_usd", ["0"] * plan.hours)[h]),
                "profit": Decimal(res.get("profit_usd", ["0"] * plan.hours)[h]),
                "curtailed": cut,
            }
        )
        labels.append(at.strftime("%m-%d %H:00"))
        curtailed.append(cut)
    legend = [
        {"n": i + 1, "label": g.get("label") or g.get("model"), "count": g["count"], "kw_each": g["kw_each"],
         "ths_each": g["ths_each"], "priority": g.get("priority", 0)}
        for i, g in enumerate(groups)
    ]  # fmt: skip
    chart = {
        "labels": labels,
        "prices": prices,
        "power_kw": res.get("power_kw", []),
        "full_kw": full_kw,
        "curtailed": curtailed,
        "words": {
            "price": gettext("Day-ahead price (USD/MWh)"),
            "power": gettext("Planned power (kW)"),
            "curtailed": gettext("Curtailed hours"),
        },
    }
    return rows, legend, chart


@module_required(MODULE)
def plan_detail(request, pk: int):
    plan = _load(request, pk)
    rows, legend, chart = _rows(plan)
    solver = plan.solver or {}
    gap = solver.get("gap_rel")
    may_send = (
        has_access(request.user, MODULE, Access.FULL)
        and site_selectors.site_is_manageable(user=request.user, site_id=plan.site_id)
        and plan.status in (P.DRAFT, P.SENT)
        and not plan.inputs.get("explicit_groups")
    )
    totals = {
        "plan": plan.profit_usd,
        "run_all": plan.run_all_profit_usd,
        "threshold": plan.threshold_profit_usd,
        "vs_run_all": None if plan.profit_usd is None else plan.profit_usd - plan.run_all_profit_usd,
        "vs_threshold": None if plan.profit_usd is None else plan.profit_usd - plan.threshold_profit_usd,
    }
    return render(
        request,
        "portal/plans/detail.html",
        {
            "plan": plan, "rows": rows, "legend": legend, "chart": chart, "solver": solver,
            "solver_outcome": solver_outcome(solver),
            "gap_pct": None if gap is None else gap * 100,
            "gap_limit_pct": None if solver.get("gap_rel_limit") is None else solver["gap_rel_limit"] * 100,
            "totals": totals, "may_send": may_send,
            "commands": plan.commands.order_by("pk"), "blocks": plans.plan_blocks(plan),
            "curtailed_hours": sum(1 for r in rows if r["curtailed"]),
        },
    )  # fmt: skip


@require_POST
@module_required(MODULE, Access.FULL)
def plan_send(request, pk: int):
    plan = _load(request, pk)
    mode = request.POST.get("mode") or "hard"
    try:
        plan, commands, lines = plans.plan_send(plan=plan, actor=request.user, mode=mode)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("portal:curtailment-plan-detail", pk=pk)
    new = sum(1 for line in lines if line["result"] == "proposed")
    messages.success(
        request,
        gettext("Plan #%(id)s sent for approval: %(new)s new CURTAIL commands, %(total)s in all.")
        % {"id": plan.pk, "new": new, "total": len(commands)},
    )
    return redirect(f"{reverse('portal:command-list')}?site={plan.site_id}&type=CURTAIL")
