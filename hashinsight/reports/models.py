"""Reports (module REPORT): the monthly site report and the client statement, rendered as PDF, Excel and PPT by a
job with progress (``hashinsight.reports.tasks``), kept in private storage and downloaded through a
permission-checked view or an expiring e-mailed link; schedules e-mail them every month."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from hashinsight.core.storage import get_private_storage


class ReportKind(models.TextChoices):
    SITE_MONTHLY = "site_monthly", _("Monthly site report")
    CLIENT_STATEMENT = "client_statement", _("Client statement")


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    XLSX = "xlsx", "Excel"
    PPTX = "pptx", "PowerPoint"


class ReportLanguage(models.TextChoices):
    EN = "en", "English"
    ZH_HANS = "zh-hans", "简体中文"


class ReportJob(models.Model):
    """One request to render a report for a subject (a site, or a hosting client) and a month."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("report"), max_length=20, choices=ReportKind.choices)
    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    customer = models.ForeignKey("sites.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    month = models.DateField(_("month"))  # first day
    language = models.CharField(_("language"), max_length=8, choices=ReportLanguage.choices, default="en")
    formats = models.JSONField(_("formats"), default=list)  # ["pdf", "xlsx", "pptx"]
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress_pct = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    message = models.CharField(_("message"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    schedule = models.ForeignKey(
        "reports.ReportSchedule", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("report job")
        verbose_name_plural = _("report jobs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="report_job_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(site__isnull=False) | models.Q(customer__isnull=False), name="report_job_subject"
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.month:%Y-%m} ({self.status})"


class ReportFile(models.Model):
    """One rendered file of a job, in private storage."""

    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="files")
    format = models.CharField(_("format"), max_length=5, choices=ReportFormat.choices)
    file = models.FileField(_("file"), upload_to="reports/%Y/%m/", storage=get_private_storage, max_length=200)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("report file")
        verbose_name_plural = _("report files")
        constraints = [models.UniqueConstraint(fields=["job", "format"], name="report_file_once_per_format")]

    def __str__(self):
        return f"{self.job_id}.{self.format}"


class ReportSchedule(models.Model):
    """E-mail a report every month on ``day_of_month`` (for the previous month) to ``recipients``."""

    kind = models.CharField(_("report"), max_length=20, choices=ReportKind.choices)
    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    customer = models.ForeignKey("sites.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    language = models.CharField(_("language"), max_length=8, choices=ReportLanguage.choices, default="en")
    formats = models.JSONField(_("formats"), default=list)
    recipients = models.JSONField(_("recipients"), default=list)  # e-mail addresses
    day_of_month = models.PositiveSmallIntegerField(_("day of month"), default=2)
    enabled = models.BooleanField(_("enabled"), default=True)
    last_month_sent = models.DateField(_("last month sent"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("report schedule")
        verbose_name_plural = _("report schedules")
        ordering = ["kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(site__isnull=False) | models.Q(customer__isnull=False),
                name="report_schedule_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(day_of_month__gte=1, day_of_month__lte=28), name="report_schedule_day"
            ),
        ]

    def __str__(self):
        return f"{self.kind} on day {self.day_of_month}"
