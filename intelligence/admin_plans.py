"""Admin for the intelligence layer's plans models: curtailment plans, read-only (inputs, result and solver shown as
they were stored). Plans are made and sent through the API or the planner page, never edited here: a plan is the
record of what the optimizer was given and answered."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from intelligence import curtailment_plans as plans
from intelligence.models import CurtailmentPlan
from intelligence.solver_outcome import solver_outcome
from sites.admin_filters import SiteListFilter


def _json(value) -> str:
    return format_html('<pre class="readonly">{}</pre>', json.dumps(value, indent=1, ensure_ascii=False))


@admin.register(CurtailmentPlan)
class CurtailmentPlanAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(plans.plan_list)
    site_id_attr = "site_id"
    list_display = [
        "id", "site", "status", "starts_at", "hours", "profit_usd", "run_all_profit_usd", "threshold_profit_usd",
        "solver_status", "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["status", ("site", SiteListFilter), "starts_at"]
    date_hierarchy = "starts_at"
    list_select_related = ["site", "created_by"]
    readonly_fields = [
        "site", "status", "starts_at", "hours", "profit_usd", "run_all_profit_usd", "threshold_profit_usd",
        "solver_shown", "inputs_shown", "result_shown", "commands_shown", "created_by", "created_at", "sent_at",
    ]  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request, *args):
        return False  # plans come from the optimizer (API, planner page, the daily job)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what was planned and sent stays

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("commands")

    @admin.display(description=_("solver"))
    def solver_status(self, obj):
        solver = obj.solver or {}
        return format_html('<span title="CBC: {}">{}</span>', solver.get("status", "—"), solver_outcome(solver) or "—")

    @admin.display(description=_("solver"))
    def solver_shown(self, obj):
        return _json(obj.solver)

    @admin.display(description=_("inputs"))
    def inputs_shown(self, obj):
        return _json(obj.inputs)

    @admin.display(description=_("result"))
    def result_shown(self, obj):
        return _json(obj.result)

    @admin.display(description=_("commands"))
    def commands_shown(self, obj):
        return ", ".join(f"#{c.pk} {c.get_status_display()}" for c in obj.commands.all()) or "—"
