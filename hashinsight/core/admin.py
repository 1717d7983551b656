"""Admin glue: scope every model admin by the app's selector and the access matrix, and answer 404
(not Django's 'does not exist' redirect) for an object outside the user's scope."""

from __future__ import annotations

from django.http import Http404

from hashinsight.accounts.roles import Access, has_access


class ScopedAdminMixin:
    module: str
    selector = None  # callable(user=...) -> QuerySet

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
        return has_access(request.user, self.module, Access.FULL)

    def has_delete_permission(self, request, obj=None):
        return has_access(request.user, self.module, Access.FULL)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404
