from django.db.models import Q
from django_filters import rest_framework as filters

from hashinsight.core.api.filters import scoped_choice
from sites.models import Customer, Zone
from sites.selectors import site_list


class ZoneFilter(filters.FilterSet):
    site = scoped_choice(site_list)

    class Meta:
        model = Zone
        fields = ["site", "kind", "energy_source"]


class CustomerFilter(filters.FilterSet):
    active_on = filters.DateFilter(method="filter_active_on", label="contract active on this date")

    class Meta:
        model = Customer
        fields = ["slug"]

    def filter_active_on(self, queryset, name, value):
        return queryset.filter(Q(contract_start__lte=value), Q(contract_end__isnull=True) | Q(contract_end__gte=value))
