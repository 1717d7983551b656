from rest_framework import serializers

from telemetry.models import Alert


class AlertSerializer(serializers.ModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True)
    # Site-wide alerts have no miner.
    miner_serial = serializers.CharField(source="miner.serial", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id", "site", "site_name", "miner", "miner_serial", "alert_type", "severity", "status", "message",
            "evidence", "count", "first_seen", "last_seen", "acknowledged_at", "ack_note", "resolved_at",
            "resolution_note",
        ]  # fmt: skip
        read_only_fields = fields


class AlertNoteSerializer(serializers.Serializer):
    """The body of acknowledge and resolve (documentation only: the service validates the note, as it
    does for the portal, so both answer the same invalid_note)."""

    note = serializers.CharField(required=False, max_length=500)
