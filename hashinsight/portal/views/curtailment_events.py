"""Curtailment events pages (CURTAILMENT READ to see; FULL and a manage grant on the site to preview, start and
end): the events (sort, filter by site, status, source and priority, CSV, with energy avoided and revenue forgone),
the event form with its preview (miners, kW shed, revenue forgone per hour, restore batches and time) and the Start
button under it, and one event: status, timeline, per-miner states with confirmation and drift, batches, its
CURTAIL commands (linked to the commands pages), energy avoided and revenue forgone, and End now.

Reads go through ``intelligence.curtailment_events`` selectors (hidden → 404); every write through its services,
whose refusals come back on the form or as a message (the minimum-duration refusal says until when), never as a
server error.

Preview before start: the form's "Preview" posts the inputs and the page answers with the preview and a fingerprint
of the inputs it was made from; "Start" is refused (and the preview made again) when the inputs changed since, so
what starts is what was shown. ``static/js/curtailment-events-form.js`` refreshes the preview as the inputs change
(the same view, answering only the preview part).

Live detail: ``static/js/curtailment-events-live.js`` re-reads the page every 5 s while the event is not finished
and swaps its ``data-live-region`` parts. Polling, not /ws/alerts/: what moves an event (telemetry confirmation,
drift, restore batches, settlement) happens in the events' tick job, which sends no WebSocket frame; the commands'
frames would show only a part of it. One small request every 5 s per open page, stopped when the event is over
and while the tab is hidden."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, Role, has_access, role_of
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from hashinsight.portal.views.response_profiles import SCOPE_FIELD, ScopeFields, refusal_to_form, scope_words
from intelligence import curtailment_events as events
from intelligence import response_profiles as rp
from intelligence.models import (
    CurtailmentEvent,
    CurtailmentEventMiner,
    CurtailmentMode,
    CurtailmentPriority,
    DriftAction,
    ResponseProfile,
    ScopeKind,
)
from sites import selectors as site_selectors

MODULE = Module.CURTAILMENT
E = CurtailmentEvent.Status
M = CurtailmentEventMiner.State
FINAL = (E.ENDED, E.CANCELLED, E.FAILED)
MINER_ROWS = 500  # per-miner rows shown on the page; the API and the admin have them all
POLL_SECONDS = 5
PREVIEW_ROWS = 20  # miners listed under the preview, in restore order


# ---------------------------------------------------------------------------------------------------------
# The events


class EventFilterForm(ListFilterForm):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *E.choices], label=_("Status"))
    source = forms.ChoiceField(
        required=False, choices=[("", _("Any source")), *CurtailmentEvent.Source.choices], label=_("Source")
    )
    priority = forms.ChoiceField(
        required=False, choices=[("", _("Any priority")), *CurtailmentPriority.choices], label=_("Priority")
    )
    day = forms.DateField(
        required=False, label=_("Started on (UTC date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    lookups = {"site": "site_id", "status": "status", "source": "source", "priority": "priority",
               "day": "starts_at__date"}  # fmt: skip

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]


class EventTable(ListPage):
    columns = [
        Column("id", _("Event"), sort="id", numeric=True),
        Column("site", _("Site"), sort="site__name"),
        Column("status", _("Status"), sort="status"),
        Column("source", _("Source"), sort="source"),
        Column("priority", _("Priority"), sort="priority"),
        Column("mode", _("Mode"), sort="target_kw"),
        Column("starts", _("Start (UTC)"), sort="starts_at"),
        # Units in the cells (kW, kWh, $), so the headers stay short enough for the table to fit.
        Column("shed", _("Shed"), sort="shed_kw", numeric=True),
        Column("energy", _("Energy avoided"), sort="energy_avoided_kwh", numeric=True),
        Column("revenue", _("Revenue forgone"), sort="revenue_forgone_usd", numeric=True),
    ]
    csv_columns = [
        CsvColumn(_("Event"), "id"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Status"), "status", display=dict(E.choices)),
        CsvColumn(_("Source"), "source", display=dict(CurtailmentEvent.Source.choices)),
        CsvColumn(_("External event id"), "external_id"),
        CsvColumn(_("Priority"), "priority", display=dict(CurtailmentPriority.choices)),
        CsvColumn(_("Mode"), "mode", display=dict(CurtailmentMode.choices)),
        CsvColumn(_("Reduction asked (kW)"), "target_kw"),
        CsvColumn(_("Start (UTC)"), "starts_at"),
        CsvColumn(_("Earliest end (UTC)"), "min_end_at"),
        CsvColumn(_("Latest end (UTC)"), "max_end_at"),
        CsvColumn(_("Ended (UTC)"), "ended_at"),
        CsvColumn(_("Shed (kW)"), "shed_kw"),
        CsvColumn(_("Energy avoided (kWh)"), "energy_avoided_kwh"),
        CsvColumn(_("Revenue forgone (USD)"), "revenue_forgone_usd"),
        CsvColumn(_("Reason"), "reason"),
    ]
    filter_form = EventFilterForm
    default_sort = "-starts"
    csv_name = "curtailment-events"

    def get_queryset(self):
        return events.event_list(user=self.request.user).defer("preview")

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name")}

    def context(self):
        full = has_access(self.request.user, MODULE, Access.FULL)
        manages = full and site_selectors.manageable_site_list(user=self.request.user).exists()
        return {"can_start": manages}


@module_required(MODULE)
def event_list(request):
    return EventTable(request).respond("portal/events/list.html")


# ---------------------------------------------------------------------------------------------------------
# The event form and its preview


def _blank_first(label, choices):
    return [("", label), *choices]


class EventForm(ScopeFields):
    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    profile = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label=_("Response profile"),
        help_text=_("Fields left on “profile's or default” take the profile's value (without a profile, the default)."),
    )  # fmt: skip
    mode = forms.ChoiceField(required=False, label=_("Mode"))
    target_kw = forms.DecimalField(required=False, min_value=Decimal("0.001"), max_digits=12, decimal_places=3,
                                   label=_("Reduction (kW)"))  # fmt: skip
    priority = forms.ChoiceField(required=False, label=_("Priority"))
    soft = forms.BooleanField(required=False, label=_("Throttle rather than stop (kW reduction only)"))
    min_duration_minutes = forms.IntegerField(required=False, min_value=0, label=_("Minimum duration (min)"))
    max_duration_minutes = forms.IntegerField(required=False, min_value=1, label=_("Maximum duration (min)"))
    restore_batch_size = forms.IntegerField(required=False, min_value=1, label=_("Restore batch (miners)"))
    restore_interval_seconds = forms.IntegerField(required=False, min_value=0, label=_("Restore interval (s)"))
    drift_action = forms.ChoiceField(required=False, label=_("A miner that resumes during the event"))
    reason = forms.CharField(required=False, max_length=300, label=_("Reason (optional)"))
    preview_of = forms.CharField(required=False, widget=forms.HiddenInput)

    field_order = ["site", "profile", "mode", "target_kw", "priority", "soft", "scope_kind", "scope_zones",
                   "scope_customers", "scope_racks", "scope_miners"]  # fmt: skip
    # What the preview depends on (durations, drift action and reason do not change it).
    SIGNED = (
        "site", "profile", "mode", "target_kw", "priority", "soft", "scope_kind", "scope_zones", "scope_customers",
        "scope_racks", "scope_miners", "restore_batch_size", "restore_interval_seconds",
    )  # fmt: skip

    def __init__(self, *args, sites=(), profiles=(), **kwargs):
        super().__init__(*args, **kwargs)
        theirs = _("Profile's or default")
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        many = len(sites) > 1
        self.fields["profile"].choices = _blank_first(
            _("None"), [(p.pk, f"{p.site.name} · {p.name}" if many else p.name) for p in profiles]
        )
        self.fields["mode"].choices = _blank_first(theirs, CurtailmentMode.choices)
        self.fields["priority"].choices = _blank_first(theirs, CurtailmentPriority.choices)
        self.fields["drift_action"].choices = _blank_first(theirs, DriftAction.choices)
        self.fields["scope_kind"].choices = _blank_first(theirs, ScopeKind.choices)
        self.fields["scope_kind"].required = False
        self.setup_scope(sites)
        from hashinsight.portal.views.response_profiles import _css

        _css(self)
        for name in ("min_duration_minutes", "max_duration_minutes", "restore_batch_size", "restore_interval_seconds",
                     "target_kw"):  # fmt: skip
            self.fields[name].widget.attrs["placeholder"] = str(theirs)

    def fingerprint(self) -> str:
        """What the preview was made from: Start is refused unless the inputs are the same."""
        d = self.cleaned_data
        raw = json.dumps({k: d.get(k) for k in self.SIGNED}, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def clean(self):
        d = super().clean()
        profile = d.get("profile")
        theirs = profile is None or d.get("site") is None
        if not theirs and not ResponseProfile.objects.filter(pk=profile, site_id=d["site"]).exists():
            self.add_error("profile", gettext("This profile is not one of the chosen site's."))
        return d

    def kwargs(self) -> dict:
        """The service's arguments: None where the form was left on the profile's value."""
        d = self.cleaned_data
        profile = d.get("profile")
        blank = None

        def opt(name):
            value = d.get(name)
            return blank if value in (None, "") else value

        kind = d.get("scope_kind") or ""
        scope = None if (kind == "" and profile is not None) else self.scope()
        mode = opt("mode")
        if mode is None and profile is None:
            mode = CurtailmentMode.FULL_STOP
        return {
            "site_id": d["site"], "profile_id": profile, "mode": mode,
            "target_kw": None if d.get("target_kw") is None else str(d["target_kw"]),
            "priority": opt("priority"), "scope": scope, "soft": bool(d.get("soft")),
            "restore_batch_size": opt("restore_batch_size"),
            "restore_interval_seconds": opt("restore_interval_seconds"),
        }  # fmt: skip

    def start_kwargs(self) -> dict:
        d = self.cleaned_data
        out = self.kwargs()
        for name in ("min_duration_minutes", "max_duration_minutes", "drift_action"):
            out[name] = None if d.get(name) in (None, "") else d[name]
        out["reason"] = d.get("reason") or ""
        return out


def _preview_view(preview: dict) -> dict:
    """The preview's numbers for the template: kW, TH/s and USD as Decimals, restore time in minutes."""
    from sites.models import Customer

    restore = preview.get("restore", {})
    shown = preview["miners"][:PREVIEW_ROWS]
    names = dict(Customer.objects.filter(pk__in={m["customer"] for m in shown if m.get("customer")})
                 .values_list("pk", "company"))  # fmt: skip
    shown = [{**m, "customer_name": names.get(m.get("customer"), "")} for m in shown]
    return {
        **preview,
        "shed_kw_d": Decimal(preview["shed_kw"]),
        "ths_d": Decimal(preview["ths"]),
        "usd_per_hour_d": Decimal(preview["revenue_forgone_usd_per_hour"]),
        "energy_kwh_per_hour_d": Decimal(preview["energy_kwh_per_hour"]),
        "restore_minutes": Decimal(restore.get("total_seconds", 0)) / 60,
        "miners_shown": shown,
        "miners_more": max(0, preview["miner_count"] - PREVIEW_ROWS),
        "available_kw_d": Decimal(preview["available_kw"]),
    }


