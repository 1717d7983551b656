"""Telemetry: edge devices, the four sample layers (raw, live, 5-minute, daily), safety events,
alert rules and alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertSeverity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Alert(models.Model):
    """Something wrong at a site or on one miner. Repeats of an unresolved alert (same site, miner
    and type) raise its ``count`` and ``last_seen`` instead of creating a new row."""

    Severity = AlertSeverity
    Status = AlertStatus

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="alerts", verbose_name=_("site"))
    miner = models.ForeignKey(
        "miners.Miner", on_delete=models.CASCADE, related_name="alerts", null=True, blank=True, verbose_name=_("miner")
    )
    # Copied from the miner when raised, so a client's alerts are found by customer_id like their miners.
    customer = models.ForeignKey(
        "sites.Customer",
        on_delete=models.SET_NULL,
        related_name="alerts",
        null=True,
        blank=True,
        verbose_name=_("hosting client"),
    )
    alert_type = models.CharField(_("type"), max_length=64)
    severity = models.CharField(_("severity"), max_length=10, choices=AlertSeverity.choices)
    status = models.CharField(_("status"), max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    message = models.CharField(_("message"), max_length=500)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, editable=False)
    count = models.PositiveIntegerField(_("count"), default=1)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    ack_note = models.CharField(_("acknowledgement note"), max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("resolved by"),
    )  # fmt: skip
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolution_note = models.CharField(_("resolution note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen"]
        indexes = [
            models.Index(fields=["site", "status", "-last_seen"], name="alert_site_status"),
            models.Index(fields=["customer", "status"], name="alert_customer_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=~models.Q(status="resolved"), name="alert_one_unresolved_per_key"
            ),
            models.CheckConstraint(condition=models.Q(severity__in=AlertSeverity.values), name="alert_severity_valid"),
            models.CheckConstraint(condition=models.Q(status__in=AlertStatus.values), name="alert_status_valid"),
        ]

    def __str__(self):
        return f"[{self.severity}] {self.alert_type} @ {self.site_id}"


# ---------------------------------------------------------------------------------------------------
# Edge devices: a site's collector, enrolled with a one-time code, authenticated by a bearer token
# (stored as a SHA-256 hash only) and holding a per-device HMAC secret (sealed, envelope encryption).


class EnrollmentCode(models.Model):
    """A one-time code a site manager hands to a new edge collector; valid 24 h, single use.
    Only its hash is stored; the code itself is shown once."""

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site"))
    zone = models.ForeignKey(
        "sites.Zone", on_delete=models.CASCADE, related_name="+", null=True, blank=True, verbose_name=_("zone")
    )
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    device = models.ForeignKey(
        "telemetry.EdgeDevice", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("device"),
    )  # fmt: skip

    class Meta:
        verbose_name = _("enrollment code")
        verbose_name_plural = _("enrollment codes")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.site} · {self.created_at:%Y-%m-%d %H:%M}"


class EdgeDevice(models.Model):
    """A site's edge collector. Its token is ``hie_<prefix>_<secret>``; only a hash of the secret is
    kept. ``secret_sealed`` holds the HMAC key that signs commands sent to it."""

    site = models.ForeignKey(
        "sites.Site", on_delete=models.CASCADE, related_name="edge_devices", verbose_name=_("site")
    )
    zone = models.ForeignKey(
        "sites.Zone", on_delete=models.SET_NULL, related_name="+", null=True, blank=True, verbose_name=_("zone")
    )
    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(_("version"), max_length=40, blank=True)
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    secret_sealed = models.TextField(editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    rotated_at = models.DateTimeField(_("credentials rotated"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    last_seen_ip = models.GenericIPAddressField(_("last address"), null=True, blank=True)
    # What the collector last said about itself (spool depth, poll errors, miners polled).
    health = models.JSONField(_("health"), default=dict, blank=True)

    class Meta:
        verbose_name = _("edge device")
        verbose_name_plural = _("edge devices")
        ordering = ["site_id", "name"]

    def __str__(self):
        return f"{self.name} @ {self.site}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# ---------------------------------------------------------------------------------------------------
# The four layers. Units are in the field names. ``raw`` and ``history_5m`` are range-partitioned by
# time on PostgreSQL (telemetry/partitions.py); their primary key is (miner, time) so a re-sent sample or
# a re-run rollup lands on the same row. Miner and site are plain ids without a database foreign key:
# ingest at 20,000 rows/s should not pay a constraint check per row, and history outlives a deleted miner.


class SampleStatus(models.TextChoices):
    HASHING = "hashing", _("Hashing")
    IDLE = "idle", _("Idle")
    OFFLINE = "offline", _("Offline")
    ERROR = "error", _("Error")


class RawSample(models.Model):
    """One sample from one miner, as the edge sent it (kept 24 h)."""

    pk = models.CompositePrimaryKey("miner_id", "ts")
    miner = models.ForeignKey(
        "miners.Miner",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("miner"),
    )
    ts = models.DateTimeField(_("time"))
    site_id = models.IntegerField(_("site"))
    # The hosting client the miner belonged to when the sample was taken: a client sees its own samples,
    # never those of the miner's previous client.
    customer_id = models.IntegerField(_("hosting client"), null=True)
    device_id = models.IntegerField(_("device"), null=True)
    hashrate_ths = models.FloatField(_("hashrate (TH/s)"), null=True)
    temp_chip_max_c = models.FloatField(_("max chip temperature (°C)"), null=True)
    temp_inlet_c = models.FloatField(_("inlet temperature (°C)"), null=True)
    temp_outlet_c = models.FloatField(_("outlet temperature (°C)"), null=True)
    fan_rpm = models.JSONField(_("fan speeds (rpm)"), default=list)
    power_w = models.FloatField(_("power (W)"), null=True)
    status = models.CharField(_("status"), max_length=8, choices=SampleStatus.choices)
    accepted_shares = models.BigIntegerField(_("accepted shares"), null=True)
    rejected_shares = models.BigIntegerField(_("rejected shares"), null=True)
    errors = models.JSONField(_("error codes"), default=list)

    class Meta:
        db_table = "telemetry_raw"
        verbose_name = _("raw sample")
        verbose_name_plural = _("raw samples")
        indexes = [models.Index(fields=["site_id", "ts"], name="raw_site_ts")]

    def __str__(self):
        return f"{self.miner_id} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class FloatListField(models.Field):
    """A list of floats: ``double precision[]`` on PostgreSQL (ingest's upsert slices and averages it in
    SQL), JSON text elsewhere (SQLite's plain tables)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    def db_type(self, connection):
        return "double precision[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value, expression, connection):
        if value is None or type(value) is list:
            return value
        import orjson

        return orjson.loads(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        value = [float(x) for x in value]
        if connection.vendor == "postgresql":
            return value
        import orjson

        return orjson.dumps(value).decode()


class LiveStatus(models.Model):
    """One row per miner: the latest sample, with hashrate as a 5-minute moving average.
    Online or offline is derived from the age of ``last_seen`` (``LIVE_OFFLINE_AFTER``)."""

    miner = models.OneToOneField(
        "miners.Miner", on_delete=models.CASCADE, primary_key=True, related_name="live", verbose_name=_("miner")
    )
    site_id = models.IntegerField(_("site"))
    customer_id = models.IntegerField(_("hosting client"), null=True)
    last_seen = models.DateTimeField(_("last seen"))
    hashrate_ghs = models.FloatField(_("hashrate, 5-min average (GH/s)"), null=True)
    hashrate_ths_instant = models.FloatField(_("hashrate, last sample (TH/s)"), null=True)
    # The last five minutes of samples behind the moving average: their times (epoch seconds, ascending)
    # and hashrates (TH/s), side by side.
    hashrate_window_ts = FloatListField(editable=False)
    hashrate_window_ths = FloatListField(editable=False)
    temp_chip_max_c = models.FloatField(_("max chip temperature (°C)"), null=True)
    temp_inlet_c = models.FloatField(_("inlet temperature (°C)"), null=True)
    temp_outlet_c = models.FloatField(_("outlet temperature (°C)"), null=True)
    fan_rpm = models.JSONField(_("fan speeds (rpm)"), default=list)
    power_w = models.FloatField(_("power (W)"), null=True)
    status = models.CharField(_("status"), max_length=8, choices=SampleStatus.choices)
    accepted_shares = models.BigIntegerField(_("accepted shares"), null=True)
    rejected_shares = models.BigIntegerField(_("rejected shares"), null=True)
    errors = models.JSONField(_("error codes"), default=list)
    # The miner's settings as the edge last read them (optional sample fields): what the control plane
    # verifies a POOL_SET, SET_FAN or POWER_MODE against. Blank/null when the adapter cannot read them.
    pool_url = models.CharField(_("active pool"), max_length=255, blank=True, default="", db_default="")
    fan_pct = models.SmallIntegerField(_("fan duty (%)"), null=True)
    power_mode = models.CharField(_("power mode"), max_length=8, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        db_table = "telemetry_live"
        verbose_name = _("live status")
        verbose_name_plural = _("live status")
        # Every index here is paid on each of ingest's upserts (measured: 54 ms per 1,000 rows with ten,
        # 27 ms with five), so there is one per sort of the live list and nothing else. Each ends in the
        # miner id, so a keyset page at any depth is one range scan from its cursor; scope filters join
        # the miner by primary key.
        indexes = [
            models.Index(fields=["site_id", "status", "miner"], name="live_q_status"),
            models.Index(fields=["site_id", "temp_chip_max_c", "miner"], name="live_q_temp"),
            models.Index(fields=["site_id", "hashrate_ghs", "miner"], name="live_q_hashrate"),
            models.Index(fields=["site_id", "last_seen", "miner"], name="live_q_last_seen"),
        ]

    def __str__(self):
        return f"{self.miner_id}: {self.status}"


class History5m(models.Model):
    """Five-minute aggregates per miner (kept 90 days). Rebuilt whole by the rollup job, so re-running
    a window gives identical rows."""

    pk = models.CompositePrimaryKey("miner_id", "bucket")
    miner = models.ForeignKey(
        "miners.Miner",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("miner"),
    )
    bucket = models.DateTimeField(_("window start"))
    site_id = models.IntegerField(_("site"))
    customer_id = models.IntegerField(_("hosting client"), null=True)  # as the window's samples say
    sample_count = models.PositiveSmallIntegerField(_("samples"))
    hashing_count = models.PositiveSmallIntegerField(_("samples hashing"))
    uptime_fraction = models.FloatField(_("uptime fraction"))
    avg_hashrate_ths = models.FloatField(_("average hashrate (TH/s)"), null=True)
    min_hashrate_ths = models.FloatField(_("minimum hashrate (TH/s)"), null=True)
    max_hashrate_ths = models.FloatField(_("maximum hashrate (TH/s)"), null=True)
    avg_temp_chip_max_c = models.FloatField(_("average max chip temperature (°C)"), null=True)
    min_temp_chip_max_c = models.FloatField(_("minimum max chip temperature (°C)"), null=True)
    max_temp_chip_max_c = models.FloatField(_("maximum chip temperature (°C)"), null=True)
    avg_temp_inlet_c = models.FloatField(_("average inlet temperature (°C)"), null=True)
    max_temp_inlet_c = models.FloatField(_("maximum inlet temperature (°C)"), null=True)
    avg_temp_outlet_c = models.FloatField(_("average outlet temperature (°C)"), null=True)
    max_temp_outlet_c = models.FloatField(_("maximum outlet temperature (°C)"), null=True)
    avg_power_w = models.FloatField(_("average power (W)"), null=True)
    min_power_w = models.FloatField(_("minimum power (W)"), null=True)
    max_power_w = models.FloatField(_("maximum power (W)"), null=True)
    avg_fan_rpm = models.FloatField(_("average fan speed (rpm)"), null=True)
    min_fan_rpm = models.FloatField(_("slowest fan (rpm)"), null=True)
    accepted_shares = models.BigIntegerField(_("accepted shares in window"), default=0)
    rejected_shares = models.BigIntegerField(_("rejected shares in window"), default=0)
    restarts = models.PositiveSmallIntegerField(_("restarts"), default=0)

    class Meta:
        db_table = "telemetry_history_5m"
        verbose_name = _("5-minute history")
        verbose_name_plural = _("5-minute history")
        indexes = [models.Index(fields=["site_id", "bucket"], name="h5m_site_bucket")]

    def __str__(self):
        return f"{self.miner_id} @ {self.bucket:%Y-%m-%d %H:%M}"


class Daily(models.Model):
    """One row per miner per UTC day (kept 365 days and more): reports and billing read this layer.
    ``customer_id`` is the hosting client the miner belonged to when the day was rolled up."""

    pk = models.CompositePrimaryKey("miner_id", "day")
    miner = models.ForeignKey(
        "miners.Miner",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("miner"),
    )
    day = models.DateField(_("day"))
    site_id = models.IntegerField(_("site"))
    customer_id = models.IntegerField(_("hosting client"), null=True)
    sample_count = models.PositiveIntegerField(_("samples"))
    buckets_reported = models.PositiveSmallIntegerField(_("5-minute windows reported"))
    avg_hashrate_ths = models.FloatField(_("average hashrate (TH/s)"), null=True)
    energy_kwh = models.FloatField(_("energy (kWh)"))
    uptime_pct = models.FloatField(_("uptime (%)"))
    max_temp_chip_c = models.FloatField(_("maximum chip temperature (°C)"), null=True)
    restarts = models.PositiveIntegerField(_("restarts"), default=0)
    accepted_shares = models.BigIntegerField(_("accepted shares"), default=0)
    rejected_shares = models.BigIntegerField(_("rejected shares"), default=0)

    class Meta:
        db_table = "telemetry_daily"
        verbose_name = _("daily summary")
        verbose_name_plural = _("daily summaries")
        indexes = [
            models.Index(fields=["site_id", "day"], name="daily_site_day"),
            models.Index(fields=["customer_id", "day"], name="daily_customer_day"),
        ]

    def __str__(self):
        return f"{self.miner_id} @ {self.day}"


class SiteHistory5m(models.Model):
    """A site's fleet per five-minute window: what the dashboard charts."""

    pk = models.CompositePrimaryKey("site_id", "bucket")
    site = models.ForeignKey(
        "sites.Site",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("site"),
    )
    bucket = models.DateTimeField(_("window start"))
    miners_reporting = models.PositiveIntegerField(_("miners reporting"))
    miners_hashing = models.PositiveIntegerField(_("miners hashing"))
    hashrate_ths = models.FloatField(_("fleet hashrate (TH/s)"))
    power_w = models.FloatField(_("fleet power (W)"))
    avg_temp_chip_max_c = models.FloatField(_("average max chip temperature (°C)"), null=True)
    max_temp_chip_max_c = models.FloatField(_("maximum chip temperature (°C)"), null=True)
    uptime_fraction = models.FloatField(_("uptime fraction"))

    class Meta:
        db_table = "telemetry_site_history_5m"
        verbose_name = _("site 5-minute history")
        verbose_name_plural = _("site 5-minute history")

    def __str__(self):
        return f"site {self.site_id} @ {self.bucket:%Y-%m-%d %H:%M}"


class SiteDaily(models.Model):
    """A site's fleet per UTC day."""

    pk = models.CompositePrimaryKey("site_id", "day")
    site = models.ForeignKey(
        "sites.Site",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("site"),
    )
    day = models.DateField(_("day"))
    miners_reporting = models.PositiveIntegerField(_("miners reporting"))
    avg_hashrate_ths = models.FloatField(_("average fleet hashrate (TH/s)"))
    energy_kwh = models.FloatField(_("energy (kWh)"))
    uptime_pct = models.FloatField(_("uptime (%)"))
    max_temp_chip_c = models.FloatField(_("maximum chip temperature (°C)"), null=True)
    restarts = models.PositiveIntegerField(_("restarts"), default=0)

    class Meta:
        db_table = "telemetry_site_daily"
        verbose_name = _("site daily summary")
        verbose_name_plural = _("site daily summaries")

    def __str__(self):
        return f"site {self.site_id} @ {self.day}"


class RollupCursor(models.Model):
    """How far a rollup layer is complete: the job resumes from here after downtime."""

    layer = models.CharField(max_length=32, primary_key=True)
    done_until = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("rollup cursor")
        verbose_name_plural = _("rollup cursors")

    def __str__(self):
        return f"{self.layer} until {self.done_until:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------------
# Safety events and alert rules.


class SafetyKind(models.TextChoices):
    OVERHEAT_SHUTDOWN = "overheat_shutdown", _("Overheat shutdown")
    FAN_FAILURE = "fan_failure", _("Fan failure")
    POWER_LOSS = "power_loss", _("Power loss")
    HASHBOARD_FAILURE = "hashboard_failure", _("Hashboard or chain failure")


class SafetyEvent(models.Model):
    """A protective action or hardware failure an edge device reports; idempotent per device event id."""

    Kind = SafetyKind

    device = models.ForeignKey(
        EdgeDevice, on_delete=models.CASCADE, related_name="safety_events", verbose_name=_("device")
    )
    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site"))
    miner = models.ForeignKey(
        "miners.Miner", on_delete=models.CASCADE, null=True, blank=True, related_name="safety_events",
        verbose_name=_("miner"),
    )  # fmt: skip
    event_id = models.CharField(_("device event id"), max_length=64)
    kind = models.CharField(_("kind"), max_length=24, choices=SafetyKind.choices)
    ts = models.DateTimeField(_("time"))
    details = models.JSONField(_("details"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    alert = models.ForeignKey(Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("safety event")
        verbose_name_plural = _("safety events")
        ordering = ["-ts"]
        constraints = [
            models.UniqueConstraint(fields=["device", "event_id"], name="safety_event_once_per_device"),
            models.CheckConstraint(condition=models.Q(kind__in=SafetyKind.values), name="safety_kind_valid"),
        ]
        indexes = [models.Index(fields=["site", "-ts"], name="safety_site_ts")]

    def __str__(self):
        return f"{self.kind} · {self.miner_id or '-'} · {self.ts:%Y-%m-%d %H:%M}"


class AlertRuleKind(models.TextChoices):
    CHIP_TEMP_ABOVE = "chip_temp_above", _("Chip temperature above (°C)")
    # xgettext:no-python-format
    HASHRATE_BELOW_PCT = "hashrate_below_pct", _("Hashrate below % of nominal")
    OFFLINE_FOR = "offline_for", _("Offline")
    POWER_DEVIATION_PCT = "power_deviation_pct", _("Power deviates from nominal by more than %")
    REJECT_RATE_ABOVE_PCT = "reject_rate_above_pct", _("Reject rate above %")


class AlertRule(models.Model):
    """A site's threshold for one kind of problem. The alert it raises has ``alert_type`` = ``kind``,
    one open alert per miner, resolved by the evaluator once the condition clears."""

    Kind = AlertRuleKind

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="alert_rules", verbose_name=_("site"))
    kind = models.CharField(_("rule"), max_length=24, choices=AlertRuleKind.choices)
    threshold = models.FloatField(_("threshold"))
    duration_minutes = models.PositiveIntegerField(_("for (minutes)"), default=0)
    severity = models.CharField(
        _("severity"), max_length=10, choices=AlertSeverity.choices, default=AlertSeverity.WARNING
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("updated by"),
    )  # fmt: skip

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["site_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["site", "kind"], name="alert_rule_one_per_kind"),
            models.CheckConstraint(condition=models.Q(kind__in=AlertRuleKind.values), name="alert_rule_kind_valid"),
            models.CheckConstraint(condition=models.Q(threshold__gte=0), name="alert_rule_threshold_gte_0"),
        ]

    def __str__(self):
        return f"{self.site} · {self.kind} {self.threshold}"
