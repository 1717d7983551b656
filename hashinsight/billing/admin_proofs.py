"""Admin of proof roots and leaves (owner: proofs): read-only, except a root's broadcast transaction, which an
operator records once after broadcasting its OP_RETURN script (through ``proofs.root_record_broadcast``: audited,
a second different id refused)."""

from __future__ import annotations

from django.contrib import admin

from hashinsight.accounts.roles import Module
from hashinsight.billing import proofs
from hashinsight.billing.admin_actions import ReadOnlyAdminMixin
from hashinsight.billing.models import ProofLeaf, ProofRoot
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin

ROOT_FIELDS = ("day", "root_sha256", "leaf_count", "audit_head_seq", "audit_head_hash", "op_return_hex", "created_at")


@admin.register(ProofRoot)
class ProofRootAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    module = Module.WEB3
    selector = staticmethod(proofs.root_list)
    list_display = ("day", "root_sha256", "leaf_count", "audit_head_seq", "broadcast_txid")
    list_filter = (("broadcast_txid", admin.EmptyFieldListFilter),)
    search_fields = ("root_sha256", "broadcast_txid")
    date_hierarchy = "day"
    fields = (*ROOT_FIELDS, "broadcast_txid")
    readonly_fields = ROOT_FIELDS

    def has_add_permission(self, request, *args):
        return False  # roots are built by closing a day, never entered

    def has_delete_permission(self, request, obj=None):
        return False  # an anchor that was published must stay

    def update_object(self, request, obj, fields: dict):
        if "broadcast_txid" not in fields:
            return obj
        return proofs.root_record_broadcast(day=obj.day, txid=fields["broadcast_txid"], actor=request.user)


@admin.register(ProofLeaf)
class ProofLeafAdmin(ReadOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.WEB3
    selector = staticmethod(proofs.visible_leaves)
    list_display = ("day", "kind", "object_id", "customer_id", "site_id", "root", "index", "sha256")
    list_filter = ("kind", "day")
    search_fields = ("sha256",)
    list_select_related = ("root",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