@module_required(MODULE, Access.FULL)
def event_create(request):
    sites = list(site_selectors.manageable_site_list(user=request.user).order_by("name"))
    profiles = list(
        ResponseProfile.objects.filter(site__in=sites).select_related("site").order_by("site__name", "name")
    )
    preview = None
    partial = request.headers.get("X-Requested-With") == "fetch"
    if request.method == "POST":
        form = EventForm(request.POST, sites=sites, profiles=profiles)
        action = request.POST.get("action", "preview")
        if form.is_valid():
            try:
                if action == "start" and request.POST.get("preview_of") == form.fingerprint():
                    event = events.event_start(actor=request.user, **form.start_kwargs())
                    messages.success(request, gettext("Event #%(id)s started.") % {"id": event.pk})
                    return redirect("portal:curtailment-event-detail", pk=event.pk)
                if action == "start":
                    messages.warning(request, gettext("The inputs changed since the preview: check this preview, "
                                                      "then start."))  # fmt: skip
                preview = _preview_view(events.event_preview(actor=request.user, **form.kwargs()))
                data = form.data.copy()
                data["preview_of"] = form.fingerprint()
                form.data = data
            except DomainError as exc:
                refusal_to_form(form, exc, fields=SCOPE_FIELD)
    else:
        with_default = {p.site_id for p in profiles if p.is_default}
        first = next((s for s in sites if s.pk in with_default), sites[0] if sites else None)
        if request.GET.get("site", "").isdigit():
            first = next((s for s in sites if s.pk == int(request.GET["site"])), first)
        default = next((p for p in profiles if first and p.site_id == first.pk and p.is_default), None)
        form = EventForm(initial={"site": getattr(first, "pk", None), "profile": getattr(default, "pk", None)},
                         sites=sites, profiles=profiles)  # fmt: skip
    context = {"form": form, "preview": preview, "has_sites": bool(sites)}
    if partial:
        return render(request, "portal/events/_preview.html", context)
    return render(request, "portal/events/form.html", context)


