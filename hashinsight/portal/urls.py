from django.urls import path

from hashinsight.portal.views import alert_rules as rules_pages
from hashinsight.portal.views import alerts, calculator, dashboard, jobs, miners, portfolio, sites, telemetry, tokens
from hashinsight.portal.views import audit as audit_pages
from hashinsight.portal.views import commands as command_pages
from hashinsight.portal.views import edge_device_list as edge_list
from hashinsight.portal.views import edge_devices as edge

app_name = "portal"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("sites/", sites.site_list, name="site-list"),
    path("sites/<slug:slug>/", sites.site_detail, name="site-detail"),
    path("sites/<slug:slug>/alert-rules/", rules_pages.alert_rules, name="site-alert-rules"),
    path("sites/<slug:slug>/edge-devices/enroll/", edge.edge_enroll, name="edge-enroll"),
    path("sites/<slug:slug>/edge-devices/credentials/", edge.edge_credentials, name="edge-credentials"),
    path("sites/<slug:slug>/edge-devices/<int:pk>/rotate/", edge.edge_device_rotate, name="edge-device-rotate"),
    path("sites/<slug:slug>/edge-devices/<int:pk>/revoke/", edge.edge_device_revoke, name="edge-device-revoke"),
    path("edge-devices/", edge_list.edge_device_list, name="edge-device-list"),
    path("sites/<slug:slug>/telemetry/", telemetry.site_dashboard, name="telemetry-site"),
    path("sites/<slug:slug>/telemetry/live/", telemetry.live_list, name="telemetry-live"),
    path("miners/", miners.miner_list, name="miner-list"),
    path("miners/<int:pk>/telemetry/", telemetry.miner_detail, name="telemetry-miner"),
    path("alerts/", alerts.alert_list, name="alert-list"),
    path("alerts/<int:pk>/row", alerts.alert_row, name="alert-row"),
    path("alerts/acknowledge/", alerts.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/resolve/", alerts.alert_resolve, name="alert-resolve"),
    path("commands/", command_pages.command_list, name="command-list"),
    path("commands/new/", command_pages.command_propose, name="command-propose"),
    path("commands/<int:pk>/", command_pages.command_detail, name="command-detail"),
    path("commands/<int:pk>/row", command_pages.command_row, name="command-row"),
    path("commands/<int:pk>/approve/", command_pages.command_approve, name="command-approve"),
    path("commands/<int:pk>/deny/", command_pages.command_deny, name="command-deny"),
    path("commands/<int:pk>/cancel/", command_pages.command_cancel, name="command-cancel"),
    path("commands/<int:pk>/rollback/", command_pages.command_rollback, name="command-rollback"),
    path("jobs/", jobs.job_list, name="job-list"),
    path("audit/", audit_pages.audit_list, name="audit-list"),
    path("calculator/", calculator.calculator, name="calculator"),
    path("portfolio/add/", portfolio.portfolio_add, name="portfolio-add"),
    path("portfolio/<int:pk>/edit/", portfolio.portfolio_edit, name="portfolio-edit"),
    path("portfolio/<int:pk>/delete/", portfolio.portfolio_delete, name="portfolio-delete"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
]

# The intelligence layer's pages (forecasts, curtailment planner, ROI, market and power prices), each part's own list.
from intelligence.portal import (  # noqa: E402
    events_urls,
    forecast_urls,
    health_urls,
    market_urls,
    plans_urls,
    responder_urls,
    roi_urls,
)

for _part in (market_urls, forecast_urls, plans_urls, roi_urls, events_urls, responder_urls, health_urls):
    urlpatterns += _part.urlpatterns

# The hosting business loop's pages (CRM, invoices, statements, payments, SLA, proofs, reports), each part's own list.
from hashinsight.billing.portal import invoices_urls, payments_urls, proofs_urls, sla_urls, statements_urls  # noqa: E402
from hashinsight.reports.portal import urls as reports_urls  # noqa: E402
from sites.portal import crm_urls  # noqa: E402

for _part in (crm_urls, invoices_urls, statements_urls, payments_urls, sla_urls, proofs_urls, reports_urls):
    urlpatterns += _part.urlpatterns
