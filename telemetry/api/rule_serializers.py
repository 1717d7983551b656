"""A site's alert rules on the API: what GET answers, and the bodies of PUT (all five rules, every
field) and PATCH (any rules, any fields). Types are checked here; ranges per kind by the service, so
the API and the portal refuse the same values with the same codes."""

from __future__ import annotations

from rest_framework import serializers

from telemetry import rules as R
from telemetry.models import AlertRuleKind, AlertSeverity


class AlertRuleSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AlertRuleKind.choices)
    label = serializers.SerializerMethodField()
    enabled = serializers.BooleanField()
    threshold = serializers.FloatField(help_text="In ``unit``; the offline rule has none (0).")
    unit = serializers.SerializerMethodField()
    threshold_min = serializers.SerializerMethodField()
    threshold_max = serializers.SerializerMethodField()
    duration_minutes = serializers.IntegerField(help_text="For how long the condition must hold (0–1440 min).")
    severity = serializers.ChoiceField(choices=AlertSeverity.choices)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_label(self, rule) -> str:
        return str(AlertRuleKind(rule.kind).label)

    def get_unit(self, rule) -> str:
        return R.THRESHOLD_UNITS[rule.kind]

    def get_threshold_min(self, rule) -> float:
        return R.THRESHOLD_RANGES[rule.kind][0]

    def get_threshold_max(self, rule) -> float:
        return R.THRESHOLD_RANGES[rule.kind][1]


class SiteAlertRulesSerializer(serializers.Serializer):
    site = serializers.IntegerField()
    can_manage = serializers.BooleanField(help_text="Whether you may change these rules.")
    rules = AlertRuleSerializer(many=True)


class AlertRuleChangeSerializer(serializers.Serializer):
    """One rule in a PATCH: its kind and the fields to change."""

    kind = serializers.ChoiceField(choices=AlertRuleKind.choices)
    enabled = serializers.BooleanField(required=False)
    threshold = serializers.FloatField(required=False)
    duration_minutes = serializers.IntegerField(required=False)
    severity = serializers.ChoiceField(choices=AlertSeverity.choices, required=False)


class AlertRuleFullSerializer(AlertRuleChangeSerializer):
    """One rule in a PUT: every field."""

    enabled = serializers.BooleanField()
    threshold = serializers.FloatField()
    duration_minutes = serializers.IntegerField()
    severity = serializers.ChoiceField(choices=AlertSeverity.choices)


def _unique_kinds(rules: list[dict]) -> list[dict]:
    kinds = [r["kind"] for r in rules]
    if len(set(kinds)) != len(kinds):
        raise serializers.ValidationError("Each rule kind may appear once.", code="duplicate_rule_kind")
    return rules


class AlertRulesPatchSerializer(serializers.Serializer):
    rules = AlertRuleChangeSerializer(many=True, allow_empty=False)

    def validate_rules(self, rules):
        return _unique_kinds(rules)

    def changes(self) -> dict[str, dict]:
        return {r["kind"]: {k: v for k, v in r.items() if k != "kind"} for r in self.validated_data["rules"]}


class AlertRulesPutSerializer(AlertRulesPatchSerializer):
    rules = AlertRuleFullSerializer(many=True, allow_empty=False)

    def validate_rules(self, rules):
        _unique_kinds(rules)
        if {r["kind"] for r in rules} != set(R.KINDS):
            raise serializers.ValidationError(
                f"PUT replaces all five rules: {', '.join(R.KINDS)}; use PATCH to change some.",
                code="all_rules_required",
            )
        return rules
