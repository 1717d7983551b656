from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from guardian.admin import GuardedModelAdminMixin

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.admin import ScopedAdminMixin
from sites import selectors
from sites.models import Customer, Site, Zone


class GrantAdminMixin(GuardedModelAdminMixin):
    """guardian's 'Object permissions' pages, open to user managers (owners, admins) only: a site
    owner manages what is in their site, not who else may see it."""

    def _check_may_grant(self, request, object_pk) -> None:
        get_object_or_404(self.get_queryset(request), pk=object_pk)  # hidden objects stay 404
        if not has_access(request.user, Module.USER, Access.FULL):
            raise PermissionDenied

    def obj_perms_manage_view(self, request, object_pk):
        self._check_may_grant(request, object_pk)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._check_may_grant(request, object_pk)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._check_may_grant(request, object_pk)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)


class ZoneInline(admin.TabularInline):
    model = Zone
    extra = 0


@admin.register(Site)
class SiteAdmin(ScopedAdminMixin, GrantAdminMixin, admin.ModelAdmin):
    """Object permissions (grants to site owners) are managed from the 'Object permissions' button."""

    module = Module.HOSTING
    selector = staticmethod(selectors.site_list)
    site_id_attr = "pk"
    list_display = ["name", "slug", "location", "timezone", "capacity_kw", "created_at"]
    list_filter = ["timezone"]
    search_fields = ["name", "slug", "location"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ZoneInline]

    def has_add_permission(self, request, *args):
        # Grants are tied to the creator through the service; admins create sites here, site owners in the API.
        return request.user.sees_everything


@admin.register(Zone)
class ZoneAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.HOSTING
    selector = staticmethod(selectors.zone_list)
    site_id_attr = "site_id"
    list_display = ["name", "site", "kind", "energy_source", "capacity_kw"]
    list_filter = ["kind", "energy_source", "site"]
    search_fields = ["name", "site__name"]
    autocomplete_fields = ["site"]
    list_select_related = ["site"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            ids = selectors.manageable_site_ids(user=request.user)
            qs = selectors.site_list(user=request.user)
            kwargs["queryset"] = qs if ids is None else qs.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Customer)
class CustomerAdmin(ScopedAdminMixin, GrantAdminMixin, admin.ModelAdmin):
    """Contact users are granted from 'Object permissions' (view_customer)."""

    module = Module.CRM
    selector = staticmethod(selectors.customer_list)
    list_display = ["company", "slug", "email", "hosting_rate_usd_per_kwh", "contract_start", "contract_end"]
    list_filter = ["contract_start"]
    search_fields = ["company", "slug", "email"]
    prepopulated_fields = {"slug": ["company"]}
    date_hierarchy = "contract_start"
