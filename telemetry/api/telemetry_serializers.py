"""Query parameters and answers of the telemetry query API (``/api/v1/telemetry/…``). The answers are
built by ``telemetry.telemetry_selectors`` as plain dicts; these serializers give them their OpenAPI
schema and check the query parameters (a bad one → 400 in the standard error shape)."""

from __future__ import annotations

from rest_framework import serializers

from telemetry.telemetry_selectors import LIVE_SORTS, MAX_PAGE, RESOLUTIONS, STATUS_FILTERS

SORT_CHOICES = [*LIVE_SORTS, *(f"-{k}" for k in LIVE_SORTS)]


class LiveQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_FILTERS, required=False, help_text="Effective status; "
                                     "`online` is every miner reporting and not offline.")  # fmt: skip
    zone = serializers.IntegerField(required=False, min_value=1)
    customer = serializers.IntegerField(required=False, min_value=1)
    temp_above = serializers.FloatField(required=False, min_value=-100, max_value=300, help_text="°C, chip maximum")
    temp_below = serializers.FloatField(required=False, min_value=-100, max_value=300, help_text="°C, chip maximum")
    hashrate_below_ths = serializers.FloatField(required=False, min_value=0, help_text="TH/s, 5-minute average")
    sort = serializers.ChoiceField(choices=SORT_CHOICES, required=False, default="serial")
    cursor = serializers.CharField(required=False, max_length=500)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, default=50)


class HistoryQuerySerializer(serializers.Serializer):
    # ``from`` is a Python keyword: declared below under its wire name.
    to = serializers.CharField(required=False, max_length=40, help_text="ISO-8601 date or date-time (UTC if no offset)")
    resolution = serializers.CharField(required=False, max_length=10, help_text=" | ".join(RESOLUTIONS))


HistoryQuerySerializer._declared_fields["from"] = serializers.CharField(
    required=False, max_length=40, help_text="ISO-8601 date or date-time; default: 24 hours before `to`"
)


class DailyQuerySerializer(HistoryQuerySerializer):
    site = serializers.IntegerField(required=False, min_value=1)
    customer = serializers.IntegerField(required=False, min_value=1)
    miner = serializers.IntegerField(required=False, min_value=1)


class LiveRowSerializer(serializers.Serializer):
    miner = serializers.IntegerField()
    serial = serializers.CharField()
    zone = serializers.IntegerField()
    zone_name = serializers.CharField()
    customer = serializers.IntegerField(allow_null=True)
    site = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["hashing", "idle", "error", "offline"])
    reported_status = serializers.CharField()
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField()
    hashrate_ths = serializers.FloatField(allow_null=True, help_text="TH/s, 5-minute moving average")
    nominal_hashrate_ths = serializers.FloatField(allow_null=True)
    hashrate_pct_of_nominal = serializers.FloatField(allow_null=True)
    temp_chip_max_c = serializers.FloatField(allow_null=True)
    temp_inlet_c = serializers.FloatField(allow_null=True)
    temp_outlet_c = serializers.FloatField(allow_null=True)
    power_w = serializers.FloatField(allow_null=True)
    fan_rpm = serializers.ListField(child=serializers.FloatField())
    errors = serializers.ListField(child=serializers.CharField())


class LivePageSerializer(serializers.Serializer):
    sort = serializers.CharField()
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True, help_text="URL of the next page (same filters and sort)")
    results = LiveRowSerializer(many=True)


class WorstMinerSerializer(serializers.Serializer):
    miner = serializers.IntegerField()
    serial = serializers.CharField()
    temp_chip_max_c = serializers.FloatField(allow_null=True)
    hashrate_ths = serializers.FloatField(allow_null=True)
    nominal_hashrate_ths = serializers.FloatField(allow_null=True)
    hashrate_pct_of_nominal = serializers.FloatField(allow_null=True)


class TempBucketSerializer(serializers.Serializer):
    label = serializers.CharField()
    from_c = serializers.FloatField(allow_null=True)
    to_c = serializers.FloatField(allow_null=True)
    miners = serializers.IntegerField()


class RecentAlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    severity = serializers.CharField()
    status = serializers.CharField()
    alert_type = serializers.CharField()
    message = serializers.CharField(help_text="in English, as stored")
    msg = serializers.DictField(
        allow_null=True,
        required=False,
        help_text="the message as an id and its parameters ({id, params}), for showing it in another language",
    )
    miner = serializers.IntegerField(allow_null=True)
    serial = serializers.CharField(allow_null=True)
    last_seen = serializers.DateTimeField()
    count = serializers.IntegerField()


# Whose miners a figure covers: the whole site, or only the caller's hosting clients' (named in the schema
# as TelemetryScopeEnum, distinct from an API token's scope).
TELEMETRY_SCOPES = ("site", "customers")


class SummarySerializer(serializers.Serializer):
    site = serializers.DictField()
    scope = serializers.ChoiceField(choices=TELEMETRY_SCOPES, help_text="`customers`: your own miners only")
    generated_at = serializers.DateTimeField()
    offline_after_s = serializers.IntegerField()
    miners = serializers.IntegerField()
    miners_reporting = serializers.IntegerField()
    miners_online = serializers.IntegerField()
    online_pct = serializers.FloatField(allow_null=True)
    by_state = serializers.DictField(child=serializers.IntegerField())
    hashrate_ths = serializers.FloatField()
    nominal_hashrate_ths = serializers.FloatField()
    hashrate_pct_of_nominal = serializers.FloatField(allow_null=True)
    power_kw = serializers.FloatField()
    nominal_power_kw = serializers.FloatField()
    temp_chip_avg_c = serializers.FloatField(allow_null=True)
    temp_chip_max_c = serializers.FloatField(allow_null=True)
    temperature_histogram = TempBucketSerializer(many=True)
    worst_by_temperature = WorstMinerSerializer(many=True)
    worst_by_hashrate = WorstMinerSerializer(many=True)
    open_alerts = serializers.DictField(child=serializers.IntegerField())
    recent_alerts = RecentAlertSerializer(many=True)


class HistoryPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="start of the sample, window or bucket (UTC)")
    hashrate_ths = serializers.FloatField(allow_null=True)
    temp_chip_max_c = serializers.FloatField(allow_null=True)
    temp_chip_peak_c = serializers.FloatField(allow_null=True)
    temp_inlet_c = serializers.FloatField(allow_null=True, required=False)
    temp_outlet_c = serializers.FloatField(allow_null=True, required=False)
    power_w = serializers.FloatField(allow_null=True)
    fan_rpm = serializers.FloatField(allow_null=True, required=False)
    uptime_fraction = serializers.FloatField(allow_null=True)
    energy_kwh = serializers.FloatField(allow_null=True)
    miners_reporting = serializers.FloatField(allow_null=True, required=False)
    miners_hashing = serializers.FloatField(allow_null=True, required=False)


class _HistoryBase(serializers.Serializer):
    layer = serializers.ChoiceField(choices=["raw", "5m", "daily"])
    step_s = serializers.IntegerField(help_text="seconds per point")
    downsampled = serializers.BooleanField()
    points = HistoryPointSerializer(many=True)


_HistoryBase._declared_fields["from"] = serializers.DateTimeField()
_HistoryBase._declared_fields["to"] = serializers.DateTimeField()


class MinerHistorySerializer(_HistoryBase):
    miner = serializers.IntegerField()
    serial = serializers.CharField()
    site = serializers.IntegerField()
    nominal_hashrate_ths = serializers.FloatField()
    nominal_power_w = serializers.FloatField()


class SiteHistorySerializer(_HistoryBase):
    site = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=TELEMETRY_SCOPES)


class DailyRowSerializer(serializers.Serializer):
    miner = serializers.IntegerField(source="miner_id")
    serial = serializers.CharField(source="miner__serial", allow_null=True)
    day = serializers.DateField()
    site = serializers.IntegerField(source="site_id")
    customer = serializers.IntegerField(source="customer_id", allow_null=True)
    sample_count = serializers.IntegerField()
    buckets_reported = serializers.IntegerField()
    avg_hashrate_ths = serializers.FloatField(allow_null=True)
    energy_kwh = serializers.FloatField()
    uptime_pct = serializers.FloatField()
    max_temp_chip_c = serializers.FloatField(allow_null=True)
    restarts = serializers.IntegerField()
    accepted_shares = serializers.IntegerField()
    rejected_shares = serializers.IntegerField()
