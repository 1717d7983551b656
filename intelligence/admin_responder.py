"""Admin for the real-time responder and its decisions. Settings change through ``intelligence.responder`` (the
enable/disable actions here, the API and the site's responder page), so every change is validated and audited;
decisions are the record of what the job decided and are read-only."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from intelligence import responder as service
from intelligence.models import RealtimeResponder, ResponderDecision
from sites.admin_filters import SiteListFilter


def _json(value) -> str:
    return format_html('<pre class="readonly">{}</pre>', json.dumps(value, indent=1, ensure_ascii=False))


def _set_enabled(request, queryset, enabled: bool) -> None:
    done = 0
    for r in queryset:
        try:
            service.responder_update(actor=request.user, site_id=r.site_id, data={"enabled": enabled})
            done += 1
        except DomainError as exc:
            messages.error(request, f"{r.site}: {exc.message}")
    if done:
        messages.success(request, _("%(n)d responder(s) changed.") % {"n": done})


@admin.register(RealtimeResponder)
class RealtimeResponderAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(service.responder_list)
    site_id_attr = "site_id"
    list_display = [
        "site", "enabled", "hysteresis_usd_per_mwh", "min_on_minutes", "min_off_minutes", "ramp_kw_per_hour",
        "command_mode", "last_interval_start", "updated_by", "updated_at",
    ]  # fmt: skip
    list_filter = ["enabled", "command_mode", ("site", SiteListFilter)]
    readonly_fields = [*list_display]
    fields = readonly_fields
    actions = ["enable", "disable"]

    def has_add_permission(self, request, *args):
        return False  # the API or the site's responder page saves the first settings

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Enable the responder (commands proposed as you)"))
    def enable(self, request, queryset):
        _set_enabled(request, queryset, True)

    @admin.action(description=_("Disable the responder"))
    def disable(self, request, queryset):
        _set_enabled(request, queryset, False)


@admin.register(ResponderDecision)
class ResponderDecisionAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(service.decisions_visible)
    site_id_attr = "site_id"
    list_display = ["interval_start", "site", "price_usd_per_mwh", "decided_price_usd_per_mwh", "moves", "created_at"]
    list_filter = [("site", SiteListFilter), "interval_start"]
    date_hierarchy = "interval_start"
    readonly_fields = [
        "site", "interval_start", "price_usd_per_mwh", "decided_price_usd_per_mwh", "decision_shown", "commands_shown",
        "created_at",
    ]  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what the responder did stays

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("commands")

    @admin.display(description=_("moves"))
    def moves(self, obj):
        acts = (obj.decision or {}).get("actions", [])
        return "; ".join(f"{a['group']} {a['from_on']}→{a['to_on']}" for a in acts) or "—"

    @admin.display(description=_("decision"))
    def decision_shown(self, obj):
        return _json(obj.decision)

    @admin.display(description=_("commands"))
    def commands_shown(self, obj):
        return ", ".join(f"#{c.pk} {c.command_type} {c.status}" for c in obj.commands.all()) or "—"
