"""Admin glue: scope every model admin by the app's selector and the access matrix, and answer 404
(not Django's 'does not exist' redirect) for an object outside the user's scope."""

from __future__ import annotations

from django.http import Http404

from hashinsight.accounts.roles import Access, has_access
from hashinsight.core import registry


class ScopedAdminMixin:
    module: str
    selector = None  # callable(user=...) -> QuerySet
    # For objects inside a site: the attribute holding the site id. Changing them then also needs
    # a manage grant on that site (a read-only grant shows them but cannot change them); the sites
    # app answers that through the core registry.
    site_id_attr: str | None = None

    def get_queryset(self, request):
        qs = type(self).selector(user=request.user) if type(self).selector else super().get_queryset(request)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def has_module_permission(self, request):
        return has_access(request.user, self.module, Access.READ)

    def has_view_permission(self, request, obj=None):
        return has_access(request.user, self.module, Access.READ)

    def has_add_permission(self, request, *args):
        return has_access(request.user, self.module, Access.FULL)

    def has_change_permission(self, request, obj=None):
        if not has_access(request.user, self.module, Access.FULL):
            return False
        if obj is None or self.site_id_attr is None:
            return True
        return registry.site_manageable(user=request.user, site_id=getattr(obj, self.site_id_attr))

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404
