"""Reads of report jobs, files, schedules and the subjects a report may be asked for, restricted to what a user sees.

The rule, once: a job or schedule carries its subject's ``site_id`` and, for a client statement, ``customer_id``;
``sites.selectors.scope_of(user).q()`` filters on them. Owners and admins see every row; a site owner sees the rows of
their sites (site reports, and statements of clients hosted there); a hosting client sees only its own client
statements, and only of issued invoices (a draft is the operator's work in progress), never a site report; app
customers and guests see none. Each function is one query (plus the user's grant ids, read once per request)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from hashinsight.core.errors import DomainError
from hashinsight.reports.models import ReportFile, ReportJob, ReportKind, ReportSchedule
from sites.selectors import scope_of


def _scoped(qs: QuerySet, user) -> QuerySet:
    from hashinsight.billing.models import ISSUED_STATUSES

    scope = scope_of(user)
    if scope.kind == "none":
        return qs.none()
    q = scope.q()
    if q is not None:
        qs = qs.filter(q)
    if scope.kind == "customers":
        qs = qs.filter(kind=ReportKind.CLIENT_STATEMENT)
        if qs.model is ReportJob:
            qs = qs.filter(invoice__status__in=ISSUED_STATUSES)
    return qs


def report_job_list(*, user) -> QuerySet[ReportJob]:
    """The jobs ``user`` sees, newest first, with their subject's names and their files."""
    return (
        _scoped(ReportJob.objects.all(), user).select_related("site", "customer", "invoice").prefetch_related("files")
    )


def report_job_get(*, user, job_id) -> ReportJob:
    """One job the user sees; anything else (another client's, a site not granted, no such id) is a 404."""
    try:
        job_id = int(job_id)
    except (TypeError, ValueError):
        job_id = -1
    job = report_job_list(user=user).filter(pk=job_id).first() if 0 < job_id < 2**63 else None
    if job is None:
        raise DomainError("not_found", "No such report.", status=404)
    return job


def report_file_get(*, user, job_id, fmt: str) -> ReportFile:
    job = report_job_get(user=user, job_id=job_id)
    file = ReportFile.objects.filter(job=job, format=fmt).first()
    if file is None:
        raise DomainError("not_found", "This report has no such file (yet).", status=404)
    return file


def report_schedule_list(*, user) -> QuerySet[ReportSchedule]:
    return _scoped(ReportSchedule.objects.all(), user).select_related("site", "customer")


def report_schedule_get(*, user, schedule_id) -> ReportSchedule:
    try:
        schedule_id = int(schedule_id)
    except (TypeError, ValueError):
        schedule_id = -1
    row = report_schedule_list(user=user).filter(pk=schedule_id).first() if 0 < schedule_id < 2**63 else None
    if row is None:
        raise DomainError("not_found", "No such report schedule.", status=404)
    return row


def invoice_choices(*, user) -> QuerySet:
    """Invoices whose statement ``user`` may render: in scope; for a hosting client, issued ones only."""
    from hashinsight.billing.models import ISSUED_STATUSES, Invoice, InvoiceStatus

    scope = scope_of(user)
    if scope.kind == "none":
        return Invoice.objects.none()
    qs = Invoice.objects.exclude(status=InvoiceStatus.VOID).select_related("customer", "site")
    q = scope.q()
    if q is not None:
        qs = qs.filter(q)
    if scope.kind == "customers":
        qs = qs.filter(status__in=ISSUED_STATUSES)
    return qs.order_by("-period_start", "customer__company")


def site_choices(*, user) -> QuerySet:
    """Sites ``user`` may ask a site report for: those they operate (every site for owners and admins, granted ones
    for a site owner); a hosting client's view of a site is its own miners, not the site's figures."""
    from sites.models import Site

    scope = scope_of(user)
    if scope.kind == "all":
        return Site.objects.order_by("name")
    if scope.kind == "sites":
        return Site.objects.filter(pk__in=scope.ids).order_by("name")
    return Site.objects.none()


def customer_choices(*, user) -> QuerySet:
    from sites.models import Customer
    from sites.selectors import customer_list

    return (
        customer_list(user=user).order_by("company")
        if scope_of(user).kind in ("all", "sites")
        else (Customer.objects.none())
    )


def running_q() -> Q:
    return Q(status__in=(ReportJob.Status.QUEUED, ReportJob.Status.RUNNING))
