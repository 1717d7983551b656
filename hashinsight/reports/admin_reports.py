"""Admin of report jobs, files and schedules (owner: reports). Rows come from ``hashinsight.reports.selectors`` (a
site owner sees its sites' jobs; a client its own statements); everything is read-only here: jobs are made by the
reports page, the API or a schedule, and their one action ("render again", for failed jobs) and the schedules'
enable/disable go through ``hashinsight.reports.services``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from hashinsight.reports import selectors, services
from hashinsight.reports.models import ReportFile, ReportJob, ReportSchedule


class ReadOnlyMixin(ScopedAdminMixin):
    module = Module.REPORT

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReportFileInline(admin.TabularInline):
    model = ReportFile
    fields = ["format", "size_bytes", "sha256", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReportJob)
class ReportJobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    selector = staticmethod(selectors.report_job_list)
    list_display = ["id", "kind", "site", "customer", "month", "language", "status", "progress_pct", "created_at"]
    list_filter = ["kind", "status", "language"]
    search_fields = ["site__name", "customer__company", "invoice__number", "message"]
    readonly_fields = [f.name for f in ReportJob._meta.fields]
    inlines = [ReportFileInline]
    actions = ["render_again"]
    date_hierarchy = "created_at"

    @admin.action(description=_("Render failed reports again"))
    def render_again(self, request, queryset):
        n = 0
        for job in queryset.filter(status=ReportJob.Status.FAILED):
            try:
                services.report_rerun(user=request.user, job=job)
                n += 1
            except DomainError as exc:
                self.message_user(request, f"{job}: {exc.message}", messages.ERROR)
        self.message_user(request, ngettext("%(n)d report queued again.", "%(n)d reports queued again.", n) % {"n": n})


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    selector = staticmethod(selectors.report_schedule_list)
    list_display = ["id", "kind", "site", "customer", "language", "day_of_month", "enabled", "last_month_sent"]
    list_filter = ["kind", "enabled"]
    readonly_fields = [f.name for f in ReportSchedule._meta.fields]
    actions = ["enable", "disable"]

    def _set(self, request, queryset, enabled: bool) -> None:
        n = 0
        for row in queryset:
            try:
                services.schedule_update(user=request.user, schedule=row, enabled=enabled)
                n += 1
            except DomainError as exc:
                self.message_user(request, f"{row}: {exc.message}", messages.ERROR)
        self.message_user(request, ngettext("%(n)d schedule changed.", "%(n)d schedules changed.", n) % {"n": n})

    @admin.action(description=_("Enable"))
    def enable(self, request, queryset):
        self._set(request, queryset, True)

    @admin.action(description=_("Disable"))
    def disable(self, request, queryset):
        self._set(request, queryset, False)
