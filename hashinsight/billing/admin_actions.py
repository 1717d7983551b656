"""Shared admin glue of the billing admins (invoices, payments, SLA certificates, proof leaves).

The billing rows are written only by their services (amounts, numbers, hashes, the audit chain and the outbox move
together), so these admins add, change and delete nothing themselves, and their bulk actions call the same service
per row as the API does. That code was written twice (invoices and payments) and read-only three more times; it
lives here once so that a fix to the error handling or the permission rule reaches every billing admin."""

from __future__ import annotations

from django.contrib import messages

from hashinsight.accounts.roles import Access, has_access
from hashinsight.core.errors import DomainError


class ReadOnlyAdminMixin:
    """No add, change or delete in the admin: the row belongs to its service. Put it before ScopedAdminMixin so
    these answers win over the access-matrix ones."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceActionsMixin:
    """Bulk actions that call a service once per selected row.

    Only a user with full access to the admin's ``module`` sees any action (the services check again). ``_each``
    applies ``act`` to the selected rows matching ``action_filter`` (the only state the service accepts), turns a
    ``DomainError`` into an error message naming the row (``action_label``) and the others still run; the closing
    message counts what was done (a warning when nothing was)."""

    action_filter: dict = {}

    def action_label(self, obj) -> str:
        return str(obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not has_access(request.user, self.module, Access.FULL):
            return {}
        return actions

    def _each(self, request, queryset, act, done_message):
        done = 0
        for obj in queryset.filter(**self.action_filter):
            try:
                act(obj)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{self.action_label(obj)}: {exc.message}", messages.ERROR)
        self.message_user(request, done_message % {"count": done}, messages.SUCCESS if done else messages.WARNING)
