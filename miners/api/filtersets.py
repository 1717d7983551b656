from django_filters import rest_framework as filters

from hashinsight.core.api.filters import scoped_choice
from miners.models import Miner
from sites.selectors import customer_list, site_list, zone_list


class MinerFilter(filters.FilterSet):
    site = scoped_choice(site_list)
    zone = scoped_choice(zone_list)
    customer = scoped_choice(customer_list)
    vendor = filters.CharFilter(field_name="model__vendor", lookup_expr="iexact")
    rack = filters.CharFilter()

    class Meta:
        model = Miner
        fields = ["site", "zone", "customer", "model", "status", "rack", "firmware"]
