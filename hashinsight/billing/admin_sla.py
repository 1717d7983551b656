"""Admin of force-majeure windows and SLA certificates (owner: sla). Windows change only through
``hashinsight.billing.sla_windows`` (reason required, frozen once an issued invoice covers them, audited);
certificates are read-only (issued with their invoice, signed, hashed into the proofs)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction

from hashinsight.accounts.roles import Module
from hashinsight.billing import sla_selectors, sla_windows
from hashinsight.billing.admin_actions import ReadOnlyAdminMixin
from hashinsight.billing.models import ForceMajeureWindow, SlaCertificate
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from sites.admin_filters import SiteListFilter


class _DryRun(Exception):
    pass


@admin.register(ForceMajeureWindow)
class ForceMajeureWindowAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(sla_windows.force_majeure_list)
    site_id_attr = "site_id"
    list_display = ["site", "start", "end", "reason", "created_by", "created_at"]
    list_filter = [("site", SiteListFilter)]
    search_fields = ["reason"]
    list_select_related = ["site", "created_by"]
    date_hierarchy = "start"
    fields = ["site", "start", "end", "reason", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "site"] if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class Checked(form):
            def clean(self):
                data = super().clean()
                if self.errors:
                    return data
                site_id = obj.site_id if obj is not None else data["site"].pk
                try:
                    with transaction.atomic():  # the service's checks, without keeping the write
                        if obj is None:
                            sla_windows.force_majeure_create(
                                actor=request.user, site_id=site_id, start=data.get("start"), end=data.get("end"),
                                reason=data.get("reason"),
                            )  # fmt: skip
                        else:
                            sla_windows.force_majeure_update(
                                actor=request.user, window=obj, start=data.get("start"), end=data.get("end"),
                                reason=data.get("reason"),
                            )  # fmt: skip
                        raise _DryRun
                except DomainError as exc:
                    raise ValidationError(exc.message) from None
                except _DryRun:
                    pass
                return data

        return Checked

    def save_model(self, request, obj, form, change):
        d = form.cleaned_data
        if change:
            window = ForceMajeureWindow.objects.get(pk=obj.pk)
            sla_windows.force_majeure_update(actor=request.user, window=window, start=d["start"], end=d["end"],
                                             reason=d["reason"])  # fmt: skip
        else:
            saved = sla_windows.force_majeure_create(
                actor=request.user, site_id=d["site"].pk, start=d["start"], end=d["end"], reason=d["reason"]
            )
            obj.pk = saved.pk

    def delete_model(self, request, obj):
        try:
            sla_windows.force_majeure_delete(actor=request.user, window=obj)
        except DomainError as exc:
            messages.error(request, exc.message)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(SlaCertificate)
class SlaCertificateAdmin(ReadOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.FINANCE
    selector = staticmethod(sla_selectors.certificate_list)
    list_display = ["month", "customer", "contract", "uptime_pct", "target_pct", "met", "credits", "currency",
                    "invoice", "issued_at"]  # fmt: skip
    list_filter = ["met", "month"]
    search_fields = ["contract__number", "customer__company", "sha256"]
    list_select_related = ["customer", "contract", "invoice"]
    readonly_fields = [f.name for f in SlaCertificate._meta.fields]
