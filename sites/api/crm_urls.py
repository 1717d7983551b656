"""API routes of CRM: deals and hosting contracts (owner: crm)."""

from rest_framework.routers import SimpleRouter

from sites.api.crm_views import ContractViewSet, DealViewSet

# With and without the trailing slash, as the main router (hashinsight.api_urls.Router).
router = SimpleRouter()
router.trailing_slash = "/?"
router.register("deals", DealViewSet, basename="deal")
router.register("contracts", ContractViewSet, basename="contract")

v1: list = [*router.urls]
seed: list = []
