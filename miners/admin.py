from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin
from miners import selectors, services
from miners.models import Miner, MinerModel, PortfolioEntry
from sites.admin_filters import CustomerListFilter, SiteListFilter, ZoneListFilter
from sites.selectors import customer_list, manageable_site_ids, manageable_site_list, zone_list


@admin.register(MinerModel)
class MinerModelAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    module = Module.SYSTEM
    list_display = ["name", "vendor", "hashrate_ths", "power_w", "efficiency", "cooling", "code"]
    list_filter = ["vendor", "cooling"]
    search_fields = ["name", "vendor", "code"]
    prepopulated_fields = {"code": ["name"]}

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    @admin.display(description=_("J/TH"))
    def efficiency(self, obj):
        return obj.efficiency_j_per_th

    def create_object(self, request, fields):
        return services.miner_model_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return services.miner_model_update(actor=request.user, miner_model=obj, **fields)

    def delete_object(self, request, obj):
        services.miner_model_delete(actor=request.user, miner_model=obj)


@admin.register(Miner)
class MinerAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    """The sealed network identity is never shown in admin lists or forms; use the API detail view."""

    module = Module.HOSTING
    selector = staticmethod(selectors.miner_list)
    site_id_attr = "site_id"
    list_display = ["serial", "model", "site", "zone", "customer", "status", "rack", "shelf", "slot", "firmware"]
    list_filter = [
        "status",
        ("site", SiteListFilter),
        ("zone", ZoneListFilter),
        ("customer", CustomerListFilter),
        "model__vendor",
    ]
    search_fields = ["serial", "asset_tag", "pool_worker"]
    list_select_related = ["model", "site", "zone", "customer"]
    autocomplete_fields = ["site", "zone", "customer", "model"]
    exclude = ["identity_sealed"]
    show_full_result_count = False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = manageable_site_list(user=request.user)
        elif db_field.name == "zone":
            ids = manageable_site_ids(user=request.user)
            qs = zone_list(user=request.user)
            kwargs["queryset"] = qs if ids is None else qs.filter(site_id__in=ids)
        elif db_field.name == "customer":
            kwargs["queryset"] = customer_list(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create_object(self, request, fields):
        return services.miner_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return services.miner_update(actor=request.user, miner=obj, **fields)

    def delete_object(self, request, obj):
        services.miner_delete(actor=request.user, miner=obj)


@admin.register(PortfolioEntry)
class PortfolioEntryAdmin(ServiceWritesAdminMixin, admin.ModelAdmin):
    list_display = ["user", "model", "quantity", "power_price_usd_per_kwh", "label", "created_at"]
    search_fields = ["user__username", "label"]
    autocomplete_fields = ["user", "model"]
    list_select_related = ["user", "model"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.sees_everything

    has_view_permission = has_change_permission = has_delete_permission = lambda self, request, obj=None: (
        self.has_module_permission(request)
    )

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def create_object(self, request, fields):
        return services.portfolio_entry_create(**fields)

    def update_object(self, request, obj, fields):
        return services.portfolio_entry_update(entry=obj, **fields)

    def delete_object(self, request, obj):
        services.portfolio_entry_delete(entry=obj)
