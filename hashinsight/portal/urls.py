from django.urls import path

from hashinsight.portal.views import alerts, calculator, dashboard, jobs, miners, portfolio, sites, tokens

app_name = "portal"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("sites/", sites.site_list, name="site-list"),
    path("sites/<slug:slug>/", sites.site_detail, name="site-detail"),
    path("miners/", miners.miner_list, name="miner-list"),
    path("alerts/", alerts.alert_list, name="alert-list"),
    path("alerts/<int:pk>/row", alerts.alert_row, name="alert-row"),
    path("alerts/acknowledge/", alerts.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/resolve/", alerts.alert_resolve, name="alert-resolve"),
    path("jobs/", jobs.job_list, name="job-list"),
    path("calculator/", calculator.calculator, name="calculator"),
    path("portfolio/add/", portfolio.portfolio_add, name="portfolio-add"),
    path("portfolio/<int:pk>/edit/", portfolio.portfolio_edit, name="portfolio-edit"),
    path("portfolio/<int:pk>/delete/", portfolio.portfolio_delete, name="portfolio-delete"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
]
