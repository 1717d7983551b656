from rest_framework import serializers

from hashinsight.accounts.roles import Role, role_of
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
            "power_price_usd_per_kwh",
            "created_at",
            "updated_at",
            "miner_count",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "miner_count"]

    def get_fields(self):
        # The operator's power price is its business: a hosting client is billed at its own rate
        # (Customer.hosting_rate_usd_per_kwh) and never sees what the site pays.
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and role_of(request.user) == Role.CLIENT:
            fields.pop("power_price_usd_per_kwh")
        return fields


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
