"""A site's alert rules in the portal: one form row per rule (on, threshold with its unit, for how
many minutes, severity). Readers of the site see them read-only; its managers save them through
``rule_services.alert_rules_update``, the service the API and admin use."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hashinsight.accounts.roles import Module
from hashinsight.core.errors import DomainError
from hashinsight.portal.views.common import module_required
from sites import selectors as site_selectors
from telemetry import rule_services
from telemetry import rules as R
from telemetry.models import AlertRuleKind, AlertSeverity

HELP = {
    R.CHIP_TEMP_ABOVE: gettext_lazy("The hottest chip of a miner is above the threshold."),
    R.HASHRATE_BELOW_PCT: gettext_lazy("The 5-minute average hashrate is below this share of the model's nominal."),
    R.OFFLINE_FOR: gettext_lazy("No sample from the miner, or it reports offline."),
    R.POWER_DEVIATION_PCT: gettext_lazy("Power at the wall differs from the model's nominal by more than this."),
    R.REJECT_RATE_ABOVE_PCT: gettext_lazy("Rejected shares out of all shares sent to the pool."),
}


class RuleForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("On"), required=False)
    threshold = forms.FloatField(label=gettext_lazy("Threshold"), required=False)
    duration_minutes = forms.IntegerField(label=gettext_lazy("For (minutes)"))
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), choices=AlertSeverity.choices)

    def __init__(self, *args, kind: str, read_only: bool, **kwargs):
        super().__init__(*args, prefix=kind, **kwargs)
        self.kind = kind
        self.label = AlertRuleKind(kind).label
        self.help = HELP[kind]
        self.unit = R.THRESHOLD_UNITS[kind]
        self.has_threshold = kind != R.OFFLINE_FOR
        low, high = R.THRESHOLD_RANGES[kind]
        attrs = {"class": "form-control", "step": "any", "min": f"{low:g}", "max": f"{high:g}", "inputmode": "decimal"}
        self.fields["threshold"].widget.attrs.update(attrs)
        self.fields["threshold"].required = self.has_threshold
        self.fields["duration_minutes"].widget.attrs.update(
            {"class": "form-control", "min": "0", "max": str(R.MAX_DURATION_MINUTES)}
        )
        self.fields["severity"].widget.attrs.update({"class": "form-select form-select-sm"})
        self.fields["enabled"].widget.attrs.update({"class": "form-check-input", "role": "switch"})
        for field in self.fields.values():
            field.disabled = read_only

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        if not self.has_threshold:
            data.pop("threshold", None)
        return data


def _forms(rules, data, *, read_only: bool) -> list[RuleForm]:
    return [
        RuleForm(
            data,
            kind=rule.kind,
            read_only=read_only,
            initial={**{f: getattr(rule, f) for f in rule_services.FIELDS}, "threshold": f"{rule.threshold:g}"},
        )
        for rule in rules
    ]


@module_required(Module.HOSTING)
def alert_rules(request, slug):
    site = get_object_or_404(site_selectors.site_list(user=request.user), slug=slug)
    can_manage = site_selectors.site_is_manageable(user=request.user, site_id=site.pk)
    rules = rule_services.site_rules(site=site)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        rule_forms = _forms(rules, request.POST, read_only=False)
        if all(form.is_valid() for form in rule_forms):
            try:
                rule_services.alert_rules_update(
                    site=site, actor=request.user, changes={form.kind: form.changes() for form in rule_forms}
                )
            except DomainError as exc:
                for form in rule_forms:
                    problems = exc.details.get("errors", {}).get(form.kind, {})
                    for field, message in rule_services.error_messages(form.kind, problems).items():
                        form.add_error(field, message)
                if not any(form.errors for form in rule_forms):
                    messages.error(request, exc.message)
            else:
                messages.success(request, _("Alert rules saved."))
                return redirect("portal:site-alert-rules", slug=site.slug)
    else:
        rule_forms = _forms(rules, None, read_only=not can_manage)
    return render(request, "portal/alert_rules.html", {"site": site, "forms": rule_forms, "can_manage": can_manage})
