"""Django admin for commands: the pending-approval list (risk breakdown, targets, proposer, expiry) with
approve and deny actions that go through ``commands.services`` (same rules as the API: no self-approval,
once per person, CURTAILMENT FULL and a manage grant on the site, CRITICAL for owners and admins); each
command's per-target results and verification; a rollback action through ``commands.rollback`` (as the API)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from commands import risk, selectors, services
from commands.models import Command, CommandStatus, CommandTarget, SiteApprovalPolicy
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from sites.admin_filters import SiteListFilter


class PendingApprovalFilter(admin.SimpleListFilter):
    title = _("approval")
    parameter_name = "approval"

    def lookups(self, request, model_admin):
        return [("pending", _("Pending approval")), ("live", _("Not finished"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(status=CommandStatus.PENDING_APPROVAL)
        if self.value() == "live":
            return queryset.filter(status__in=[s for s in CommandStatus.values if s in _LIVE])
        return queryset


_LIVE = {"PENDING", "PENDING_APPROVAL", "APPROVED", "DISPATCHED", "ACKED"}


class DecisionActionForm(ActionForm):
    reason = forms.CharField(label=_("Reason (required to deny)"), required=False, max_length=500)


def _rollback(*, command, actor, reason=""):
    from commands.rollback import command_rollback

    return command_rollback(command=command, actor=actor, reason=reason)


class CommandTargetInline(admin.TabularInline):
    model = CommandTarget
    fields = [
        "miner", "serial", "action", "result_status", "result_message", "acked_at", "verification",
        "verification_detail", "verified_at", "before_state",
    ]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return has_access(request.user, Module.CURTAILMENT, Access.READ)  # the command itself is already scoped

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Command)
class CommandAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(selectors.command_list)
    site_id_attr = "site_id"
    action_form = DecisionActionForm
    list_display = [
        "id", "command_type", "status", "verification", "risk_tier", "risk_score", "site", "target_count",
        "proposer_label", "approvals_label", "expires_at", "created_at",
    ]  # fmt: skip
    list_filter = [
        PendingApprovalFilter, "status", "verification", "risk_tier", "command_type", ("site", SiteListFilter),
    ]  # fmt: skip
    search_fields = ["dedupe_key", "targets__serial"]
    list_select_related = ["site", "proposer", "dispatched_to"]
    readonly_fields = [
        "site", "command_type", "params_shown", "status", "status_reason", "dedupe_key", "proposer", "proposer_kind",
        "ai_confidence", "risk_score", "risk_tier", "breakdown_table", "approvals_required", "owner_admin_only",
        "priority", "not_before", "expires_at", "dispatched_at", "dispatched_to", "finished_at", "verification",
        "results_shown", "created_at", "updated_at", "rollback_of", "rollbacks_shown", "approvals_shown",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [CommandTargetInline]
    actions = ["approve", "deny", "rollback"]

    def has_add_permission(self, request, *args):
        return False  # proposals come through the API, the portal or the AI, scored by the service

    def has_delete_permission(self, request, obj=None):
        return False  # a command's history stays (audit); it is cancelled, not deleted

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; commands change only through the actions

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("targets", "approvals", "rollbacks")

    @admin.display(description=_("targets"))
    def target_count(self, obj):
        return len(obj.targets.all())

    @admin.display(description=_("proposer"))
    def proposer_label(self, obj):
        who = obj.proposer.get_username() if obj.proposer_id else "—"
        return f"{who} ({obj.get_proposer_kind_display()})"

    @admin.display(description=_("approvals"))
    def approvals_label(self, obj):
        count = sum(1 for a in obj.approvals.all() if a.decision == "approve" and a.approver_id)
        return f"{count} / {obj.approvals_required}"

    @admin.display(description=_("parameters"))
    def params_shown(self, obj):
        return {k: ("********" if k == "password" else v) for k, v in (obj.params or {}).items()}

    @admin.display(description=_("risk breakdown"))
    def breakdown_table(self, obj):
        items = (obj.risk_breakdown or {}).get("breakdown", [])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((i["factor"], i["normalised"], i["weight"], i["contribution"], i["words"]) for i in items),
        )
        reasons = "; ".join((obj.risk_breakdown or {}).get("tier_reasons", []))
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table><p>{} {} — {}</p>",
            _("factor"), _("0–1"), _("weight"), _("contribution"), _("why"), rows, _("score"), obj.risk_score,
            reasons,
        )  # fmt: skip

    @admin.display(description=_("results"))
    def results_shown(self, obj):
        """Per target: the edge's result, what telemetry showed (verification) and, for a CURTAIL, its part."""
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    t.serial,
                    (t.action or {}).get("action", "—"),
                    t.get_result_status_display(),
                    t.result_message,
                    t.get_verification_display() if t.verification else "—",
                    t.verification_detail,
                )
                for t in obj.targets.all()
            ),
        )
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("miner"), _("action"), _("result"), _("message"), _("verification"), _("detail"), rows,
        )  # fmt: skip

    @admin.display(description=_("rollbacks"))
    def rollbacks_shown(self, obj):
        return ", ".join(f"#{c.pk} {c.command_type} ({c.status})" for c in obj.rollbacks.all()) or "—"

    @admin.display(description=_("decisions"))
    def approvals_shown(self, obj):
        return format_html_join(
            "",
            "<div>{} — {} {}</div>",
            ((a.get_decision_display(), a.approver or "system", a.reason) for a in obj.approvals.all()),
        )

    def _decide(self, request, queryset, service, done_message, **kwargs):
        done, refused = 0, []
        for command in queryset:
            try:
                service(command=command, actor=request.user, **kwargs)
                done += 1
            except DomainError as exc:
                refused.append(f"#{command.pk}: {exc.message}")
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description=_("Approve selected commands"))
    def approve(self, request, queryset):
        self._decide(
            request, queryset, services.command_approve, _("%(count)d approval(s) recorded."),
            reason=request.POST.get("reason", ""),
        )  # fmt: skip

    @admin.action(description=_("Deny selected commands (give a reason)"))
    def deny(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, _("Give a reason to deny."), messages.ERROR)
            return
        self._decide(request, queryset, services.command_deny, _("%(count)d command(s) denied."), reason=reason)

    @admin.action(description=_("Roll back selected commands (propose their inverse)"))
    def rollback(self, request, queryset):
        """The same service as the API: the inverse proposed, scored and approved like any other command."""
        self._decide(
            request, queryset, _rollback, _("%(count)d rollback(s) proposed."), reason=request.POST.get("reason", "")
        )


