"""Writes of the reports: asking for a report (``report_request``), rendering it (``report_render``, the job's
steps with their progress), the monthly schedules (``schedule_create`` / ``schedule_update`` / ``schedule_delete``
and ``schedules_run``) and the e-mail of a scheduled report with expiring links.

Who may ask for what (the REPORT row of the matrix, read with the scope rules of ``hashinsight.reports.selectors``):
- a monthly site report: REPORT FULL and the site among those the user operates (owners and admins: all; a site
  owner: granted sites, read-only grants included, since a report changes nothing at the site);
- a client statement: the invoice in the user's scope. A hosting client (REPORT READ) may ask for the statement of
  its own issued invoices (a re-render, in its language and formats): reading its own statement is what READ (own)
  grants, and it only ever sees its own files. Drafts are for operators.
A hidden subject answers 404, a visible one the user may not report on 403, bad input 400; nothing is written then.

Every state change of a job is one short transaction that also appends ``report_job.changed`` to the outbox (the
portal polls the job; the event is for anyone subscribed). Rendering never raises to the worker: a failure is recorded
on the job (``failed`` with a message) and the task ends."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core import signed_links
from hashinsight.core.errors import DomainError
from hashinsight.events.outbox import publish
from hashinsight.reports import selectors
from hashinsight.reports.data import month_start, previous_month
from hashinsight.reports.models import (
    ReportFile,
    ReportFormat,
    ReportJob,
    ReportKind,
    ReportLanguage,
    ReportSchedule,
)

log = logging.getLogger(__name__)

LINK_PURPOSE = "report_file"
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_MONTH = date(2009, 1, 1)
MAX_RECIPIENTS = 20
STUCK_QUEUED = timedelta(minutes=10)
STUCK_RUNNING = timedelta(hours=1)
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def _bad(code: str, field: str, message: str) -> DomainError:
    return DomainError(code, message, status=400, details={"field": field})


# ---------------------------------------------------------------------------------------------------------
# Input


def parse_month(value) -> date:
    """``YYYY-MM`` (or a date) → the month's first day; not before 2009, not after the current month."""
    if isinstance(value, date):
        month = month_start(value)
    else:
        m = MONTH_RE.match(str(value or "").strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise _bad("invalid_month", "month", "Give the month as YYYY-MM.")
        month = date(int(m.group(1)), int(m.group(2)), 1)
    if month < FIRST_MONTH or month > month_start(timezone.now().date()):
        raise _bad("invalid_month", "month", "The month must be between 2009-01 and the current month.")
    return month


def parse_formats(value) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple) or not value:
        raise _bad("invalid_formats", "formats", "Choose at least one format: pdf, xlsx, pptx.")
    out = []
    for v in value:
        if not isinstance(v, str) or v not in ReportFormat.values:
            raise _bad("invalid_formats", "formats", "Formats are pdf, xlsx and pptx.")
        if v not in out:
            out.append(v)
    return [f for f in ReportFormat.values if f in out]  # a stable order


def parse_language(value) -> str:
    value = value or ReportLanguage.EN
    if value not in ReportLanguage.values:
        raise _bad("invalid_language", "language", "Languages are en and zh-hans.")
    return value


def parse_kind(value) -> str:
    if value not in ReportKind.values:
        raise _bad("invalid_kind", "kind", "The report is site_monthly or client_statement.")
    return value


def _int_id(value, field: str) -> int:
    if isinstance(value, bool):
        raise _bad("invalid", field, f"{field} is a numeric id.")
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise _bad("invalid", field, f"{field} is a numeric id.") from None
    if not 0 < out < 2**63:
        raise DomainError("not_found", f"No such {field}.", status=404)
    return out


def _site_for(user, site_id):
    """The site, if the user may report on it: 404 when they do not see it, 403 when they see it but may not."""
    from sites.selectors import site_list

    site_id = _int_id(site_id, "site")
    site = selectors.site_choices(user=user).filter(pk=site_id).first()
    if site is not None:
        if not has_access(user, Module.REPORT, Access.FULL):
            raise DomainError("forbidden", "Site reports need full access to reports.", status=403)
        return site
    if site_list(user=user).filter(pk=site_id).exists():
        raise DomainError("forbidden", "Site reports are for the site's operators.", status=403)
    raise DomainError("not_found", "No such site.", status=404)


def _invoice_for(user, invoice_id):
    invoice_id = _int_id(invoice_id, "invoice")
    invoice = selectors.invoice_choices(user=user).filter(pk=invoice_id).first()
    if invoice is None:
        raise DomainError("not_found", "No such invoice.", status=404)
    return invoice


