"""The alerts page: a list table, its live row fragment, and acknowledge/resolve (single or bulk)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.forms.filters import AlertFilterForm
from hashinsight.portal.tables import Column, CsvColumn, ListPage
from hashinsight.portal.views.common import module_required
from sites import selectors as site_selectors
from telemetry import selectors as alert_selectors
from telemetry import services as alert_services
from telemetry.models import Alert
from telemetry.services import NOTE_MAX_CHARS

ROW_TEMPLATE = "portal/_alert_row.html"


def _rank(field: str, values: list[str]) -> Case:
    """Sort by meaning (info < warning < critical), not by the spelling of the stored value."""
    return Case(*[When(**{field: v}, then=Value(i)) for i, v in enumerate(values)], output_field=IntegerField())


class AlertTable(ListPage):
    columns = [
        Column("last_seen", _("Last seen (site time)"), sort="last_seen"),
        Column("severity", _("Severity"), sort=_rank("severity", Alert.Severity.values)),
        Column("status", _("Status"), sort=_rank("status", Alert.Status.values)),
        Column("type", _("Type"), sort="alert_type"),
        Column("site", _("Site"), sort="site__name"),
        Column("miner", _("Miner"), sort="miner__serial"),
        Column("count", _("Count"), sort="count", numeric=True),
        Column("message", _("Message")),
    ]
    csv_columns = [
        CsvColumn(_("Last seen (UTC)"), "last_seen"),
        CsvColumn(_("First seen (UTC)"), "first_seen"),
        CsvColumn(_("Severity"), "severity", display=dict(Alert.Severity.choices)),
        CsvColumn(_("Status"), "status", display=dict(Alert.Status.choices)),
        CsvColumn(_("Type"), "alert_type"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Miner"), "miner__serial"),
        CsvColumn(_("Count"), "count"),
        CsvColumn(_("Message"), "message"),
        CsvColumn(_("Acknowledged at (UTC)"), "acknowledged_at"),
        CsvColumn(_("Acknowledgement note"), "ack_note"),
        CsvColumn(_("Resolved at (UTC)"), "resolved_at"),
        CsvColumn(_("Resolution note"), "resolution_note"),
    ]
    filter_form = AlertFilterForm
    default_sort = "-last_seen"
    csv_name = "alerts"

    def get_queryset(self):
        return alert_selectors.alert_list(user=self.request.user)

    def form_kwargs(self):
        user = self.request.user
        types = alert_selectors.alert_list(user=user).order_by("alert_type").values_list("alert_type", flat=True)
        return {
            "sites": site_selectors.site_list(user=user).only("id", "name").order_by("name"),
            "alert_types": types.distinct(),
        }

    def context(self):
        actable = ActableSites(self.request.user)
        rows = actable.mark(list(self.page.object_list))
        return {"rows": rows, "can_act": actable.any, "note_max": NOTE_MAX_CHARS}


class ActableSites:
    """Which alerts ``user`` may acknowledge and resolve: those on sites they may change (owner and
    admin everywhere, a site owner where granted ``change_site``; a hosting client nowhere)."""

    def __init__(self, user):
        full = has_access(user, Module.HOSTING, Access.FULL)
        self.site_ids = site_selectors.manageable_site_ids(user=user) if full else []
        self.any = self.site_ids is None or bool(self.site_ids)

    def allows(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def mark(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            alert.can_act = self.allows(alert.site_id)
        return alerts


@module_required(Module.HOSTING)
def alert_list(request):
    return AlertTable(request).respond("portal/alert_list.html")


@module_required(Module.HOSTING)
def alert_row(request, pk: int):
    """One table row, rendered by the same template as the page, for live updates. 404 when the
    alert is hidden from the user; 204 when it no longer matches the page's filters (the browser
    removes the row)."""
    alert = get_object_or_404(alert_selectors.alert_list(user=request.user), pk=pk)
    if not AlertTable(request).queryset.filter(pk=pk).exists():
        return HttpResponse(status=204)
    actable = ActableSites(request.user)
    actable.mark([alert])
    return render(request, ROW_TEMPLATE, {"a": alert, "can_act": actable.any})


def _back(request):
    # Only a query string is taken from the form, so the redirect can never leave the alerts page.
    query = QueryDict(request.POST.get("next", "")[:2000]).urlencode()
    return redirect(reverse("portal:alert-list") + (f"?{query}" if query else ""))


def _act(request, service, done_message):
    raw = [request.POST["only"]] if request.POST.get("only") else request.POST.getlist("ids")
    try:
        ids = sorted({int(value) for value in raw})
    except ValueError:
        messages.error(request, _("The selection was not understood; nothing was changed."))
        return _back(request)
    if not ids:
        messages.warning(request, _("Select at least one alert; nothing was changed."))
        return _back(request)
    try:
        note = alert_services.clean_note(request.POST.get("note", ""))
    except DomainError:
        messages.error(
            request,
            _("The note may be at most %(max)d characters; nothing was changed.") % {"max": NOTE_MAX_CHARS},
        )
        return _back(request)
    visible = dict(alert_selectors.alert_list(user=request.user).filter(pk__in=ids).values_list("pk", "site_id"))
    if len(visible) != len(ids):
        raise Http404  # hidden and missing alike
    actable = ActableSites(request.user)
    if not all(actable.allows(site_id) for site_id in visible.values()):
        raise PermissionDenied
    changed = len(service(alert_ids=ids, actor=request.user, note=note))
    text = done_message(changed)
    if changed < len(ids):
        skipped = len(ids) - changed
        text += " " + ngettext("%(n)d was already in that state.", "%(n)d were already in that state.", skipped) % {
            "n": skipped
        }
    messages.success(request, text)
    return _back(request)


def _acknowledged(n: int) -> str:
    return ngettext("%(n)d alert acknowledged.", "%(n)d alerts acknowledged.", n) % {"n": n}


def _resolved(n: int) -> str:
    return ngettext("%(n)d alert resolved.", "%(n)d alerts resolved.", n) % {"n": n}


@require_POST
@module_required(Module.HOSTING, Access.FULL)
def alert_acknowledge(request):
    return _act(request, alert_services.alerts_acknowledge, _acknowledged)


@require_POST
@module_required(Module.HOSTING, Access.FULL)
def alert_resolve(request):
    return _act(request, alert_services.alerts_resolve, _resolved)
