from rest_framework import serializers

from hashinsight.core.api.fields import ScopedPrimaryKeyRelatedField
from sites.models import Customer, Site, Zone
from sites.selectors import site_list


class SiteSerializer(serializers.ModelSerializer):
    miner_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Site
        fields = [
            "id",
            "name",
            "slug",
            "location",
            "timezone",
            "capacity_kw",
            "created_at",
            "updated_at",
            "miner_count",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "miner_count"]


class ZoneSerializer(serializers.ModelSerializer):
    site = ScopedPrimaryKeyRelatedField(site_list)

    class Meta:
        model = Zone
        fields = ["id", "site", "name", "kind", "capacity_kw", "energy_source"]
        read_only_fields = ["id"]
        validators = []  # (site, name) uniqueness is checked by the service (full_clean), once


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "company",
            "slug",
            "email",
            "hosting_rate_usd_per_kwh",
            "contract_start",
            "contract_end",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
