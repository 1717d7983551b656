from rest_framework import serializers

from hashinsight.core.api.fields import ScopedPrimaryKeyRelatedField
from miners.models import Miner, MinerModel, PortfolioEntry, check_efficiency
from miners.selectors import miner_model_list
from sites.models import Zone
from sites.selectors import customer_list, site_is_manageable, site_list, zone_list


class MinerModelSerializer(serializers.ModelSerializer):
    efficiency_j_per_th = serializers.DecimalField(max_digits=8, decimal_places=2, read_only=True)

    class Meta:
        model = MinerModel
        fields = [
            "id",
            "vendor",
            "name",
            "code",
            "hashrate_ths",
            "power_w",
            "efficiency_j_per_th",
            "cooling",
            "release_date",
            "source",
        ]
        read_only_fields = ["id"]

    def validate(self, attrs):
        # The field bounds come from the model's validators; the pair is checked by the same rule as
        # MinerModel.clean and the database's CHECK, so the write fails here with a 400, not there.
        check_efficiency(
            hashrate_ths=attrs.get("hashrate_ths", getattr(self.instance, "hashrate_ths", None)),
            power_w=attrs.get("power_w", getattr(self.instance, "power_w", None)),
        )
        return attrs


class _Ref(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MinerListSerializer(serializers.ModelSerializer):
    """List rows: never the network identity, whoever asks."""

    site_name = serializers.CharField(source="site.name", read_only=True)
    zone_name = serializers.CharField(source="zone.name", read_only=True)
    # The farm's own miners have no hosting client.
    customer_name = serializers.CharField(source="customer.company", read_only=True, default=None, allow_null=True)
    model_name = serializers.CharField(source="model.__str__", read_only=True)
    hashrate_ths = serializers.DecimalField(
        source="model.hashrate_ths", max_digits=10, decimal_places=2, read_only=True
    )
    power_w = serializers.DecimalField(source="model.power_w", max_digits=10, decimal_places=1, read_only=True)

    class Meta:
        model = Miner
        fields = [
            "id", "serial", "asset_tag", "site", "site_name", "zone", "zone_name", "customer", "customer_name",
            "model", "model_name", "hashrate_ths", "power_w", "rack", "shelf", "slot", "status", "firmware",
            "pool_url", "pool_worker", "created_at", "updated_at",
        ]  # fmt: skip


class MinerDetailSerializer(MinerListSerializer):
    """Detail adds the decrypted network identity, for users who may manage the miner's site only."""

    network_identity = serializers.SerializerMethodField()

    class Meta(MinerListSerializer.Meta):
        fields = [*MinerListSerializer.Meta.fields, "network_identity"]

    def get_network_identity(self, miner) -> dict | None:
        user = self.context["request"].user
        if not site_is_manageable(user=user, site_id=miner.site_id):
            return None
        return miner.get_identity()


class MinerWriteSerializer(serializers.ModelSerializer):
    site = ScopedPrimaryKeyRelatedField(site_list)
    zone = ScopedPrimaryKeyRelatedField(zone_list)
    customer = ScopedPrimaryKeyRelatedField(customer_list, required=False, allow_null=True)
    model = serializers.PrimaryKeyRelatedField(queryset=miner_model_list())
    ip = serializers.IPAddressField(required=False, allow_blank=True, write_only=True)
    mac = serializers.RegexField(
        r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$", required=False, allow_blank=True, write_only=True
    )
    username = serializers.CharField(required=False, allow_blank=True, max_length=120, write_only=True)
    password = serializers.CharField(
        required=False, allow_blank=True, max_length=200, write_only=True, style={"input_type": "password"}
    )

    class Meta:
        model = Miner
        fields = [
            "site", "zone", "customer", "model", "serial", "asset_tag", "rack", "shelf", "slot", "status",
            "firmware", "pool_url", "pool_worker", "ip", "mac", "username", "password",
        ]  # fmt: skip
        validators = []  # uniqueness is the service's job, with stable error codes
        extra_kwargs = {"serial": {"validators": []}}

    def validate(self, attrs):
        site = attrs.get("site", getattr(self.instance, "site", None))
        zone: Zone | None = attrs.get("zone", getattr(self.instance, "zone", None))
        if site is not None and zone is not None and zone.site_id != site.pk:
            raise serializers.ValidationError({"zone": "The zone does not belong to the chosen site."})
        if attrs.get("mac"):
            attrs["mac"] = attrs["mac"].upper().replace("-", ":")
        return attrs


class PortfolioEntrySerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.__str__", read_only=True)

    class Meta:
        model = PortfolioEntry
        fields = ["id", "model", "model_name", "quantity", "power_price_usd_per_kwh", "label", "created_at"]
        read_only_fields = ["id", "created_at"]


class BulkImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    first_id = serializers.IntegerField(allow_null=True)
    last_id = serializers.IntegerField(allow_null=True)