# ---------------------------------------------------------------------------------------------------------
# One event


def _load(request, pk: int) -> CurtailmentEvent:
    if pk > rp.MAX_ID:  # no row has it, and the database driver would refuse the number
        raise Http404
    try:
        return events.event_get(user=request.user, event_id=pk)
    except DomainError:
        raise Http404 from None


def _timeline(event: CurtailmentEvent) -> list[dict]:
    """The event's moments in order; the ones still ahead are marked as expected."""
    rows = [
        (_("Created"), event.created_at, True),
        (_("Start"), event.starts_at, True),
        (_("Confirmed by telemetry"), event.confirmed_at, event.confirmed_at is not None),
        (_("Earliest end (minimum duration)"), event.min_end_at, True),
        (_("End asked"), event.end_requested_at, event.end_requested_at is not None),
        (_("Latest end (maximum duration)"), event.max_end_at, True),
        (_("Last batch restored"), event.ended_at, event.ended_at is not None),
    ]
    from django.utils import timezone

    now = timezone.now()
    out = [{"label": label, "at": at, "past": at <= now} for label, at, shown in rows if shown and at is not None]
    return sorted(out, key=lambda r: r["at"])


def _batches(event: CurtailmentEvent) -> list[dict]:
    from django.db.models import Count, Q, Sum

    rows = (
        event.miners.values("batch")
        .annotate(
            n=Count("id"), kw=Sum("kw_before"), restored=Count("id", filter=Q(state=M.RESTORED)),
            confirmed=Count("id", filter=Q(state=M.CONFIRMED)), drifted=Count("id", filter=Q(state=M.DRIFTED)),
            failed=Count("id", filter=Q(state=M.FAILED)),
        )
        .order_by("batch")
    )  # fmt: skip
    return [{**r, "restore_at": events.batch_end(event, r["batch"])} for r in rows]


