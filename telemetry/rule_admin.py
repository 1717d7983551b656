"""Admin for alert rules (registered in ``telemetry/admin.py``): scoped to the sites a user sees,
changed only on sites they manage, and saved through ``rule_services`` so an edit here publishes
``alert_rules.changed`` like one made in the portal or the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin
from sites.admin_filters import SiteListFilter
from sites.selectors import manageable_site_list
from telemetry import rule_services
from telemetry import rules as R
from telemetry.models import AlertRule

EDITABLE = list(rule_services.FIELDS)


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["site", "kind", *EDITABLE]

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or getattr(self.instance, "kind", None)
        if kind in R.KINDS and {"threshold", "duration_minutes", "severity"} <= data.keys():
            errors = R.validate_rule(
                kind, threshold=data["threshold"], duration_minutes=data["duration_minutes"], severity=data["severity"]
            )
            for field, message in rule_services.error_messages(kind, errors).items():
                self.add_error(field, message)
        return data


class AlertRuleAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    module = Module.HOSTING
    selector = staticmethod(rule_services.alert_rule_list)
    site_id_attr = "site_id"
    form = AlertRuleForm
    list_display = ["site", "kind", "enabled", "threshold", "duration_minutes", "severity", "updated_at", "updated_by"]
    list_filter = ["kind", "enabled", "severity", ("site", SiteListFilter)]
    list_select_related = ["site", "updated_by"]
    ordering = ["site__name", "kind"]

    def get_readonly_fields(self, request, obj=None):
        return ["site", "kind", "updated_at", "updated_by"] if obj else []

    def get_fields(self, request, obj=None):
        return ["site", "kind", *EDITABLE, "updated_at", "updated_by"] if obj else ["site", "kind", *EDITABLE]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = manageable_site_list(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # a rule is turned off, not deleted (a deleted one would come back as the default)

    def create_object(self, request, fields):
        site, kind = fields.pop("site"), fields.pop("kind")
        rules = rule_services.alert_rules_update(site=site, actor=request.user, changes={kind: fields})
        return next(r for r in rules if r.kind == kind)

    def update_object(self, request, obj, fields):
        changes = {k: v for k, v in fields.items() if k in EDITABLE}
        if not changes:
            return obj
        rules = rule_services.alert_rules_update(site=obj.site, actor=request.user, changes={obj.kind: changes})
        return next(r for r in rules if r.kind == obj.kind)
