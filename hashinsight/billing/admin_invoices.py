"""Admin of invoices, lines, statements and credit notes (owner: invoicing).

Read-only: invoices are written by ``hashinsight.billing.invoicing`` and ``issuing`` (numbers, hashes, the audit
chain and the outbox move together; an issued invoice never changes). The actions call the same services as the
API: rebuild the selected drafts, issue the selected drafts, void the selected drafts, build the drafts of the
previous month. Credit notes are issued through the API or the portal (a reason and an amount are needed), and are
shown here read-only. The statement rows are not listed inline (a month of a large client is millions of rows):
each invoice links to its statement file."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.billing import invoicing, issuing, selectors
from hashinsight.billing.admin_actions import ReadOnlyAdminMixin, ServiceActionsMixin
from hashinsight.billing.models import CreditNote, Invoice, InvoiceLine
from hashinsight.core.admin import ScopedAdminMixin


class InvoiceLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InvoiceLine
    fields = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class CreditNoteInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CreditNote
    fields = ["number", "amount", "reason", "issued_at", "issued_by", "content_sha256"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, ServiceActionsMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(selectors.invoice_list)
    list_display = [
        "__str__", "status", "customer", "contract", "site", "period_start", "period_end", "total", "currency",
        "balance", "due_date",
    ]  # fmt: skip
    list_filter = ["status", "currency", "site"]
    search_fields = ["number", "customer__company", "contract__number"]
    date_hierarchy = "period_start"
    list_select_related = ["customer", "contract", "site"]
    readonly_fields = [
        "number", "status", "customer", "contract", "site", "period_start", "period_end", "currency", "subtotal",
        "credits", "prior_balance", "deposit_applied", "total", "amount_paid", "amount_credited", "energy_kwh",
        "miner_count", "uptime_pct", "sla_uptime_pct", "issue_date", "due_date", "issued_at", "issued_by",
        "content_sha256", "statement_sha256", "audit_event_id", "btc_address", "usdt_address", "statement_link",
        "generated_at", "updated_at",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["rebuild_selected", "issue_selected", "void_selected", "build_previous_month"]
    # The per-row actions act on drafts only (an issued invoice never changes); see ServiceActionsMixin.
    action_filter = {"status": Invoice.Status.DRAFT}

    @admin.display(description=_("open balance"))
    def balance(self, obj):
        return obj.balance_due

    @admin.display(description=_("statement file"))
    def statement_link(self, obj):
        url = reverse("invoice-statement", kwargs={"pk": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("Download (CSV)"))

    @admin.action(description=_("Rebuild the selected drafts from telemetry"))
    def rebuild_selected(self, request, queryset):
        self._each(request, queryset, lambda i: invoicing.build_draft(i.contract, i.period_start),
                   _("%(count)s drafts rebuilt."))  # fmt: skip

    @admin.action(description=_("Issue the selected drafts (numbered, sealed, never changed again)"))
    def issue_selected(self, request, queryset):
        self._each(request, queryset, lambda i: issuing.invoice_issue(i, actor=request.user),
                   _("%(count)s invoices issued."))  # fmt: skip

    @admin.action(description=_("Void the selected drafts"))
    def void_selected(self, request, queryset):
        self._each(request, queryset, lambda i: issuing.void_draft(i, actor=request.user),
                   _("%(count)s drafts voided."))  # fmt: skip

    @admin.action(description=_("Build the previous month's drafts for every contract (the selection is ignored)"))
    def build_previous_month(self, request, queryset):
        result = invoicing.build_drafts(invoicing.previous_month(timezone.now().date()))
        self.message_user(
            request,
            _("%(built)s drafts built, %(skipped)s issued left alone, %(failed)s failed.") % result,
            messages.ERROR if result["failed"] else messages.SUCCESS,
        )


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    list_display = ["number", "invoice", "amount", "reason", "issued_at", "issued_by"]
    search_fields = ["number", "invoice__number", "invoice__customer__company"]
    date_hierarchy = "issued_at"
    list_select_related = ["invoice", "issued_by"]
    readonly_fields = ["number", "invoice", "amount", "reason", "issued_at", "issued_by", "content_sha256",
                       "audit_event_id"]  # fmt: skip
    fields = readonly_fields

    @staticmethod
    def selector(*, user):
        return CreditNote.objects.filter(invoice__in=selectors.invoice_list(user=user))
