"""/api/v1/ routes, plus the seed's unversioned aliases that reach the same handlers."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from hashinsight.accounts.api.views import ApiTokenViewSet, MeView, UserViewSet
from hashinsight.events.api.views import JobRunViewSet, ScheduleViewSet
from miners.api.views import MinerModelViewSet, MinerViewSet, PortfolioViewSet
from sites.api.views import CustomerViewSet, SiteViewSet, ZoneViewSet
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

v1 = [path("me", MeView.as_view(), name="me"), *router.urls]

# The seed's endpoints, kept for existing integrations: same views, same permissions.
seed_aliases = [
    path("miners", MinerViewSet.as_view({"get": "list", "post": "create"}), name="seed-miners"),
    path("miners/bulk", MinerViewSet.as_view({"post": "bulk"}, **MinerViewSet.bulk.kwargs), name="seed-miners-bulk"),
]
