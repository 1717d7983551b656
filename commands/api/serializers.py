from __future__ import annotations

from rest_framework import serializers

from commands.models import Approval, Command, CommandStatus, CommandTarget, ProposerKind, RiskTier, Verification
from commands.services import MAX_TTL


class ProposeSerializer(serializers.Serializer):
    """A proposal. ``targets``: a list of miner ids or serials, or ``{"miner_ids": […], "serials": […]}``,
    ``{"zone": id}`` or ``{"site": id}``; resolved in your scope and frozen. Legacy type names are accepted."""

    site = serializers.IntegerField(
        required=False, min_value=1, help_text="Optional: the site the targets must stand on."
    )
    type = serializers.CharField(max_length=40)
    params = serializers.JSONField(required=False, default=dict)
    targets = serializers.JSONField()
    priority = serializers.IntegerField(required=False, default=5, min_value=0, max_value=9)
    dedupe_key = serializers.CharField(required=False, default="", allow_blank=True, max_length=128)
    proposer_kind = serializers.ChoiceField(choices=ProposerKind.choices, required=False, default=ProposerKind.USER)
    ai_confidence = serializers.DecimalField(required=False, max_digits=5, decimal_places=4, min_value=0, max_value=1)
    expires_in_s = serializers.IntegerField(
        required=False, min_value=60, max_value=int(MAX_TTL.total_seconds()), help_text="Default 3600."
    )


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class TargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommandTarget
        fields = [
            "miner", "serial", "before_state", "result_status", "result_message", "acked_at", "action",
            "verification", "verified_at", "verification_detail",
        ]  # fmt: skip
        extra_kwargs = {
            "action": {"help_text": 'CURTAIL only: {"action": "power_target"|"stop"|"none", "power_w", "restore"?}.'}
        }


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = ["approver", "decision", "reason", "created_at"]

    def get_approver(self, obj) -> str:
        return obj.approver.get_username() if obj.approver_id else "system"


class CommandSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="command_type")
    params = serializers.SerializerMethodField()
    proposer = serializers.SerializerMethodField()
    target_count = serializers.SerializerMethodField()
    rollbacks = serializers.PrimaryKeyRelatedField(many=True, read_only=True, help_text="Commands rolling it back.")
    dispatched_to = serializers.SerializerMethodField(help_text="The edge device that took it: {id, name}.")

    class Meta:
        model = Command
        fields = [
            "id", "site", "type", "params", "status", "status_reason", "dedupe_key", "proposer", "proposer_kind",
            "ai_confidence", "risk_score", "risk_tier", "risk_breakdown", "approvals_required", "owner_admin_only",
            "priority", "expires_at", "dispatched_at", "finished_at", "created_at", "updated_at", "rollback_of",
            "rollbacks", "target_count", "not_before", "dispatched_to", "verification",
        ]  # fmt: skip

    def get_params(self, obj) -> dict:
        return {k: ("********" if k == "password" else v) for k, v in (obj.params or {}).items()}

    def get_dispatched_to(self, obj) -> dict | None:
        device = obj.dispatched_to if obj.dispatched_to_id else None
        return {"id": device.pk, "name": device.name} if device is not None else None

    def get_proposer(self, obj) -> str | None:
        return obj.proposer.get_username() if obj.proposer_id else None

    def get_target_count(self, obj) -> int:
        prefetched = getattr(obj, "_prefetched_objects_cache", {}).get("targets")
        return len(prefetched) if prefetched is not None else obj.targets.count()


class CommandDetailSerializer(CommandSerializer):
    targets = TargetSerializer(many=True, read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)

    class Meta(CommandSerializer.Meta):
        fields = [*CommandSerializer.Meta.fields, "targets", "approvals"]


class RollbackSerializer(CommandDetailSerializer):
    rollback_group = serializers.ListField(
        child=serializers.IntegerField(), help_text="Every command of this rollback, the first one included."
    )

    class Meta(CommandDetailSerializer.Meta):
        fields = [*CommandDetailSerializer.Meta.fields, "rollback_group"]


class CommandFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False, min_value=1)
    status = serializers.MultipleChoiceField(choices=CommandStatus.choices, required=False)
    type = serializers.CharField(required=False, max_length=40)
    risk_tier = serializers.MultipleChoiceField(choices=RiskTier.choices, required=False)
    verification = serializers.MultipleChoiceField(choices=Verification.choices, required=False)
    proposer = serializers.IntegerField(required=False, min_value=1)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False, max_length=40)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


class CommandPageSerializer(serializers.Serializer):
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True)
    results = CommandSerializer(many=True)
