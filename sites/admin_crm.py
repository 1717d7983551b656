"""Admin of deals and hosting contracts (owner: crm). Rows come from ``sites.crm_selectors`` (a site owner sees its
sites' rows, read-only: the CRM module is READ for them); every save and state change goes through
``sites.crm_services`` (``ServiceWritesAdminMixin``), so an admin edit is checked, audited and published exactly
like the same edit through the API. Nothing is deleted: a deal is lost, a contract terminated. The miners a
contract covers and its signed document are set on the portal's contract page (or the API)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin
from hashinsight.core.errors import DomainError
from sites import crm_selectors, crm_services
from sites.admin_filters import CustomerListFilter, SiteListFilter
from sites.api.crm_serializers import sales_users
from sites.models import Deal, HostingContract
from sites.selectors import customer_list, site_list


class CrmAdminMixin(ScopedAdminMixin, ServiceWritesAdminMixin):
    module = Module.CRM

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        choices = {"customer": customer_list, "site": site_list, "deal": crm_selectors.deal_list}
        if db_field.name in choices:
            kwargs["queryset"] = choices[db_field.name](user=request.user)
        elif db_field.name in ("owner", "sales_owner"):
            kwargs["queryset"] = sales_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _each(self, request, queryset, service, done) -> None:
        n = 0
        for obj in queryset:
            try:
                service(obj)
                n += 1
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        if n:
            self.message_user(request, done(n), messages.SUCCESS)


@admin.register(Deal)
class DealAdmin(CrmAdminMixin, admin.ModelAdmin):
    selector = staticmethod(crm_selectors.deal_list)
    list_display = ["title", "company", "site", "stage", "expected_miners", "expected_mw", "value", "currency",
                    "owner", "expected_close", "updated_at"]  # fmt: skip
    list_filter = ["stage", "currency", ("site", SiteListFilter), ("customer", CustomerListFilter), "owner"]
    search_fields = ["title", "prospect_company", "customer__company", "contact_name", "contact_email"]
    list_select_related = ["customer", "site", "owner"]
    date_hierarchy = "created_at"
    actions = ["convert_to_contract"]

    @admin.display(description=_("company"))
    def company(self, obj):
        return obj.customer.company if obj.customer_id else obj.prospect_company

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def create_object(self, request, fields):
        return crm_services.deal_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        return crm_services.deal_update(actor=request.user, deal=obj, **fields)

    @admin.action(description=_("Convert to a draft hosting contract"))
    def convert_to_contract(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda d: crm_services.deal_convert(actor=request.user, deal=d),
            lambda n: ngettext("%(count)d deal converted.", "%(count)d deals converted.", n) % {"count": n},
        )


@admin.register(HostingContract)
class HostingContractAdmin(CrmAdminMixin, admin.ModelAdmin):
    selector = staticmethod(crm_selectors.contract_list)
    list_display = ["number", "customer", "site", "status", "start_date", "end_date", "tariff_kind", "rate_per_kwh",
                    "firm", "curtailment_priority", "miners_listed", "signed_at"]  # fmt: skip
    list_filter = ["status", "tariff_kind", "energy_basis", "firm", ("site", SiteListFilter),
                   ("customer", CustomerListFilter), "sales_owner"]  # fmt: skip
    search_fields = ["number", "customer__company", "site__name", "signed_document_sha256"]
    list_select_related = ["customer", "site"]
    date_hierarchy = "start_date"
    exclude = ["miners", "signed_document"]
    readonly_fields = ["status", "signed_document_sha256", "signed_at", "created_at", "updated_at"]
    actions = ["activate", "end_today"]
    fieldsets = [
        (None, {"fields": ["number", "customer", "site", "deal", "status", "start_date", "end_date", "currency",
                           "deposit", "payment_terms_days", "notes"]}),
        (_("Tariff"), {"fields": ["tariff_kind", "energy_basis", "rate_per_kwh", "fixed_fee_per_miner_month",
                                  "revenue_share_pct"]}),
        (_("SLA"), {"fields": ["sla_uptime_target_pct", "sla_credit_schedule"]}),
        (_("Curtailment"), {"fields": ["curtailment_allowance_hours", "curtailment_credit_kind",
                                       "curtailment_credit_per_miner_hour", "curtailment_priority", "firm"]}),
        (_("Sales"), {"fields": ["sales_owner", "commission_pct"]}),
        (_("Signed document"), {"fields": ["signed_document_sha256", "signed_at", "created_at", "updated_at"]}),
    ]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_miners=Count("miners"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "number" in form.base_fields:
            form.base_fields["number"].required = False
            form.base_fields["number"].help_text = _("Left empty: HC-<year>-<n>.")
        return form

    @admin.display(description=_("miners listed"), ordering="n_miners")
    def miners_listed(self, obj):
        return obj.n_miners or _("all")

    def create_object(self, request, fields):
        return crm_services.contract_create(actor=request.user, **fields)

    def update_object(self, request, obj, fields):
        fields.pop("status", None)
        return crm_services.contract_update(actor=request.user, contract=obj, **fields)

    @admin.action(description=_("Activate"))
    def activate(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: crm_services.contract_activate(actor=request.user, contract=c),
            lambda n: ngettext("%(count)d contract activated.", "%(count)d contracts activated.", n) % {"count": n},
        )

    @admin.action(description=_("End today"))
    def end_today(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: crm_services.contract_end(actor=request.user, contract=c),
            lambda n: ngettext("%(count)d contract ended.", "%(count)d contracts ended.", n) % {"count": n},
        )
