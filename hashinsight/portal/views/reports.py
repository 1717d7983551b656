"""Reports pages (module REPORT): the reports page (ask for a report; the jobs you see with live progress, sorted,
filtered, CSV; download buttons), a job's row (what the page polls every 2 s while a job runs), a file's download,
the download behind an e-mailed link, and the schedules page (REPORT FULL: create, enable, disable, delete).

Reads go through ``hashinsight.reports.selectors`` (another client's report, a site not granted: 404); writes through
``hashinsight.reports.services``, whose refusals come back on the form or as a message. Files leave only through
``_file_response`` (attachment, ``no-store``)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from hashinsight.reports import selectors, services
from hashinsight.reports.api.views import JOB_CSV, file_response
from hashinsight.reports.models import ReportFormat, ReportJob, ReportKind, ReportLanguage

MODULE = Module.REPORT
INVOICES_OFFERED = 200


def _css(form: forms.Form) -> None:
    for field in form.fields.values():
        if isinstance(field.widget, forms.CheckboxSelectMultiple | forms.CheckboxInput):
            continue
        field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"


def _refusal(form: forms.Form, exc: DomainError) -> None:
    field = (exc.details or {}).get("field")
    if field in form.fields:
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


# ---------------------------------------------------------------------------------------------------------
# The reports page


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("Report"), choices=ReportKind.choices)
    site = forms.TypedChoiceField(label=_("Site"), coerce=int, required=False, empty_value=None)
    month = forms.CharField(label=_("Month"), required=False, widget=forms.DateInput(attrs={"type": "month"}),
                            help_text=_("The month of a site report (YYYY-MM)."))  # fmt: skip
    invoice = forms.TypedChoiceField(label=_("Invoice"), coerce=int, required=False, empty_value=None,
                                     help_text=_("A client statement is rendered from its invoice."))  # fmt: skip
    language = forms.ChoiceField(label=_("Language"), choices=ReportLanguage.choices, initial=ReportLanguage.EN)
    formats = forms.MultipleChoiceField(label=_("Formats"), choices=ReportFormat.choices, initial=["pdf"],
                                        widget=forms.CheckboxSelectMultiple)  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        sites = list(selectors.site_choices(user=user).values_list("pk", "name"))
        invoices = selectors.invoice_choices(user=user)[:INVOICES_OFFERED]
        self.fields["site"].choices = [("", gettext("Choose a site")), *sites]
        self.fields["invoice"].choices = [("", gettext("Choose an invoice")), *[
            (i.pk, f"{i.number or gettext('draft %(id)s') % {'id': i.pk}} · {i.customer.company} · "
                   f"{i.period_start:%Y-%m} · {i.site.name}") for i in invoices]]  # fmt: skip
        if not sites or not has_access(user, MODULE, Access.FULL):  # clients: their own statements only
            self.fields["kind"].choices = [(ReportKind.CLIENT_STATEMENT, ReportKind.CLIENT_STATEMENT.label)]
            del self.fields["site"], self.fields["month"]
        else:
            self.fields["month"].initial = f"{timezone.now().date().replace(day=1) - timedelta(days=1):%Y-%m}"
        _css(self)


class ReportFilterForm(ListFilterForm):
    kind = forms.ChoiceField(required=False, choices=[("", _("Any report")), *ReportKind.choices], label=_("Report"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *ReportJob.Status.choices],
                               label=_("Status"))  # fmt: skip
    lookups = {"kind": "kind", "status": "status"}


class ReportTable(ListPage):
    filter_form = ReportFilterForm
    default_sort = "-requested"
    csv_name = "reports"
    csv_columns = JOB_CSV
    columns = [
        Column("report", _("Report"), sort="kind"),
        Column("month", _("Month"), sort="month"),
        Column("language", _("Language"), sort="language"),
        Column("status", _("Status"), sort="status"),
        Column("requested", _("Requested (UTC)"), sort="created_at"),
        Column("files", _("Files")),
    ]

    def __init__(self, request, form):
        self.request_form = form
        super().__init__(request)

    def get_queryset(self):
        return selectors.report_job_list(user=self.request.user)

    def context(self) -> dict:
        return {"request_form": self.request_form, "can_schedule": has_access(self.request.user, MODULE, Access.FULL)}


@never_cache
@module_required(MODULE)
@require_http_methods(["GET", "HEAD", "POST"])
def report_list(request):
    if request.method == "POST":
        form = ReportRequestForm(request.POST, user=request.user)
        if form.is_valid():
            d = form.cleaned_data
            try:
                job = services.report_request(
                    user=request.user, kind=d["kind"], site=d.get("site"), month=d.get("month"),
                    invoice=d.get("invoice"), language=d["language"], formats=d["formats"],
                )  # fmt: skip
            except DomainError as exc:
                if exc.status == 404:
                    raise Http404(exc.message) from exc
                _refusal(form, exc)
            else:
                messages.success(request, gettext("Report #%(id)s is being prepared; it appears below.") % {
                    "id": job.pk})  # fmt: skip
                return redirect("portal:report-list")
        response = ReportTable(request, form).respond("portal/reports/report_list.html")
        response.status_code = 400
        return response
    return ReportTable(request, ReportRequestForm(user=request.user)).respond("portal/reports/report_list.html")


@never_cache
@module_required(MODULE)
def report_row(request, pk: int):
    """One job's table row (the page polls it while the job is queued or running)."""
    job = _job_or_404(request.user, pk)
    return render(request, "portal/reports/_report_row.html", {"job": job})


