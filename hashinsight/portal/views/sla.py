"""SLA pages (module FINANCE): force-majeure windows and each client's SLA history.

- **Force-majeure windows** (READ to see: a site owner its sites, a client the sites its miners stand in; sort,
  filter, CSV): owners and admins (FULL) add a window with its reason and delete one, unless an issued invoice
  already covers its days (the service refuses; the row says "invoiced" and offers no button).
- **SLA history**: months, SLA uptime against the target, met or not, credits, and the downloads (the signed
  certificate JSON and its ERC-721 metadata). A client sees only its own; operators pick a client with the filter.
  A certificate file can be checked on the same page (``verify``).

Reads go through ``hashinsight.billing.sla_windows`` and ``sla_selectors`` (hidden → 404); writes through the
services, whose refusals come back on the form or as a message."""

from __future__ import annotations

import json
from datetime import UTC

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ParseError

from hashinsight.accounts.roles import Access, Module, role_of, sees_staff_identities
from hashinsight.billing import certificates, sla_selectors, sla_windows
from hashinsight.billing.api.sla_views import CERT_CSV, document_filename, fm_csv_columns
from hashinsight.core.api import parsers
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites import selectors as site_selectors

MODULE = Module.FINANCE
MAX_UPLOAD = 256 * 1024


# ---------------------------------------------------------------------------------------------------------
# Force-majeure windows


class WindowFilterForm(ListFilterForm):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    q = forms.CharField(required=False, label=_("Reason contains"), max_length=80)
    lookups = {"site": "site_id", "q": "reason__icontains"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]


class WindowTable(ListPage):
    filter_form = WindowFilterForm
    default_sort = "-start"
    csv_name = "force-majeure"

    def __init__(self, request):
        # The operator who entered a window is for operators: a hosting client gets neither the column nor its sort.
        self.sees_staff = sees_staff_identities(request.user)
        entered_by = [Column("created_by", _("Entered by"), sort="created_by__username")] if self.sees_staff else []
        self.columns = [
            Column("start", _("Start (UTC)"), sort="start"),
            Column("end", _("End (UTC)"), sort="end"),
            Column("hours", _("Duration (h)"), numeric=True),
            Column("site", _("Site"), sort="site__name"),
            Column("reason", _("Reason")),
            *entered_by,
            Column("actions", _("Actions")),
        ]
        self.csv_columns = fm_csv_columns(request.user)
        super().__init__(request)

    def get_queryset(self):
        return sla_windows.force_majeure_list(user=self.request.user)

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name")}

    def context(self):
        rows = list(self.page.object_list)
        frozen = sla_windows.frozen_ids(rows)
        may_write = sla_windows.may_write(user=self.request.user)
        for w in rows:
            w.hours = (w.end - w.start).total_seconds() / 3600
            w.frozen = w.pk in frozen
            w.may_delete = may_write and not w.frozen
        return {"rows": rows, "can_create": may_write, "sees_staff": self.sees_staff}


@module_required(MODULE)
def force_majeure_list(request):
    return WindowTable(request).respond("portal/sla/force_majeure_list.html")


class WindowForm(forms.Form):
    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    start = forms.DateTimeField(
        label=_("Start (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    end = forms.DateTimeField(
        label=_("End (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What happened and who declared it (for example: grid operator emergency notice 2026-114)."),
    )  # fmt: skip

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"

    def clean(self):
        data = super().clean()
        for name in ("start", "end"):  # the inputs are UTC, whatever the server's zone
            if data.get(name) is not None:
                data[name] = data[name].replace(tzinfo=None).replace(tzinfo=UTC)
        return data


@module_required(MODULE, Access.FULL)
def force_majeure_create(request):
    sites = list(site_selectors.manageable_site_list(user=request.user).order_by("name"))
    form = WindowForm(request.POST or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            sla_windows.force_majeure_create(
                actor=request.user, site_id=d["site"], start=d["start"], end=d["end"], reason=d["reason"]
            )
        except DomainError as exc:
            field = (exc.details or {}).get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, gettext("Force-majeure window saved."))
            return redirect("portal:force-majeure-list")
    return render(request, "portal/sla/force_majeure_form.html", {"form": form, "has_sites": bool(sites)})


@require_POST
@module_required(MODULE, Access.FULL)
def force_majeure_delete(request, pk: int):
    try:
        window = sla_windows.force_majeure_get(user=request.user, pk=pk)
        sla_windows.force_majeure_delete(actor=request.user, window=window)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404 from None
        messages.error(request, exc.message)
    else:
        messages.success(request, gettext("Force-majeure window deleted."))
    return redirect("portal:force-majeure-list")


# ---------------------------------------------------------------------------------------------------------
# SLA history


class HistoryFilterForm(ListFilterForm):
    customer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Hosting client"))
    met = forms.ChoiceField(
        required=False, label=_("Target"), choices=[("", _("Met or missed")), ("yes", _("Met")), ("no", _("Missed"))]
    )
    lookups = {"customer": "customer_id"}

    def __init__(self, *args, customers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = [("", _("All clients")), *[(c.pk, c.company or c.slug) for c in customers]]

    def filter_met(self, qs, value):
        return qs.filter(met=value == "yes")


class HistoryTable(ListPage):
    columns = [
        Column("month", _("Month"), sort="month"),
        Column("client", _("Hosting client"), sort="customer__company"),
        Column("contract", _("Contract"), sort="contract__number"),
        Column("uptime", _("SLA uptime / target (%)"), sort="uptime_pct", numeric=True),
        Column("met", _("Target"), sort="met"),
        Column("credits", _("SLA credits"), sort="credits", numeric=True),
        Column("invoice", _("Invoice")),
        Column("downloads", _("Downloads")),
    ]
    csv_columns = CERT_CSV
    filter_form = HistoryFilterForm
    default_sort = "-month"
    csv_name = "sla-history"

    def get_queryset(self):
        return sla_selectors.certificate_list(user=self.request.user)

    def form_kwargs(self):
        return {"customers": site_selectors.customer_list(user=self.request.user).order_by("company")}

    def context(self):
        return {"is_client": role_of(self.request.user) == "CLIENT", "verification": None}


@module_required(MODULE)
def sla_history(request):
    return HistoryTable(request).respond("portal/sla/history.html")


@module_required(MODULE)
def certificate_document(request, pk: int):
    try:
        cert = sla_selectors.certificate_get(user=request.user, pk=pk)
    except DomainError:
        raise Http404 from None
    kind = request.GET.get("as")
    if kind == "erc721":
        url = request.build_absolute_uri(reverse("portal:sla-history") + f"?customer={cert.customer_id}")
        body = json.dumps(certificates.erc721_metadata(cert, external_url=url), ensure_ascii=False, indent=2).encode()
        name = document_filename(cert, "-erc721")
    else:
        body, name = certificates.document_bytes(cert.document), document_filename(cert)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


class VerifyForm(forms.Form):
    file = forms.FileField(label=_("Certificate file (.json)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs.update({"class": "form-control", "accept": "application/json,.json"})


@module_required(MODULE)
def certificate_verify(request):
    form = VerifyForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            form.add_error("file", gettext("A certificate file is at most 256 KB."))
        else:
            try:
                document = parsers.loads(upload.read())
            except ParseError:
                form.add_error("file", gettext("The file is not JSON."))
            else:
                result = certificates.verify_certificate(document)
    return render(request, "portal/sla/verify.html", {"form": form, "result": result})