# ---------------------------------------------------------------------------------------------------------
# Requests


def report_request(*, user, kind=None, site=None, invoice=None, month=None, language=None, formats=None) -> ReportJob:
    """Ask for a report; the job renders on a worker. An identical job still queued or running is returned instead
    of a second one (a double click queues one job)."""
    if not has_access(user, Module.REPORT, Access.READ):
        raise DomainError("forbidden", "You have no access to reports.", status=403)
    kind = parse_kind(kind)
    language = parse_language(language)
    formats = parse_formats(formats if formats is not None else ["pdf"])
    if kind == ReportKind.SITE_MONTHLY:
        if site in (None, ""):
            raise _bad("required", "site", "Choose the site.")
        subject = {"site": _site_for(user, site), "customer": None, "invoice": None}
        month = parse_month(month)
    else:
        if invoice in (None, ""):
            raise _bad("required", "invoice", "Choose the invoice.")
        inv = _invoice_for(user, invoice)
        subject = {"site": inv.site, "customer": inv.customer, "invoice": inv}
        month = month_start(inv.period_start)
    return _job_create(kind=kind, month=month, language=language, formats=formats, requested_by=user, **subject)


@transaction.atomic
def _job_create(*, kind, site, customer, invoice, month, language, formats, requested_by, schedule=None) -> ReportJob:
    same = ReportJob.objects.filter(
        selectors.running_q(),
        kind=kind,
        site=site,
        customer=customer,
        invoice=invoice,
        month=month,
        language=language,
        formats=formats,
        schedule=schedule,
    ).first()
    if same is not None:
        return same
    job = ReportJob.objects.create(
        kind=kind,
        site=site,
        customer=customer,
        invoice=invoice,
        month=month,
        language=language,
        formats=formats,
        requested_by=requested_by,
        schedule=schedule,
    )
    _publish(job)
    _queue_on_commit(job.pk)
    return job


@transaction.atomic
def report_rerun(*, user, job: ReportJob) -> ReportJob:
    """Render a failed job again (its files, if any, are replaced). A job queued, running or done is left as it is."""
    if not has_access(user, Module.REPORT, Access.FULL):
        raise DomainError("forbidden", "Rendering again needs full access to reports.", status=403)
    row = ReportJob.objects.select_for_update().get(pk=job.pk)
    if row.status != ReportJob.Status.FAILED:
        return row
    row.status, row.progress_pct, row.message, row.started_at, row.finished_at = (
        ReportJob.Status.QUEUED,
        0,
        "",
        None,
        None,
    )
    row.save(update_fields=["status", "progress_pct", "message", "started_at", "finished_at"])
    _publish(row)
    _queue_on_commit(row.pk)
    return row


def _queue_on_commit(job_id: int) -> None:
    def queue():
        from hashinsight.reports.report_tasks import render

        try:
            render.delay(job_id)
        except Exception:  # a broker down: the daily sweep (schedules_run) sends stuck jobs again
            log.warning("report job not queued; the sweep will retry", extra={"report_job_id": job_id})

    transaction.on_commit(queue)


def _publish(job: ReportJob) -> None:
    publish(
        "report_job.changed",
        aggregate=f"report_job:{job.pk}",
        payload={
            "job_id": job.pk,
            "status": job.status,
            "progress_pct": job.progress_pct,
            "requested_by_id": job.requested_by_id,
            "site_id": job.site_id,
            "customer_id": job.customer_id,
        },
    )


# ---------------------------------------------------------------------------------------------------------
# Rendering


@transaction.atomic
def _step(job_id: int, *, pct: int, status: str | None = None, message: str | None = None, **fields) -> ReportJob:
    job = ReportJob.objects.select_for_update().get(pk=job_id)
    job.progress_pct = max(0, min(100, pct))
    if status:
        job.status = status
    if message is not None:
        job.message = message[:300]
    for k, v in fields.items():
        setattr(job, k, v)
    job.save(update_fields=["progress_pct", "status", "message", *fields])
    _publish(job)
    return job