@never_cache
@module_required(MODULE)
def report_download(request, pk: int, fmt: str):
    try:
        file = selectors.report_file_get(user=request.user, job_id=pk, fmt=fmt)
    except DomainError as exc:
        raise Http404(exc.message) from exc
    return file_response(file)


@never_cache
@require_http_methods(["GET", "HEAD"])
def report_link(request, token: str):
    """The download behind an e-mailed link: a link made for a user needs that user signed in (others: 404); an
    expired link says when it expired (403); a tampered one is a 404."""
    try:
        file = services.file_from_token(token=token, user=request.user)
    except DomainError as exc:
        if exc.code == "login_required":
            return redirect_to_login(request.get_full_path())
        status = 403 if exc.code == "link_expired" else 404
        return render(request, "portal/reports/link_refused.html", {"message": exc.message, "code": exc.code},
                      status=status)  # fmt: skip
    return file_response(file)


def _job_or_404(user, pk) -> ReportJob:
    try:
        return selectors.report_job_get(user=user, job_id=pk)
    except DomainError as exc:
        raise Http404(exc.message) from exc


# ---------------------------------------------------------------------------------------------------------
# Schedules


class ScheduleForm(forms.Form):
    kind = forms.ChoiceField(label=_("Report"), choices=ReportKind.choices)
    site = forms.TypedChoiceField(label=_("Site"), coerce=int, required=False, empty_value=None)
    customer = forms.TypedChoiceField(label=_("Hosting client"), coerce=int, required=False, empty_value=None)
    language = forms.ChoiceField(label=_("Language"), choices=ReportLanguage.choices, initial=ReportLanguage.EN)
    formats = forms.MultipleChoiceField(label=_("Formats"), choices=ReportFormat.choices, initial=["pdf"],
                                        widget=forms.CheckboxSelectMultiple)  # fmt: skip
    recipients = forms.CharField(label=_("Recipients"), max_length=2000,
                                 widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text=_("E-mail addresses, separated by commas or new lines."))  # fmt: skip
    day_of_month = forms.IntegerField(label=_("Day of month"), min_value=1, max_value=28, initial=2,
                                      help_text=_("On this day (1-28) last month's report is sent."))  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        sites = selectors.site_choices(user=user).values_list("pk", "name")
        customers = selectors.customer_choices(user=user).values_list("pk", "company")
        self.fields["site"].choices = [("", gettext("Choose a site")), *sites]
        self.fields["customer"].choices = [("", gettext("Choose a hosting client")), *customers]
        _css(self)


class ScheduleTable(ListPage):
    default_sort = "kind"
    csv_name = "report-schedules"
    columns = [
        Column("kind", _("Report"), sort="kind"),
        Column("subject", _("Subject")),
        Column("day", _("Day of month"), sort="day_of_month", numeric=True),
        Column("recipients", _("Recipients")),
        Column("last", _("Last month sent"), sort="last_month_sent"),
        Column("enabled", _("Enabled"), sort="enabled"),
        Column("actions", ""),
    ]

    def __init__(self, request, form):
        self.schedule_form = form
        super().__init__(request)

    def get_queryset(self):
        return selectors.report_schedule_list(user=self.request.user)

    def context(self) -> dict:
        return {"schedule_form": self.schedule_form}


@never_cache
@module_required(MODULE, Access.FULL)
@require_http_methods(["GET", "HEAD", "POST"])
def schedule_list(request):
    if request.method == "POST":
        form = ScheduleForm(request.POST, user=request.user)
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.schedule_create(
                    user=request.user, kind=d["kind"], site=d.get("site"), customer=d.get("customer"),
                    language=d["language"], formats=d["formats"], recipients=d["recipients"],
                    day_of_month=d["day_of_month"],
                )  # fmt: skip
            except DomainError as exc:
                if exc.status == 404:
                    raise Http404(exc.message) from exc
                _refusal(form, exc)
            else:
                messages.success(request, gettext("Schedule created."))
                return redirect("portal:report-schedules")
        response = ScheduleTable(request, form).respond("portal/reports/schedule_list.html")
        response.status_code = 400
        return response
    return ScheduleTable(request, ScheduleForm(user=request.user)).respond("portal/reports/schedule_list.html")


def _schedule_or_404(user, pk):
    try:
        return selectors.report_schedule_get(user=user, schedule_id=pk)
    except DomainError as exc:
        raise Http404(exc.message) from exc


@module_required(MODULE, Access.FULL)
@require_POST
def schedule_toggle(request, pk: int):
    row = _schedule_or_404(request.user, pk)
    try:
        row = services.schedule_update(user=request.user, schedule=row, enabled=not row.enabled)
    except DomainError as exc:  # a read-only grant on the schedule's site
        raise PermissionDenied(exc.message) from exc
    messages.success(request, gettext("Schedule enabled.") if row.enabled else gettext("Schedule disabled."))
    return redirect("portal:report-schedules")


@module_required(MODULE, Access.FULL)
@require_POST
def schedule_delete(request, pk: int):
    row = _schedule_or_404(request.user, pk)
    try:
        services.schedule_delete(user=request.user, schedule=row)
    except DomainError as exc:
        raise PermissionDenied(exc.message) from exc
    messages.success(request, gettext("Schedule deleted."))
    return redirect("portal:report-schedules")