class SiteApprovalPolicyForm(forms.ModelForm):
    """The policy is checked the way the engine reads it: known types (or "*") to known tiers, rules that parse."""

    class Meta:
        model = SiteApprovalPolicy
        fields = ["site", "min_tiers", "auto_approve_rules", "fan_floor_pct", "chip_limit_c", "contracted_min_kw"]

    def clean_min_tiers(self):
        value = self.cleaned_data["min_tiers"] or {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Map command types (or *) to tiers."))
        for key, tier in value.items():
            try:
                if key != "*":
                    risk.canonical_type(key)
            except risk.RiskInputError as exc:
                raise forms.ValidationError(exc.message) from None
            if tier not in risk.TIERS:
                raise forms.ValidationError(_("A tier is one of %(tiers)s.") % {"tiers": ", ".join(risk.TIERS)})
        return value

    def clean_auto_approve_rules(self):
        value = self.cleaned_data["auto_approve_rules"] or []
        if not isinstance(value, list) or not all(isinstance(rule, dict) for rule in value):
            raise forms.ValidationError(_("A list of rules (objects)."))
        try:
            services.auto_rules(SiteApprovalPolicy(auto_approve_rules=value), "UTC")
        except (DomainError, risk.RiskInputError, TypeError, ValueError) as exc:
            raise forms.ValidationError(getattr(exc, "message", str(exc))) from None
        return value


@admin.register(SiteApprovalPolicy)
class SiteApprovalPolicyAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    site_id_attr = "site_id"
    form = SiteApprovalPolicyForm
    list_display = ["site", "fan_floor_pct", "chip_limit_c", "contracted_min_kw", "updated_at"]

    def get_queryset(self, request):
        from sites.selectors import site_list

        return SiteApprovalPolicy.objects.filter(site__in=site_list(user=request.user)).select_related("site")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            from sites.selectors import manageable_site_list

            kwargs["queryset"] = manageable_site_list(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
