"""/api/v1/ routes, plus the seed's unversioned aliases that reach the same handlers."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from commands.api.views import commands_urls
from commands.api.views import legacy_urls as commands_legacy_urls
from hashinsight.accounts.api.views import ApiTokenViewSet, MeView, UserViewSet
from hashinsight.billing.api import invoices_urls, payments_urls, proofs_urls, sla_urls, statements_urls
from hashinsight.events.api.audit_views import AuditListView, AuditVerifyView
from hashinsight.events.api.views import JobRunViewSet, ScheduleViewSet
from hashinsight.reports.api import urls as reports_urls
from intelligence.api import (
    anomaly_urls,
    assets_urls,
    events_urls,
    forecast_urls,
    health_urls,
    market_urls,
    plans_urls,
    profiles_urls,
    responder_urls,
    roi_urls,
)
from miners.api.views import MinerModelViewSet, MinerViewSet, PortfolioViewSet
from sites.api import crm_urls
from sites.api.views import CustomerViewSet, SiteViewSet, ZoneViewSet
from telemetry.api.device_views import EdgeDeviceViewSet, EdgeEnrollmentViewSet
from telemetry.api.rule_views import SiteAlertRulesView
from telemetry.api.telemetry_views import telemetry_urls
from telemetry.api.views import AlertViewSet


class Router(DefaultRouter):
    """Accepts paths with and without the trailing slash (the issue's /api/v1/miners has none)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("sites", SiteViewSet, basename="site")
router.register("zones", ZoneViewSet, basename="zone")
router.register("customers", CustomerViewSet, basename="customer")
router.register("miner-models", MinerModelViewSet, basename="minermodel")
router.register("miners", MinerViewSet, basename="miner")
router.register("portfolio", PortfolioViewSet, basename="portfolio")
router.register("users", UserViewSet, basename="user")
router.register("tokens", ApiTokenViewSet, basename="apitoken")
router.register("alerts", AlertViewSet, basename="alert")
router.register("jobs", JobRunViewSet, basename="jobrun")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("edge-devices", EdgeDeviceViewSet, basename="edgedevice")
router.register("edge-enrollments", EdgeEnrollmentViewSet, basename="edgeenrollment")

v1 = [
    path("me", MeView.as_view(), name="me"),
    re_path(r"^audit/?$", AuditListView.as_view(), name="audit-list"),
    re_path(r"^audit/verify/?$", AuditVerifyView.as_view(), name="audit-verify"),
    re_path(r"^sites/(?P<site_id>[0-9]+)/alert-rules/?$", SiteAlertRulesView.as_view(), name="site-alert-rules"),
    *router.urls,
]
# The intelligence layer's parts, each with its own route list.
_PARTS = (market_urls, forecast_urls, plans_urls, roi_urls, anomaly_urls, events_urls, profiles_urls, responder_urls,
          assets_urls, health_urls,
          # The hosting business loop (issue 10): CRM, finance, proofs, reports.
          crm_urls, invoices_urls, statements_urls, payments_urls, sla_urls, proofs_urls, reports_urls)  # fmt: skip
v1 += telemetry_urls
v1 += commands_urls
for _part in _PARTS:
    v1 += _part.v1

# The seed's endpoints, kept for existing integrations: same views, same permissions.
seed_aliases = [
    path("miners", MinerViewSet.as_view({"get": "list", "post": "create"}), name="seed-miners"),
    path("miners/bulk", MinerViewSet.as_view({"post": "bulk"}, **MinerViewSet.bulk.kwargs), name="seed-miners-bulk"),
]
seed_aliases += commands_legacy_urls  # retired seed paths: 410 Gone with a Link to /api/v1/commands
for _part in _PARTS:
    seed_aliases += _part.seed