def _decimal(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


@module_required(MODULE)
def event_detail(request, pk: int):
    event = _load(request, pk)
    body = events.event_body(event)
    may_end = body["can_end"] and rp.may_write(user=request.user, site_id=event.site_id)
    from django.utils import timezone

    now = timezone.now()
    before_min = now < event.min_end_at and event.priority != CurtailmentPriority.EMERGENCY
    miners = list(events.event_miners(event).select_related("customer")[: MINER_ROWS + 1])
    preview = event.preview or {}
    return render(request, "portal/events/detail.html", {
        "event": event, "body": body, "may_end": may_end, "before_min": before_min,
        "is_owner": role_of(request.user) == Role.OWNER, "timeline": _timeline(event),
        "miners": miners[:MINER_ROWS], "miners_more": len(miners) > MINER_ROWS, "batches": _batches(event),
        "commands": event.commands.annotate(n_targets=Count("targets")).order_by("pk"),
        "states": body["miners_summary"]["by_state"],
        "state_labels": dict(M.choices), "scope_words": scope_words(event.scope), "live": event.status not in FINAL,
        "poll_seconds": POLL_SECONDS,
        "usd_per_hour": _decimal(preview.get("revenue_forgone_usd_per_hour")),
        "restore_minutes": Decimal(preview.get("restore", {}).get("total_seconds", 0)) / 60,
    })  # fmt: skip


@require_POST
@module_required(MODULE, Access.FULL)
def event_end(request, pk: int):
    event = _load(request, pk)
    if not rp.may_write(user=request.user, site_id=event.site_id):
        raise PermissionDenied
    try:
        event = events.event_end(actor=request.user, event=event, reason=request.POST.get("reason", "")[:300],
                                 force=request.POST.get("force") == "1")  # fmt: skip
    except DomainError as exc:
        if exc.code == "min_duration":
            from django.utils.dateparse import parse_datetime

            until = parse_datetime(exc.details.get("min_end_at", "")) or event.min_end_at
            messages.error(request, gettext(
                "Not ended: this event must run until %(until)s UTC (its minimum duration). End it then, or, as an "
                "owner, force it.") % {"until": until.strftime("%Y-%m-%d %H:%M")})  # fmt: skip
        else:
            messages.error(request, exc.message)
        return redirect("portal:curtailment-event-detail", pk=pk)
    if event.status == E.CANCELLED:
        messages.success(request, gettext("Event #%(id)s cancelled before any miner was curtailed.") % {"id": event.pk})
    else:
        messages.success(request, gettext("Event #%(id)s ending: miners come back in batches.") % {"id": event.pk})
    return redirect("portal:curtailment-event-detail", pk=pk)
