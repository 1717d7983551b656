"""Portal routes of reports (owner: reports; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import reports

urlpatterns: list = [
    path("reports/", reports.report_list, name="report-list"),
    path("reports/<int:pk>/row", reports.report_row, name="report-row"),
    path("reports/<int:pk>/files/<str:fmt>/", reports.report_download, name="report-download"),
    path("reports/link/<str:token>/", reports.report_link, name="report-link"),
    path("reports/schedules/", reports.schedule_list, name="report-schedules"),
    path("reports/schedules/<int:pk>/toggle/", reports.schedule_toggle, name="report-schedule-toggle"),
    path("reports/schedules/<int:pk>/delete/", reports.schedule_delete, name="report-schedule-delete"),
]
