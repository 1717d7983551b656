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
