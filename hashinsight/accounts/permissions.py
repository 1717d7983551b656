"""DRF glue for the access matrix: a view names its module; reads need READ, writes FULL.

Writes to an existing object are checked *after* the object is looked up in the user's scope, so
an object the user cannot see answers 404 to every method, and one they can only read answers 403."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from hashinsight.accounts.roles import Access, has_access


class ModuleAccess(BasePermission):
    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if not has_access(request.user, view.module, Access.READ):
            return False
        if request.method in SAFE_METHODS or getattr(view, "detail", False):
            return True
        return has_access(request.user, view.module, Access.FULL)  # create and collection actions

    def has_object_permission(self, request, view, obj):
        needed = Access.READ if request.method in SAFE_METHODS else Access.FULL
        return has_access(request.user, view.module, needed)
