"""Admin of payments, addresses and commissions (owner: payments).

Read-mostly: rows are written by ``hashinsight.billing.payments`` / ``commissions`` (amounts, statuses, the audit
chain and the outbox must move together), so the admin adds and edits nothing itself. Its actions call the same
services as the API: confirm or reject pending crypto payments, mark commissions paid out. Addresses are imported on
the portal's pool page or through the API (checked there); a free address may be deleted here."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import GLOBAL_ROLES, STAFF_ROLES, Module, role_of
from hashinsight.billing import commissions, payments
from hashinsight.billing.admin_actions import ReadOnlyAdminMixin, ServiceActionsMixin
from hashinsight.billing.models import Commission, Payment, PaymentAddress
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError


class ReasonActionForm(ActionForm):
    reason = forms.CharField(label=_("Reason (required to reject)"), required=False, max_length=300)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, ServiceActionsMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(payments.payment_list)
    action_form = ReasonActionForm
    list_display = [
        "id", "invoice", "customer_name", "method", "amount", "currency", "chain_status", "confirmations",
        "received_at", "reference", "short_txid",
    ]  # fmt: skip
    list_filter = ["method", "chain_status", "currency"]
    search_fields = ["reference", "txid", "invoice__number", "invoice__customer__company"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "invoice", "method", "amount", "currency", "received_at", "reference", "txid", "crypto_amount", "chain_status",
        "confirmations", "recorded_by", "created_at",
    ]  # fmt: skip
    fields = readonly_fields
    actions = ["confirm_selected", "reject_selected"]
    # Only pending crypto payments can be confirmed or rejected; see ServiceActionsMixin.
    action_filter = {"chain_status": Payment.ChainStatus.PENDING}
    list_select_related = ["invoice", "invoice__customer"]

    @admin.display(description=_("hosting client"), ordering="invoice__customer__company")
    def customer_name(self, obj):
        return obj.invoice.customer.company

    @admin.display(description=_("transaction id"))
    def short_txid(self, obj):
        return f"{obj.txid[:12]}…" if obj.txid else "—"

    def action_label(self, obj):
        return str(obj.pk)

    @admin.action(description=_("Confirm the selected pending crypto payments"))
    def confirm_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._each(
            request, queryset,
            lambda p: payments.payment_confirm(actor=request.user, payment=p, reason=reason or "confirmed in admin"),
            _("%(count)s payments confirmed."),
        )  # fmt: skip

    @admin.action(description=_("Reject the selected pending crypto payments (reason required)"))
    def reject_selected(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, _("Give a reason to reject payments."), messages.ERROR)
            return
        self._each(
            request, queryset, lambda p: payments.payment_reject(actor=request.user, payment=p, reason=reason),
            _("%(count)s payments rejected."),
        )  # fmt: skip


@admin.register(PaymentAddress)
class PaymentAddressAdmin(ReadOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(payments.address_list)
    list_display = ["address", "network", "assigned_at", "invoice"]
    list_filter = ["network", ("assigned_at", admin.EmptyFieldListFilter)]
    search_fields = ["address"]
    readonly_fields = ["network", "address", "invoice", "assigned_at"]
    fields = readonly_fields

    def has_module_permission(self, request):
        return role_of(request.user) in GLOBAL_ROLES

    def has_view_permission(self, request, obj=None):
        return role_of(request.user) in GLOBAL_ROLES

    def has_delete_permission(self, request, obj=None):
        # A free address may be withdrawn from the pool; one given to an invoice stays (the client was told it).
        return role_of(request.user) in GLOBAL_ROLES and (obj is None or obj.assigned_at is None)

    def delete_queryset(self, request, queryset):
        queryset.filter(assigned_at__isnull=True, invoice__isnull=True).delete()


@admin.register(Commission)
class CommissionAdmin(ReadOnlyAdminMixin, ServiceActionsMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(commissions.commission_list)
    list_display = ["id", "invoice", "sales_owner", "rate_pct", "base_amount", "amount", "currency", "paid_out",
                    "created_at"]  # fmt: skip
    list_filter = ["paid_out", "currency"]
    search_fields = ["invoice__number", "sales_owner__username"]
    readonly_fields = ["invoice", "sales_owner", "rate_pct", "base_amount", "amount", "currency", "paid_out",
                       "created_at"]  # fmt: skip
    fields = readonly_fields
    actions = ["mark_paid_out"]  # FINANCE full only (ServiceActionsMixin.get_actions); one service call for all
    list_select_related = ["invoice", "sales_owner"]

    def has_module_permission(self, request):
        return role_of(request.user) in STAFF_ROLES

    def has_view_permission(self, request, obj=None):
        return role_of(request.user) in STAFF_ROLES

    @admin.action(description=_("Mark the selected commissions paid out"))
    def mark_paid_out(self, request, queryset):
        try:
            count = commissions.commission_mark_paid_out(
                actor=request.user, commission_ids=queryset.values_list("pk", flat=True)
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("%(count)s commissions marked paid out.") % {"count": count}, messages.SUCCESS)
