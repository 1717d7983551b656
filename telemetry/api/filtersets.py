from django_filters import rest_framework as filters

from hashinsight.core.api.filters import scoped_choice
from miners.selectors import miner_list
from sites.selectors import site_list
from telemetry.models import Alert


class AlertFilter(filters.FilterSet):
    site = scoped_choice(site_list)
    miner = scoped_choice(miner_list)

    class Meta:
        model = Alert
        fields = ["site", "status", "severity", "alert_type", "miner"]
