"""Admin for curtailment events and their miners: read-only (an event is the record of what was curtailed and what
it cost, billed per hosting client), with one action, "End now", through ``intelligence.curtailment_events.event_end``
(the same rules as the API: a manage grant on the site, the minimum duration unless an emergency)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from intelligence import curtailment_events as events
from intelligence.models import CurtailmentEvent, CurtailmentEventMiner
from sites.admin_filters import SiteListFilter


class CurtailmentEventMinerInline(admin.TabularInline):
    model = CurtailmentEventMiner
    fields = readonly_fields = [
        "serial", "customer", "batch", "state", "kw_before", "ths_before", "power_target_w", "curtailed_at",
        "confirmed_at", "restored_at", "drift_count", "energy_avoided_kwh", "revenue_forgone_usd",
    ]  # fmt: skip
    extra = 0
    can_delete = False
    show_change_link = False
    SHOWN = 200

    def get_queryset(self, request):
        # An event holds up to 10,000 miners: the page shows the first 200 in batch order (the event pages and the
        # API show them all); the formset filters by event afterwards, so the cut is by the event in the URL.
        qs = super().get_queryset(request).select_related("customer").order_by("batch", "serial")
        match = getattr(request, "resolver_match", None)
        object_id = str((match.kwargs if match else {}).get("object_id", ""))
        if object_id.isdigit():
            first = CurtailmentEventMiner.objects.filter(event_id=int(object_id)).order_by("batch", "serial")
            qs = qs.filter(pk__in=list(first.values_list("pk", flat=True)[: self.SHOWN]))
        return qs

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CurtailmentEvent)
class CurtailmentEventAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(events.event_list)
    site_id_attr = "site_id"
    list_display = [
        "id", "site", "status", "source", "mode", "priority", "target_kw", "shed_kw", "starts_at", "max_end_at",
        "ended_at", "energy_avoided_kwh", "revenue_forgone_usd",
    ]  # fmt: skip
    list_filter = ["status", "source", "priority", "mode", ("site", SiteListFilter)]
    search_fields = ["external_id", "reason"]
    date_hierarchy = "starts_at"
    list_select_related = ["site", "created_by"]
    readonly_fields = [
        "site", "status", "source", "program", "external_id", "reason", "profile", "scope", "mode", "target_kw",
        "priority", "starts_at", "min_end_at", "max_end_at", "end_requested_at", "ended_at", "restore_batch_size",
        "restore_interval_seconds", "drift_action", "confirmed_at", "shed_kw", "energy_avoided_kwh",
        "revenue_forgone_usd", "commands_shown", "preview_shown", "created_by", "created_at",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [CurtailmentEventMinerInline]
    actions = ["end_now"]

    def has_add_permission(self, request, *args):
        return False  # events start through the API, the event pages or a demand-response webhook

    def has_delete_permission(self, request, obj=None):
        return False  # the billing record stays

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; events change only through the action

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not super().has_change_permission(request):
            actions.pop("end_now", None)
        return actions

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("commands")

    @admin.display(description=_("commands"))
    def commands_shown(self, obj):
        return ", ".join(f"#{c.pk} {c.command_type} {c.get_status_display()}" for c in obj.commands.all()) or "—"

    @admin.display(description=_("preview"))
    def preview_shown(self, obj):
        return format_html('<pre class="readonly">{}</pre>', json.dumps(obj.preview, indent=1, ensure_ascii=False))

    @admin.action(description=_("End now (restore in batches)"))
    def end_now(self, request, queryset):
        for event in queryset.order_by("pk"):
            try:
                events.event_end(actor=request.user, event=event, reason="admin")
            except DomainError as exc:
                self.message_user(request, f"#{event.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, _("Event #%(id)s is ending.") % {"id": event.pk}, messages.SUCCESS)
