from hashinsight.accounts.roles import Module
from hashinsight.core.api.views import ScopedViewSet
from miners.selectors import site_list_with_miner_count
from sites import selectors, services
from sites.api.filtersets import CustomerFilter, ZoneFilter
from sites.api.serializers import CustomerSerializer, SiteSerializer, ZoneSerializer


class SiteViewSet(ScopedViewSet):
    """Mining sites you can see; writes need a manage grant on the site."""

    module = Module.HOSTING
    serializer_class = SiteSerializer
    search_fields = ["name", "slug", "location"]
    ordering_fields = ["name", "capacity_kw", "created_at"]
    filterset_fields = ["timezone"]

    def get_queryset(self):
        # Counts only the miners this user may see, as the portal's site list does.
        return site_list_with_miner_count(user=self.request.user).order_by("name")

    def perform_create(self, serializer):
        site = services.site_create(actor=self.request.user, **serializer.validated_data)
        site.miner_count = 0  # what the list annotates; a new site has no miners yet
        serializer.instance = site

    def perform_update(self, serializer):
        selectors.require_site_manageable(user=self.request.user, site_id=serializer.instance.pk)
        site = services.site_update(site=serializer.instance, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=site.pk)  # with its miner_count, as a GET shows it

    def perform_destroy(self, instance):
        selectors.require_site_manageable(user=self.request.user, site_id=instance.pk)
        services.site_delete(site=instance)


class ZoneViewSet(ScopedViewSet):
    """Zones (rooms, containers, power blocks, buildings) of the sites you can see."""

    module = Module.HOSTING
    serializer_class = ZoneSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "capacity_kw"]
    filterset_class = ZoneFilter

    def get_queryset(self):
        return selectors.zone_list(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        site = data.pop("site")
        selectors.require_site_manageable(user=self.request.user, site_id=site.pk)
        serializer.instance = services.zone_create(site=site, **data)

    def perform_update(self, serializer):
        selectors.require_site_manageable(user=self.request.user, site_id=serializer.instance.site_id)
        if "site" in serializer.validated_data:
            selectors.require_site_manageable(user=self.request.user, site_id=serializer.validated_data["site"].pk)
        serializer.instance = services.zone_update(zone=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        selectors.require_site_manageable(user=self.request.user, site_id=instance.site_id)
        services.zone_delete(zone=instance)


class CustomerViewSet(ScopedViewSet):
    """Hosting clients and their contracts (CRM)."""

    module = Module.CRM
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["company", "slug", "email"]
    ordering_fields = ["company", "contract_start", "hosting_rate_usd_per_kwh"]

    def get_queryset(self):
        return selectors.customer_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.customer_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.customer_update(customer=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.customer_delete(customer=instance)
