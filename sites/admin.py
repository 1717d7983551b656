from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from hashinsight.accounts.roles import Access, Module, Role, has_access
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin, adopt, form_fields
from hashinsight.core.errors import DomainError
from sites import selectors, services
from sites.admin_filters import SiteListFilter
from sites.models import Customer, Site, Zone

# Users offered on the access page without being picked: enough for a team, not a directory.
LISTED_CANDIDATES = 25
# Beyond this many more candidates the picker is a username field, not a <select> of every user.
PICKER_MAX = 200


class AccessAdminMixin:
    """The 'Access' page of a site or hosting client: who may see (and for a site, manage) it.

    Only user managers (owners, admins: USER module FULL) open it; a site owner manages what is in
    their site, not who else may see it. Objects outside the user's scope answer 404 as elsewhere."""

    access_kind: services._AccessKind
    access_columns: list[tuple[str, str]]  # (codename, column heading)
    change_form_template = "admin/sites/change_form_access.html"

    def set_access(self, *, obj, grants, actor):
        raise NotImplementedError

    def get_urls(self):
        opts = self.opts
        name = f"{opts.app_label}_{opts.model_name}_access"
        view = self.admin_site.admin_view(self.access_view)
        return [path("<path:object_id>/permissions/", view, name=name), *super().get_urls()]

    def may_manage_access(self, request) -> bool:
        return has_access(request.user, Module.USER, Access.FULL)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_manage_access": self.may_manage_access(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def access_view(self, request, object_id):
        obj = self.get_object(request, object_id)  # scoped queryset: hidden and missing look the same
        if obj is None:
            raise Http404
        if not self.may_manage_access(request):
            raise PermissionDenied
        if request.method == "POST":
            try:
                grants = self._grants_from_post(request)
                diff = self.set_access(obj=obj, grants=grants, actor=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return self._render_access(request, obj, status=400)
            self.message_user(request, self._saved_message(diff), messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        return self._render_access(request, obj)

    def _grants_from_post(self, request) -> dict[int, set[str]]:
        try:
            shown = {int(v) for v in request.POST.getlist("shown")}
            add_user = request.POST.get("add_user") or ""
            added = int(add_user) if add_user else None
        except ValueError:
            raise DomainError("invalid_user", str(_("Unknown user."))) from None
        username = (request.POST.get("add_username") or "").strip()
        if added is None and username:
            added = get_user_model().objects.filter(username=username[:150]).values_list("pk", flat=True).first()
            if added is None:
                raise DomainError("invalid_user", str(_("Unknown user.")))
        grants = {user_id: set(request.POST.getlist(f"perm_{user_id}")) for user_id in shown}
        if added is not None:
            add_perms = set(request.POST.getlist("add_perm"))
            if not add_perms:
                raise DomainError("no_permission", str(_("Tick what the user you add may do.")))
            grants[added] = grants.get(added, set()) | add_perms
        return grants

    @staticmethod
    def _saved_message(diff) -> str:
        if not diff.added and not diff.removed:
            return str(_("Nothing changed."))
        return ngettext("Access saved for %(count)d user.", "Access saved for %(count)d users.", len(diff.user_ids)) % {
            "count": len(diff.user_ids)
        }

    def _render_access(self, request, obj, *, status=200):
        kind = self.access_kind
        codenames = [c for c, _heading in self.access_columns]
        held: dict[int, set[str]] = {}
        for user_id, codename in kind.table.objects.filter(
            content_object=obj, permission__codename__in=codenames
        ).values_list("user_id", "permission__codename"):
            held.setdefault(user_id, set()).add(codename)
        users = get_user_model().objects.order_by("username")
        holders = list(users.filter(pk__in=held))
        candidates = users.filter(role=kind.grantee_role, is_active=True).exclude(pk__in=held)
        listed = list(candidates[:LISTED_CANDIDATES])
        rest = candidates.exclude(pk__in=[u.pk for u in listed])
        pickable = list(rest[: PICKER_MAX + 1])
        pick_by_name = len(pickable) > PICKER_MAX  # too many for a list: type the username instead
        if pick_by_name:
            pickable = []
        rows = [
            {
                "user": user,
                "role_mismatch": user.role != kind.grantee_role,
                "cells": [(c, heading, c in held.get(user.pk, ())) for c, heading in self.access_columns],
            }
            for user in [*holders, *listed]
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": _("Access to %(object)s") % {"object": obj},
            "columns": self.access_columns,
            "rows": rows,
            "pickable": pickable,
            "pick_by_name": pick_by_name,
            "grantee_role": Role(kind.grantee_role).label,
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[obj.pk],
                current_app=self.admin_site.name,
            ),
        }
        return TemplateResponse(request, "admin/sites/access.html", context, status=status)


class ZoneInline(admin.TabularInline):
    """A site's zones, changed by whoever may change the site (the matrix and the site's grants),
    not by Django's model permissions, which our roles do not use."""

    model = Zone
    extra = 0

    def has_view_permission(self, request, obj=None):
        return has_access(request.user, Module.HOSTING, Access.READ)

    def has_change_permission(self, request, obj=None):
        if not has_access(request.user, Module.HOSTING, Access.FULL):
            return False
        return obj is None or selectors.site_is_manageable(user=request.user, site_id=obj.pk)

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(Site)
class SiteAdmin(ScopedAdminMixin, AccessAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    """Who may see and manage a site is set on its 'Access' page."""

    module = Module.HOSTING
    selector = staticmethod(selectors.site_list)
    site_id_attr = "pk"
    list_display = ["name", "slug", "location", "timezone", "capacity_kw", "created_at"]
    list_filter = ["timezone"]
    search_fields = ["name", "slug", "location"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ZoneInline]
    access_kind = services.SITE_ACCESS
    access_columns = [("view_site", _("View")), ("change_site", _("Change"))]

    def has_add_permission(self, request, *args):
        # Grants are tied to the creator through the service; admins create sites here, site owners in the API.
        return request.user.sees_everything

    def set_access(self, *, obj, grants, actor):
        return services.site_set_access(site=obj, grants=grants, actor=actor)

    def create_object(self, request, fields):
        return services.site_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return services.site_update(site=obj, actor=request.user, **fields)

    def delete_object(self, request, obj):
        services.site_delete(site=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        # The zone inline: through the zone services too, so zone edits publish like API ones.
        if formset.model is not Zone:
            return super().save_formset(request, form, formset, change)
        instances = formset.save(commit=False)
        for zone in formset.deleted_objects:
            services.zone_delete(zone=zone, actor=request.user)
        forms = {id(f.instance): f for f in formset.forms}
        for zone in instances:
            zone_form = forms[id(zone)]
            if zone.pk is None:
                fields = form_fields(zone_form, changed_only=False, exclude=("id", "site"))
                adopt(zone, services.zone_create(site=form.instance, actor=request.user, **fields))
            else:
                fields = form_fields(zone_form, changed_only=True, exclude=("id", "site"))
                adopt(zone, services.zone_update(zone=zone, actor=request.user, **fields))


@admin.register(Zone)
class ZoneAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    module = Module.HOSTING
    selector = staticmethod(selectors.zone_list)
    site_id_attr = "site_id"
    list_display = ["name", "site", "kind", "energy_source", "capacity_kw"]
    list_filter = ["kind", "energy_source", ("site", SiteListFilter)]
    search_fields = ["name", "site__name"]
    autocomplete_fields = ["site"]
    list_select_related = ["site"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = selectors.manageable_site_list(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create_object(self, request, fields):
        site = fields.pop("site")
        return services.zone_create(site=site, actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return services.zone_update(zone=obj, actor=request.user, **fields)

    def delete_object(self, request, obj):
        services.zone_delete(zone=obj, actor=request.user)


@admin.register(Customer)
class CustomerAdmin(ScopedAdminMixin, AccessAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    """A hosting client's contact users are set on its 'Access' page (view_customer)."""

    module = Module.CRM
    selector = staticmethod(selectors.customer_list)
    list_display = ["company", "slug", "email", "hosting_rate_usd_per_kwh", "contract_start", "contract_end"]
    list_filter = ["contract_start"]
    search_fields = ["company", "slug", "email"]
    prepopulated_fields = {"slug": ["company"]}
    date_hierarchy = "contract_start"
    access_kind = services.CUSTOMER_ACCESS
    access_columns = [("view_customer", _("Contact (sees its miners)"))]

    def set_access(self, *, obj, grants, actor):
        return services.customer_set_access(customer=obj, grants=grants, actor=actor)

    def create_object(self, request, fields):
        return services.customer_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return services.customer_update(customer=obj, actor=request.user, **fields)

    def delete_object(self, request, obj):
        services.customer_delete(customer=obj, actor=request.user)


from sites import admin_crm  # noqa: E402,F401  (deals and hosting contracts)
