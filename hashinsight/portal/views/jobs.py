"""The job runs page (SYSTEM module): what the scheduled and manual batch jobs did and how they ended."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.events.models import JobRun
from hashinsight.portal.forms.filters import JobFilterForm
from hashinsight.portal.tables import Column, CsvColumn, ListPage
from hashinsight.portal.views.common import module_required


class JobTable(ListPage):
    columns = [
        Column("created", _("Created (UTC)"), sort="created_at"),
        Column("job_type", _("Job type"), sort="job_type"),
        Column("status", _("Status"), sort="status"),
        Column("trigger", _("Trigger"), sort="trigger"),
        Column("duration", _("Duration (ms)"), sort="duration_ms", numeric=True),
        Column("processed", _("Processed"), sort="processed", numeric=True),
        Column("failed", _("Failed"), sort="failed", numeric=True),
        Column("error", _("Error")),
    ]
    csv_columns = [
        CsvColumn(_("Created (UTC)"), "created_at"),
        CsvColumn(_("Job type"), "job_type"),
        CsvColumn(_("Status"), "status", display=dict(JobRun.Status.choices)),
        CsvColumn(_("Trigger"), "trigger"),
        CsvColumn(_("Priority"), "priority", display=dict(JobRun.Priority.choices)),
        CsvColumn(_("Started (UTC)"), "started_at"),
        CsvColumn(_("Finished (UTC)"), "finished_at"),
        CsvColumn(_("Duration (ms)"), "duration_ms"),
        CsvColumn(_("Processed"), "processed"),
        CsvColumn(_("Succeeded"), "succeeded"),
        CsvColumn(_("Failed"), "failed"),
        CsvColumn(_("Retries"), "retries"),
        CsvColumn(_("Error"), "error"),
    ]
    filter_form = JobFilterForm
    default_sort = "-created"
    csv_name = "jobs"

    def get_queryset(self):
        # Job runs are system-wide records: the SYSTEM module grants all of them or none.
        return JobRun.objects.defer("result")

    def form_kwargs(self):
        types = JobRun.objects.order_by("job_type").values_list("job_type", flat=True).distinct()
        return {"job_types": types}


@module_required(Module.SYSTEM)
def job_list(request):
    return JobTable(request).respond("portal/job_list.html")
