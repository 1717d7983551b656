"""API routes of reports: jobs, files and schedules (owner: reports)."""

from django.urls import re_path

from hashinsight.reports.api.views import (
    ReportDetailView,
    ReportFileView,
    ReportListView,
    ScheduleDetailView,
    ScheduleListView,
)

v1: list = [
    re_path(r"^reports/?$", ReportListView.as_view(), name="report-list"),
    re_path(r"^reports/(?P<pk>[0-9]{1,18})/?$", ReportDetailView.as_view(), name="report-detail"),
    re_path(r"^reports/(?P<pk>[0-9]{1,18})/files/(?P<fmt>[a-z]+)/?$", ReportFileView.as_view(), name="report-file"),
    re_path(r"^report-schedules/?$", ScheduleListView.as_view(), name="report-schedule-list"),
    re_path(r"^report-schedules/(?P<pk>[0-9]{1,18})/?$", ScheduleDetailView.as_view(), name="report-schedule-detail"),
]
seed: list = []
