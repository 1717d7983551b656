"""The intelligence layer's records: market history, power prices per site, the forecast model registry and its
forecasts, and curtailment plans. The algorithms live in ``intelligence.algorithms`` (no Django); these models
keep their inputs and results. Money and prices are ``Decimal``; times are UTC."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MarketDay(models.Model):
    """One UTC day of the Bitcoin market: the shipped history (``manage.py load_market``) and, on top of it, what a
    configured live feed reports (``intelligence.feeds``). A feed's row for a day replaces the shipped one."""

    class Source(models.TextChoices):
        SHIPPED = "shipped", _("Shipped history")
        FEED = "feed", _("Live feed")
        MANUAL = "manual", _("Entered by hand")

    date = models.DateField(_("date"), unique=True)
    btc_price_usd = models.DecimalField(_("BTC price (USD)"), max_digits=14, decimal_places=2)
    difficulty = models.DecimalField(_("difficulty"), max_digits=30, decimal_places=0)
    hashrate_ths = models.DecimalField(_("network hashrate (TH/s)"), max_digits=20, decimal_places=2, null=True)
    fees_btc = models.DecimalField(_("fees paid that day (BTC)"), max_digits=16, decimal_places=8, null=True)
    miners_revenue_usd = models.DecimalField(
        _("miners' revenue that day (USD)"), max_digits=18, decimal_places=2, null=True
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices, default=Source.SHIPPED)
    source_name = models.CharField(_("feed or file"), max_length=80, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("market day")
        verbose_name_plural = _("market days")
        ordering = ["date"]

    def __str__(self):
        return f"{self.date}: {self.btc_price_usd} USD"


class PowerMarket(models.TextChoices):
    DAY_AHEAD = "day_ahead", _("Day-ahead")
    REAL_TIME = "real_time", _("Real-time")


class PowerPrice(models.Model):
    """A site's energy price for one interval (hourly day-ahead, 15- or 5-minute real-time), in USD per MWh. Loaded
    from an upload (CSV), an adapter (``intelligence.power_feeds``) or, for the demo site, the shipped ERCOT prices."""

    site = models.ForeignKey(
        "sites.Site", on_delete=models.CASCADE, related_name="power_prices", verbose_name=_("site")
    )
    market = models.CharField(_("market"), max_length=10, choices=PowerMarket.choices)
    interval_start = models.DateTimeField(_("interval start (UTC)"))
    interval_minutes = models.PositiveSmallIntegerField(_("interval (min)"))
    usd_per_mwh = models.DecimalField(_("price (USD/MWh)"), max_digits=10, decimal_places=2)
    source = models.CharField(_("source"), max_length=80, blank=True)
    created_at = models.DateTimeField(_("loaded"), auto_now_add=True)

    class Meta:
        verbose_name = _("power price")
        verbose_name_plural = _("power prices")
        ordering = ["site", "market", "interval_start"]
        constraints = [
            models.UniqueConstraint(fields=["site", "market", "interval_start"], name="power_price_unique_interval"),
            models.CheckConstraint(condition=models.Q(interval_minutes__in=[5, 15, 60]), name="power_price_interval"),
        ]

    def __str__(self):
        return f"{self.site_id} {self.market} {self.interval_start:%Y-%m-%d %H:%M}: {self.usd_per_mwh}"


class ForecastTarget(models.TextChoices):
    BTC_PRICE = "btc_price", _("BTC price (USD)")
    DIFFICULTY = "difficulty", _("Difficulty")
    HASHPRICE = "hashprice", _("Hashprice (USD per TH/s per day)")
    REVENUE = "revenue", _("Net revenue (USD per day)")
    UPLOAD = "upload", _("Uploaded series")  # POST /api/v1/training-jobs with a CSV (subject upload:<id>)


class ForecastModel(models.Model):
    """One trained model in the registry: which algorithm for which target and subject, trained on data up to a
    day, with its latest walk-forward backtest next to naive. At most one active model per (target, subject); the
    forecast service falls back to naive when the active one failed, is stale or lost to naive."""

    class Algorithm(models.TextChoices):
        NAIVE = "naive", _("Naive")
        PROPHET = "prophet", _("Prophet")
        XGBOOST = "xgboost", _("XGBoost")
        DIFFICULTY_EPOCH = "difficulty_epoch", _("Difficulty epochs")
        HASHPRICE_COMPOSITE = "hashprice_composite", _("Hashprice composite")

    class Status(models.TextChoices):
        TRAINING = "training", _("Training")
        CANDIDATE = "candidate", _("Candidate")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")
        FAILED = "failed", _("Failed")

    target = models.CharField(_("target"), max_length=16, choices=ForecastTarget.choices)
    # Whose series: "" for the network's (price, difficulty, hashprice); "user:12", "site:3", "customer:5" for revenue.
    subject = models.CharField(_("subject"), max_length=40, blank=True)
    algorithm = models.CharField(_("algorithm"), max_length=24, choices=Algorithm.choices)
    version = models.PositiveIntegerField(_("version"), default=1)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.TRAINING)
    horizon_days = models.PositiveSmallIntegerField(_("horizon (days)"), default=30)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    data_until = models.DateField(_("trained on data up to"), null=True, blank=True)
    trained_at = models.DateTimeField(_("trained"), null=True, blank=True)
    # {"horizons": {"7": {"rmse", "mae", "mape", "coverage80", "coverage95", "naive": {...}}, ...}, "origins": n}
    backtest = models.JSONField(_("backtest"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("activated by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("forecast model")
        verbose_name_plural = _("forecast models")
        ordering = ["target", "subject", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "subject"], condition=models.Q(status="active"), name="forecast_model_one_active"
            ),
            models.UniqueConstraint(fields=["target", "subject", "version"], name="forecast_model_version_unique"),
        ]

    def __str__(self):
        return f"{self.target}{'/' + self.subject if self.subject else ''} v{self.version} {self.algorithm}"


class Forecast(models.Model):
    """A forecast as served: the points with their 80 % and 95 % intervals, from the model that made it (the naive
    fallback names why it was used). The latest per (target, subject) is what the API and pages show."""

    target = models.CharField(_("target"), max_length=16, choices=ForecastTarget.choices)
    subject = models.CharField(_("subject"), max_length=40, blank=True)
    model = models.ForeignKey(
        ForecastModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="forecasts",
        verbose_name=_("model"),
    )  # fmt: skip
    algorithm = models.CharField(_("algorithm"), max_length=24, choices=ForecastModel.Algorithm.choices)
    fallback_reason = models.CharField(_("fallback reason"), max_length=200, blank=True)
    origin = models.DateField(_("last observed day"))
    horizon_days = models.PositiveSmallIntegerField(_("horizon (days)"))
    # [{"date", "yhat", "lo80", "hi80", "lo95", "hi95"}, ...] in the target's unit
    points = models.JSONField(_("points"), default=list)
    generated_at = models.DateTimeField(_("generated"), auto_now_add=True)

    class Meta:
        verbose_name = _("forecast")
        verbose_name_plural = _("forecasts")
        ordering = ["-generated_at"]
        indexes = [models.Index(fields=["target", "subject", "-generated_at"], name="forecast_latest")]

    def __str__(self):
        return f"{self.target}{'/' + self.subject if self.subject else ''} from {self.origin}"


class CurtailmentPlan(models.Model):
    """A day-ahead plan (``intelligence.algorithms.optimizer``) with the inputs it was made from, so it can be read,
    re-run and audited; approving it proposes its ``CURTAIL`` commands through the control plane."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent for approval")  # its CURTAIL commands are proposed
        SUPERSEDED = "superseded", _("Superseded")
        FAILED = "failed", _("Failed")

    site = models.ForeignKey(
        "sites.Site", on_delete=models.CASCADE, related_name="curtailment_plans", verbose_name=_("site")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    starts_at = models.DateTimeField(_("first hour (UTC)"))
    hours = models.PositiveSmallIntegerField(_("hours"))
    # Everything the optimizer was given: prices, groups, hashprice per hour, constraints (plain JSON).
    inputs = models.JSONField(_("inputs"), default=dict)
    # The schedule (on-count per group per hour), power, revenue, cost, profit, and the two comparisons.
    result = models.JSONField(_("result"), default=dict, blank=True)
    # Solver status, time limit, gap, runtime.
    solver = models.JSONField(_("solver"), default=dict, blank=True)
    profit_usd = models.DecimalField(_("planned profit (USD)"), max_digits=14, decimal_places=2, null=True)
    run_all_profit_usd = models.DecimalField(
        _("profit running everything (USD)"), max_digits=14, decimal_places=2, null=True
    )
    threshold_profit_usd = models.DecimalField(
        _("profit with the price-threshold rule (USD)"), max_digits=14, decimal_places=2, null=True
    )
    commands = models.ManyToManyField(
        "commands.Command", blank=True, related_name="curtailment_plans", verbose_name=_("commands")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent for approval"), null=True, blank=True)

    class Meta:
        verbose_name = _("curtailment plan")
        verbose_name_plural = _("curtailment plans")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["site", "-created_at"], name="curtailment_plan_site")]

    def __str__(self):
        return f"#{self.pk} {self.site_id} {self.starts_at:%Y-%m-%d %H:%M} +{self.hours} h"


# ---------------------------------------------------------------------------------------------------------
# Curtailment events (issue 9, 4c), response profiles, demand-response programs and the real-time responder (4b).


class CurtailmentMode(models.TextChoices):
    KW_REDUCTION = "kw_reduction", _("Fixed kW reduction")  # least efficient first, within contract priority
    FULL_STOP = "full_stop", _("Full stop")


class CurtailmentPriority(models.TextChoices):
    NORMAL = "normal", _("Normal")
    EMERGENCY = "emergency", _("Emergency")


class DriftAction(models.TextChoices):
    RECURTAIL = "recurtail", _("Curtail it again")
    FLAG = "flag", _("Flag it")


class ScopeKind(models.TextChoices):
    SITE = "site", _("Whole site")
    ZONE = "zone", _("Zone")
    RACK = "rack", _("Rack")
    CUSTOMER = "customer", _("Hosting client")
    MINERS = "miners", _("Miner list")


class ResponseProfile(models.Model):
    """How a site answers a curtailment request, saved so an operator (or a demand-response webhook) starts an
    event with one choice: mode and size, priority, durations, the staggered restore and what to do on drift."""

    site = models.ForeignKey(
        "sites.Site", on_delete=models.CASCADE, related_name="response_profiles", verbose_name=_("site")
    )
    name = models.CharField(_("name"), max_length=80)
    mode = models.CharField(
        _("mode"), max_length=16, choices=CurtailmentMode.choices, default=CurtailmentMode.FULL_STOP
    )
    # KW_REDUCTION: the kW to shed; FULL_STOP: ignored (every miner in scope stops).
    target_kw = models.DecimalField(_("reduction (kW)"), max_digits=12, decimal_places=3, null=True, blank=True)
    priority = models.CharField(
        _("priority"), max_length=10, choices=CurtailmentPriority.choices, default=CurtailmentPriority.NORMAL
    )
    # {"kind": "site|zone|rack|customer|miners", "ids": [...]} (rack: names; miners: serials); {} = the whole site.
    scope = models.JSONField(_("scope"), default=dict, blank=True)
    min_duration_minutes = models.PositiveIntegerField(_("minimum duration (min)"), default=15)
    max_duration_minutes = models.PositiveIntegerField(_("maximum duration (min)"), default=240)
    restore_batch_size = models.PositiveIntegerField(_("restore batch (miners)"), default=50)
    restore_interval_seconds = models.PositiveIntegerField(_("restore interval (s)"), default=60)
    drift_action = models.CharField(
        _("on drift"), max_length=10, choices=DriftAction.choices, default=DriftAction.RECURTAIL
    )
    is_default = models.BooleanField(_("site default"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("response profile")
        verbose_name_plural = _("response profiles")
        ordering = ["site", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="response_profile_unique_name"),
            models.UniqueConstraint(
                fields=["site"], condition=models.Q(is_default=True), name="response_profile_one_default"
            ),
            models.CheckConstraint(
                condition=models.Q(min_duration_minutes__lte=models.F("max_duration_minutes")),
                name="response_profile_min_le_max",
            ),
        ]

    def __str__(self):
        return f"{self.site_id} {self.name}"


class DemandResponseProgram(models.Model):
    """A utility or demand-response programme allowed to start and end events on a site by a signed webhook
    (``POST /api/v1/curtailment/dr/<slug>``, HMAC-SHA256 over timestamp and body with ``secret_sealed``)."""

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="dr_programs", verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    profile = models.ForeignKey(
        ResponseProfile, on_delete=models.PROTECT, related_name="dr_programs", verbose_name=_("response profile")
    )
    secret_sealed = models.TextField(editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    last_received_at = models.DateTimeField(_("last message"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("demand-response programme")
        verbose_name_plural = _("demand-response programmes")
        ordering = ["site", "name"]

    def __str__(self):
        return f"{self.name} → {self.site_id}"


class CurtailmentEvent(models.Model):
    """One curtailment as operators run it: a scope, a mode, a window bounded by minimum and maximum durations,
    carried out by ``CURTAIL`` commands through the control plane, confirmed from telemetry, restored in batches,
    and settled: energy avoided and revenue forgone per miner (``CurtailmentEventMiner``) for billing."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")  # commands proposed, window not started (or awaiting approval)
        ACTIVE = "active", _("Active")
        RESTORING = "restoring", _("Restoring")  # ended; batches coming back
        ENDED = "ended", _("Ended")
        CANCELLED = "cancelled", _("Cancelled")  # ended before any miner was curtailed
        FAILED = "failed", _("Failed")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Operator")
        WEBHOOK = "webhook", _("Demand-response webhook")
        RESPONDER = "responder", _("Real-time responder")

    site = models.ForeignKey(
        "sites.Site", on_delete=models.CASCADE, related_name="curtailment_events", verbose_name=_("site")
    )
    profile = models.ForeignKey(
        ResponseProfile, on_delete=models.SET_NULL, null=True, blank=True, related_name="events",
        verbose_name=_("response profile"),
    )  # fmt: skip
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL)
    program = models.ForeignKey(
        DemandResponseProgram, on_delete=models.SET_NULL, null=True, blank=True, related_name="events",
        verbose_name=_("demand-response programme"),
    )  # fmt: skip
    external_id = models.CharField(_("external event id"), max_length=120, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    scope = models.JSONField(_("scope"), default=dict, blank=True)
    mode = models.CharField(_("mode"), max_length=16, choices=CurtailmentMode.choices)
    target_kw = models.DecimalField(_("reduction asked (kW)"), max_digits=12, decimal_places=3, null=True, blank=True)
    priority = models.CharField(_("priority"), max_length=10, choices=CurtailmentPriority.choices)
    starts_at = models.DateTimeField(_("start"))
    min_end_at = models.DateTimeField(_("earliest end"))
    max_end_at = models.DateTimeField(_("latest end"))
    end_requested_at = models.DateTimeField(_("end asked"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)  # last batch restored
    restore_batch_size = models.PositiveIntegerField(_("restore batch (miners)"))
    restore_interval_seconds = models.PositiveIntegerField(_("restore interval (s)"))
    drift_action = models.CharField(_("on drift"), max_length=10, choices=DriftAction.choices)
    # What the preview showed when the event was started: miners, kW, revenue forgone per hour.
    preview = models.JSONField(_("preview"), default=dict, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed by telemetry"), null=True, blank=True)
    shed_kw = models.DecimalField(_("shed (kW)"), max_digits=12, decimal_places=3, null=True, blank=True)
    energy_avoided_kwh = models.DecimalField(_("energy avoided (kWh)"), max_digits=14, decimal_places=3, default=0)
    revenue_forgone_usd = models.DecimalField(_("revenue forgone (USD)"), max_digits=14, decimal_places=2, default=0)
    commands = models.ManyToManyField(
        "commands.Command", blank=True, related_name="curtailment_events", verbose_name=_("commands")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("started by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("curtailment event")
        verbose_name_plural = _("curtailment events")
        ordering = ["-starts_at", "-pk"]
        indexes = [
            models.Index(fields=["site", "-starts_at"], name="curtailment_event_site"),
            models.Index(fields=["status"], name="curtailment_event_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "external_id"],
                condition=~models.Q(external_id=""),
                name="curtailment_event_external_once",
            ),
            models.CheckConstraint(
                condition=models.Q(min_end_at__lte=models.F("max_end_at")), name="curtailment_event_min_le_max"
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.site_id} {self.starts_at:%Y-%m-%d %H:%M} {self.mode}"


class CurtailmentEventMiner(models.Model):
    """One miner of an event: what it drew and hashed before, its restore batch, what telemetry showed, and what
    the event cost and saved on it (the billing record, per hosting client through ``customer``)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        CURTAILED = "curtailed", _("Curtailed")  # command acknowledged
        CONFIRMED = "confirmed", _("Confirmed")  # telemetry: power and hashrate both dropped
        DRIFTED = "drifted", _("Resumed during the event")
        RESTORED = "restored", _("Restored")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(CurtailmentEvent, on_delete=models.CASCADE, related_name="miners")
    miner = models.ForeignKey("miners.Miner", on_delete=models.SET_NULL, null=True, related_name="+")
    serial = models.CharField(_("serial number"), max_length=64)
    customer = models.ForeignKey("sites.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    batch = models.PositiveIntegerField(_("restore batch"), default=0)
    kw_before = models.DecimalField(_("power before (kW)"), max_digits=10, decimal_places=3)
    ths_before = models.DecimalField(_("hashrate before (TH/s)"), max_digits=12, decimal_places=3)
    power_target_w = models.PositiveIntegerField(_("power target (W)"), null=True, blank=True)  # null: stop
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    curtailed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    drift_count = models.PositiveSmallIntegerField(default=0)
    energy_avoided_kwh = models.DecimalField(_("energy avoided (kWh)"), max_digits=12, decimal_places=3, default=0)
    revenue_forgone_usd = models.DecimalField(_("revenue forgone (USD)"), max_digits=12, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("curtailed miner")
        verbose_name_plural = _("curtailed miners")
        ordering = ["event", "batch", "serial"]
        constraints = [models.UniqueConstraint(fields=["event", "serial"], name="curtailment_event_miner_once")]
        indexes = [models.Index(fields=["customer", "event"], name="curtailment_miner_customer")]

    def __str__(self):
        return f"{self.serial} in event {self.event_id}"


class RealtimeResponder(models.Model):
    """A site's real-time responder (``intelligence.responder``): on each new real-time price interval it
    curtails or restores groups whose breakeven the price crossed, within the plan's constraints."""

    site = models.OneToOneField(
        "sites.Site", on_delete=models.CASCADE, related_name="realtime_responder", verbose_name=_("site")
    )
    enabled = models.BooleanField(_("enabled"), default=False)
    hysteresis_usd_per_mwh = models.DecimalField(_("hysteresis (USD/MWh)"), max_digits=8, decimal_places=2, default=0)
    min_on_minutes = models.PositiveIntegerField(_("minimum on (min)"), default=15)
    min_off_minutes = models.PositiveIntegerField(_("minimum off (min)"), default=15)
    ramp_kw_per_hour = models.DecimalField(
        _("ramp limit (kW/h)"), max_digits=12, decimal_places=3, null=True, blank=True
    )
    command_mode = models.CharField(_("command mode"), max_length=8, default="hard")  # commands.risk.CURTAIL_MODES
    last_interval_start = models.DateTimeField(_("last price interval handled"), null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("changed by"),
    )  # fmt: skip
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("real-time responder")
        verbose_name_plural = _("real-time responders")

    def __str__(self):
        return f"responder {self.site_id} ({'on' if self.enabled else 'off'})"


class ResponderDecision(models.Model):
    """What the responder decided for one real-time price interval (one row per site and interval: a re-run of
    the job for the same interval changes nothing)."""

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site"))
    interval_start = models.DateTimeField(_("interval start (UTC)"))
    price_usd_per_mwh = models.DecimalField(_("price (USD/MWh)"), max_digits=10, decimal_places=2)
    # The price the decision used (the nowcast of this interval), and what it was made of.
    decided_price_usd_per_mwh = models.DecimalField(_("price used (USD/MWh)"), max_digits=10, decimal_places=2)
    # {"actions": [{"group", "from_on", "to_on", "reason", "forced"}], "held": [...], "power_kw", "cap_kw"}
    decision = models.JSONField(_("decision"), default=dict)
    event = models.ForeignKey(
        CurtailmentEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("event"),
    )  # fmt: skip
    commands = models.ManyToManyField("commands.Command", blank=True, related_name="+", verbose_name=_("commands"))
    created_at = models.DateTimeField(_("decided"), auto_now_add=True)

    class Meta:
        verbose_name = _("responder decision")
        verbose_name_plural = _("responder decisions")
        ordering = ["-interval_start"]
        constraints = [models.UniqueConstraint(fields=["site", "interval_start"], name="responder_decision_once")]

    def __str__(self):
        return f"{self.site_id} {self.interval_start:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------------------
# Per-asset forecasting and health (issue 9, part 6).


class UploadedSeries(models.Model):
    """A time series uploaded for training (``POST /api/v1/training-jobs`` with a CSV): its points are kept so the
    model trained on it can be re-trained and audited. Forecast models trained on it have subject ``upload:<id>``."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=120)
    unit = models.CharField(_("unit"), max_length=24, blank=True)
    interval_minutes = models.PositiveIntegerField(_("interval (min)"))
    # [[iso timestamp, value], ...] sorted by time
    points = models.JSONField(_("points"), default=list)
    rows = models.PositiveIntegerField(_("rows"))
    sha256 = models.CharField(_("file SHA-256"), max_length=64)
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)

    class Meta:
        verbose_name = _("uploaded series")
        verbose_name_plural = _("uploaded series")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.rows} rows)"


class MinerHealth(models.Model):
    """The latest health prediction for a miner (``health_predict``): the chance it fails in the coming days,
    its tier and the reasons in words, from its daily and 5-minute history."""

    class Tier(models.TextChoices):
        OK = "ok", _("Healthy")
        WATCH = "watch", _("Watch")
        AT_RISK = "at_risk", _("At risk")

    miner = models.OneToOneField(
        "miners.Miner", on_delete=models.CASCADE, related_name="health", verbose_name=_("miner")
    )
    score = models.FloatField(_("failure risk (0–1)"))
    tier = models.CharField(_("tier"), max_length=8, choices=Tier.choices)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    features = models.JSONField(_("features"), default=dict, blank=True)
    computed_at = models.DateTimeField(_("computed"))

    class Meta:
        verbose_name = _("miner health")
        verbose_name_plural = _("miner health")
        indexes = [models.Index(fields=["tier", "-score"], name="miner_health_tier")]

    def __str__(self):
        return f"{self.miner_id}: {self.tier} ({self.score:.2f})"
