"""Edge devices and enrollment codes as the user API shows them. Secrets appear only in the
responses of enrollment (the code) and rotation (token and HMAC secret), never in a list or detail."""

from __future__ import annotations

from rest_framework import serializers

from hashinsight.core.api.fields import ScopedPrimaryKeyRelatedField
from sites.selectors import site_list, zone_list
from telemetry import devices
from telemetry.models import EdgeDevice, EnrollmentCode


class EdgeDeviceSerializer(serializers.ModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True)
    zone_name = serializers.CharField(source="zone.name", read_only=True, default=None, allow_null=True)
    status = serializers.SerializerMethodField()
    token_prefix = serializers.CharField(read_only=True, help_text="public part of the token: hie_<prefix>_…")

    class Meta:
        model = EdgeDevice
        fields = [
            "id", "site", "site_name", "zone", "zone_name", "name", "version", "status", "token_prefix",
            "created_at", "rotated_at", "revoked_at", "last_seen_at", "last_seen_ip", "health",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, device) -> str:
        return devices.device_status(device)


class EdgeDeviceCredentialsSerializer(EdgeDeviceSerializer):
    """The device after rotation, with its new credentials (shown only this once)."""

    token = serializers.CharField(read_only=True)
    hmac_secret = serializers.CharField(read_only=True)

    class Meta(EdgeDeviceSerializer.Meta):
        fields = [*EdgeDeviceSerializer.Meta.fields, "token", "hmac_secret"]
        read_only_fields = fields


class EnrollmentCreateSerializer(serializers.ModelSerializer):
    site = ScopedPrimaryKeyRelatedField(site_list)
    zone = ScopedPrimaryKeyRelatedField(zone_list, required=False, allow_null=True)

    class Meta:
        model = EnrollmentCode  # for the schema's field types; rows are created by the service
        fields = ["site", "zone"]

    def validate(self, attrs):
        zone = attrs.get("zone")
        if zone is not None and zone.site_id != attrs["site"].pk:
            raise serializers.ValidationError({"zone": "The zone does not belong to the chosen site."})
        return attrs


class EnrollmentCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.IntegerField(source="site_id")
    zone = serializers.IntegerField(source="zone_id", allow_null=True)
    code = serializers.CharField(help_text="the one-time enrollment code; shown only this once")
    expires_at = serializers.DateTimeField()
