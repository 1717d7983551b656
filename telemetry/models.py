"""Telemetry: alerts now; edge devices, samples and rollups arrive with the telemetry issue."""

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