def report_render(*, job_id: int) -> ReportJob | None:
    """Render a job's files, step by step (progress 0 → 100). A job already done is left alone (a redelivered task
    changes nothing); a failure is recorded on the job, never raised. Returns the job (None: no such job)."""
    job = ReportJob.objects.filter(pk=job_id).first()
    if job is None or job.status == ReportJob.Status.DONE:
        return job
    job = _step(job_id, pct=5, status=ReportJob.Status.RUNNING, message="", started_at=timezone.now())
    try:
        files = _render_files(job)
    except Exception as exc:  # recorded, not raised: the job page shows why
        log.exception("report job failed", extra={"report_job_id": job_id})
        return _step(
            job_id,
            pct=job.progress_pct,
            status=ReportJob.Status.FAILED,
            message=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
    job = _step(job_id, pct=100, status=ReportJob.Status.DONE, finished_at=timezone.now())
    log.info("report job done", extra={"report_job_id": job_id, "files": {f.format: f.size_bytes for f in files}})
    if job.schedule_id:
        _email_schedule(job, files)
    return job


def _render_files(job: ReportJob) -> list[ReportFile]:
    from hashinsight.reports import data as report_data
    from hashinsight.reports.charts import render_charts

    with translation.override(job.language):
        if job.kind == ReportKind.SITE_MONTHLY:
            if job.site is None:
                raise ValueError("the site no longer exists")
            dataset = report_data.site_month(site=job.site, month=job.month)
        else:
            if job.invoice is None:
                raise ValueError("the invoice no longer exists")
            dataset = report_data.client_statement(invoice=job.invoice)
        _step(job.pk, pct=35)
        charts = render_charts(dataset) if {"pdf", "pptx"} & set(job.formats) else {}
        _step(job.pk, pct=50)
        files = []
        share = 45 // max(1, len(job.formats))
        for i, fmt in enumerate(job.formats):
            body = _render_one(fmt, dataset, charts)
            files.append(_store(job, fmt, body, dataset.subject))
            _step(job.pk, pct=50 + share * (i + 1))
    return files


def _render_one(fmt: str, dataset, charts) -> bytes:
    if fmt == "pdf":
        from hashinsight.reports.render_pdf import render_pdf

        return render_pdf(dataset, charts)
    if fmt == "xlsx":
        from hashinsight.reports.render_xlsx import render_xlsx

        return render_xlsx(dataset)
    from hashinsight.reports.render_pptx import render_pptx

    return render_pptx(dataset, charts)


def file_name(job: ReportJob, fmt: str, subject: str = "") -> str:
    subject = slugify(subject)[:40] or (f"site-{job.site_id}" if job.site_id else f"client-{job.customer_id}")
    kind = "site-report" if job.kind == ReportKind.SITE_MONTHLY else "statement"
    return f"{kind}-{subject}-{job.month:%Y-%m}-{job.language}-{job.pk}.{fmt}"


@transaction.atomic
def _store(job: ReportJob, fmt: str, body: bytes, subject: str) -> ReportFile:
    old = ReportFile.objects.select_for_update().filter(job=job, format=fmt).first()
    if old is not None:  # a re-render replaces the file
        old.file.delete(save=False)
        old.delete()
    row = ReportFile(job=job, format=fmt, size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    row.file.save(file_name(job, fmt, subject), ContentFile(body), save=False)
    row.save()
    return row


# ---------------------------------------------------------------------------------------------------------
# Links


def file_token(file: ReportFile, *, user_id: int | None, ttl: timedelta = signed_links.DEFAULT_TTL) -> str:
    return signed_links.make_token(
        purpose=LINK_PURPOSE, object_id=file.pk, user_id=user_id, ttl=ttl, check=file.sha256[:16]
    )


def file_from_token(*, token: str, user) -> ReportFile:
    """The file a link stands for. A link made for a user works only for that user signed in, and only while they
    still see the report (revoked access: 404); a link made for an address that is no user's works for whoever
    holds it until it expires. A file re-rendered since (another SHA-256) is not served by an old link."""
    link = signed_links.verify_token(token, purpose=LINK_PURPOSE)
    file = ReportFile.objects.select_related("job").filter(pk=link.object_id).first()
    if file is None or file.sha256[:16] != link.check:
        raise DomainError("not_found", "This file no longer exists. Ask for a new link.", status=404)
    if link.user_id is not None:
        if not getattr(user, "is_authenticated", False):
            raise DomainError("login_required", "Sign in to download this file.", status=401)
        if user.pk != link.user_id:
            raise DomainError("not_found", "No such file.", status=404)
        selectors.report_job_get(user=user, job_id=file.job_id)
    return file


def portal_url(path: str) -> str:
    base = getattr(settings, "PORTAL_BASE_URL", "") or "http://localhost:8000"
    return base.rstrip("/") + path


# ---------------------------------------------------------------------------------------------------------
# Schedules


def _recipients(value) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,;]+", value) if v]
    if not isinstance(value, list | tuple) or not value:
        raise _bad("invalid_recipients", "recipients", "Give at least one e-mail address.")
    if len(value) > MAX_RECIPIENTS:
        raise _bad("invalid_recipients", "recipients", f"At most {MAX_RECIPIENTS} addresses.")
    out = []
    for v in value:
        try:
            validate_email(v)
        except Exception:
            raise _bad("invalid_recipients", "recipients", f"Not an e-mail address: {str(v)[:80]}") from None
        if v.lower() not in (o.lower() for o in out):
            out.append(v)
    return out


def _day_of_month(value) -> int:
    try:
        day = int(value)
    except (TypeError, ValueError):
        raise _bad("invalid_day", "day_of_month", "The day is a number from 1 to 28.") from None
    if isinstance(value, bool) or not 1 <= day <= 28:
        raise _bad("invalid_day", "day_of_month", "The day is a number from 1 to 28.")
    return day


def _require_full(user) -> None:
    if not has_access(user, Module.REPORT, Access.FULL):
        raise DomainError("forbidden", "Report schedules need full access to reports.", status=403)


def _require_schedule_writable(user, *, site_id: int | None) -> None:
    """A schedule e-mails its report every month to the addresses it lists, so writing one is more than reading the
    report: a site's schedule needs a manage grant on the site (a read-only grant sees it, 403 on writes), and a
    client statement's needs full access to finance (the owners and admins who bill the client)."""
    from sites.selectors import site_is_manageable

    if site_id is not None:
        if not site_is_manageable(user=user, site_id=site_id):
            raise DomainError("site_read_only", "Your access to this site is read-only.", status=403)
    elif not has_access(user, Module.FINANCE, Access.FULL):
        raise DomainError("forbidden", "Client statement schedules need full access to finance.", status=403)


def _schedule_subject(user, kind, site, customer) -> dict:
    if kind == ReportKind.SITE_MONTHLY:
        if site in (None, ""):
            raise _bad("required", "site", "Choose the site.")
        row = _site_for(user, site)
        _require_schedule_writable(user, site_id=row.pk)
        return {"site": row, "customer": None}
    if customer in (None, ""):
        raise _bad("required", "customer", "Choose the hosting client.")
    cid = _int_id(customer, "customer")
    row = selectors.customer_choices(user=user).filter(pk=cid).first()
    if row is None:
        raise DomainError("not_found", "No such hosting client.", status=404)
    _require_schedule_writable(user, site_id=None)
    return {"site": None, "customer": row}


@transaction.atomic
def schedule_create(
    *,
    user,
    kind=None,
    site=None,
    customer=None,
    language=None,
    formats=None,
    recipients=None,
    day_of_month=2,
    enabled=True,
) -> ReportSchedule:
    _require_full(user)
    kind = parse_kind(kind)
    row = ReportSchedule(
        kind=kind,
        language=parse_language(language),
        formats=parse_formats(formats or ["pdf"]),
        recipients=_recipients(recipients),
        day_of_month=_day_of_month(day_of_month),
        enabled=bool(enabled),
        created_by=user,
        **_schedule_subject(user, kind, site, customer),
    )
    row.save()
    return row


UPDATABLE = ("language", "formats", "recipients", "day_of_month", "enabled")


@transaction.atomic
def schedule_update(*, user, schedule: ReportSchedule, **changes) -> ReportSchedule:
    """Change a schedule's language, formats, recipients, day or enabled flag (its subject stays: make another)."""
    _require_full(user)
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise _bad("invalid_body", "body", f"Cannot change: {', '.join(sorted(unknown))}.")
    row = ReportSchedule.objects.select_for_update().get(pk=schedule.pk)
    _require_schedule_writable(user, site_id=row.site_id)
    parsers = {
        "language": parse_language,
        "formats": parse_formats,
        "recipients": _recipients,
        "day_of_month": _day_of_month,
    }
    for key, value in changes.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise _bad("invalid", "enabled", "enabled is true or false.")
            row.enabled = value
        else:
            setattr(row, key, parsers[key](value))
    row.save()
    return row


@transaction.atomic
def schedule_delete(*, user, schedule: ReportSchedule) -> None:
    _require_full(user)
    _require_schedule_writable(user, site_id=schedule.site_id)
    ReportSchedule.objects.filter(pk=schedule.pk).delete()


def schedules_run(*, today: date | None = None) -> dict:
    """Queue last month's report of every enabled schedule whose day has come and that has not sent that month yet
    (``last_month_sent``, set in the same transaction as the job is made: once per month, also when two runners
    overlap). A client-statement schedule renders each issued invoice of that month; with none issued yet it waits
    for the next run. Also re-sends jobs stuck in the queue and fails jobs whose worker died."""
    from hashinsight.billing.models import ISSUED_STATUSES, Invoice

    today = today or timezone.now().date()
    month = previous_month(today)
    queued = 0
    waiting = 0
    due = ReportSchedule.objects.filter(enabled=True, day_of_month__lte=today.day).exclude(last_month_sent=month)
    for schedule_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            s = (
                ReportSchedule.objects.select_for_update(skip_locked=True)
                .filter(pk=schedule_id, enabled=True)
                .exclude(last_month_sent=month)
                .first()
            )
            if s is None:
                continue
            subjects = []
            if s.kind == ReportKind.SITE_MONTHLY:
                subjects.append({"site": s.site, "customer": None, "invoice": None})
            else:
                for inv in Invoice.objects.filter(
                    customer=s.customer,
                    status__in=ISSUED_STATUSES,
                    period_start__gte=month,
                    period_start__lt=(month + timedelta(days=32)).replace(day=1),
                ).select_related("site", "customer"):
                    subjects.append({"site": inv.site, "customer": inv.customer, "invoice": inv})
            if not subjects:
                waiting += 1
                continue
            for subject in subjects:
                _job_create(
                    kind=s.kind,
                    month=month,
                    language=s.language,
                    formats=s.formats,
                    requested_by=s.created_by,
                    schedule=s,
                    **subject,
                )
                queued += 1
            s.last_month_sent = month
            s.save(update_fields=["last_month_sent"])
    return {"month": month.isoformat(), "queued": queued, "waiting": waiting, **_sweep()}


def _sweep() -> dict:
    now = timezone.now()
    stuck = list(
        ReportJob.objects.filter(status=ReportJob.Status.QUEUED, created_at__lt=now - STUCK_QUEUED).values_list(
            "pk", flat=True
        )[:200]
    )
    for job_id in stuck:
        with transaction.atomic():
            _queue_on_commit(job_id)
    dead = list(
        ReportJob.objects.filter(status=ReportJob.Status.RUNNING, started_at__lt=now - STUCK_RUNNING).values_list(
            "pk", flat=True
        )
    )
    for job_id in dead:
        _step(
            job_id,
            pct=0,
            status=ReportJob.Status.FAILED,
            message="Its worker stopped before the report was done.",
            finished_at=now,
        )
    return {"requeued": len(stuck), "abandoned": len(dead)}


def _email_schedule(job: ReportJob, files: list[ReportFile]) -> None:
    """E-mail the schedule's recipients one expiring link per file. A recipient who is a user gets a link that works
    only for them signed in; another address gets a bearer link. Sending failures are logged, not raised."""
    from django.contrib.auth import get_user_model

    schedule = job.schedule
    if schedule is None or not schedule.recipients:
        return
    users = {
        u.email.lower(): u
        for u in get_user_model().objects.filter(email__in=schedule.recipients, is_active=True).order_by("-pk")
    }
    expires = signed_links.expires_at()
    for address in schedule.recipients:
        user = users.get(address.lower())
        # A user who no longer sees the report gets nothing (their access was revoked since the schedule was made).
        if user is not None and not selectors.report_job_list(user=user).filter(pk=job.pk).exists():
            continue
        links = [
            (
                dict(ReportFormat.choices)[f.format],
                portal_url(reverse("portal:report-link", args=[file_token(f, user_id=user.pk if user else None)])),
            )
            for f in files
        ]
        with translation.override(job.language):
            ctx = {
                "job": job,
                "subject": job.site.name
                if job.kind == ReportKind.SITE_MONTHLY
                else (job.customer.company if job.customer else ""),
                "links": links,
                "expires": expires,
                "kind": ReportKind(job.kind).label,
            }
            subject = render_to_string("email/reports/report_ready_subject.txt", ctx).strip()
            text = render_to_string("email/reports/report_ready.txt", ctx)
            html = render_to_string("email/reports/report_ready.html", ctx)
        msg = EmailMultiAlternatives(subject=subject, body=text, to=[address])
        msg.attach_alternative(html, "text/html")
        try:
            msg.send()
        except Exception:
            log.exception("report e-mail not sent", extra={"report_job_id": job.pk})
