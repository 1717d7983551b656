"""Commands to miners: a proposal, its frozen targets, its risk, its approvals and its life (``commands.state``).

Writes go through ``commands.services`` only (one transaction, outbox event and audit row per change)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from commands import risk


class CommandStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    PENDING_APPROVAL = "PENDING_APPROVAL", _("Pending approval")
    APPROVED = "APPROVED", _("Approved")
    DISPATCHED = "DISPATCHED", _("Dispatched")
    ACKED = "ACKED", _("Acknowledged")
    COMPLETED = "COMPLETED", _("Completed")
    PARTIAL = "PARTIAL", _("Partially completed")
    DENIED = "DENIED", _("Denied")
    CANCELLED = "CANCELLED", _("Cancelled")
    FAILED = "FAILED", _("Failed")
    TIMEOUT = "TIMEOUT", _("Timed out")
    ROLLED_BACK = "ROLLED_BACK", _("Rolled back")


# A command in one of these states still holds its dedupe key (re-proposing returns it).
LIVE_STATUSES = (
    CommandStatus.PENDING,
    CommandStatus.PENDING_APPROVAL,
    CommandStatus.APPROVED,
    CommandStatus.DISPATCHED,
    CommandStatus.ACKED,
)


class Verification(models.TextChoices):
    """Whether telemetry showed a target's intended effect (hashing stopped, power dropped, fan changed, pool
    switched) within its type's window after the acknowledgement."""

    PENDING = "pending", _("Waiting for telemetry")
    VERIFIED = "verified", _("Verified")
    NOT_SEEN = "not_seen", _("Not seen")
    PARTIAL = "partial", _("Partly verified")  # command level only: some targets verified, some not
    NOT_APPLICABLE = "n/a", _("Not applicable")  # a failed target, or an effect telemetry cannot show


class CommandType(models.TextChoices):
    MINER_RESTART = risk.MINER_RESTART, _("Restart miner")
    HASHING_DISABLE = risk.HASHING_DISABLE, _("Stop hashing")
    HASHING_ENABLE = risk.HASHING_ENABLE, _("Start hashing")
    POOL_SET = risk.POOL_SET, _("Set pool")
    SET_FAN = risk.SET_FAN, _("Set fan speed")
    POWER_MODE = risk.POWER_MODE, _("Power mode")
    CURTAIL = risk.CURTAIL, _("Curtail")


class RiskTier(models.TextChoices):
    LOW = risk.LOW, _("Low")
    MEDIUM = risk.MEDIUM, _("Medium")
    HIGH = risk.HIGH, _("High")
    CRITICAL = risk.CRITICAL, _("Critical")


class ProposerKind(models.TextChoices):
    USER = "user", _("User")
    AI = "ai", _("AI")
    SYSTEM = "system", _("System rule")


class Command(models.Model):
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="commands", verbose_name=_("site"))
    command_type = models.CharField(_("type"), max_length=24, choices=CommandType.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=CommandStatus.choices, default=CommandStatus.PENDING)
    status_reason = models.CharField(_("reason"), max_length=500, blank=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=128, blank=True)
    proposer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="proposed_commands",
        verbose_name=_("proposer"),
    )
    proposer_kind = models.CharField(
        _("proposed by"), max_length=8, choices=ProposerKind.choices, default=ProposerKind.USER
    )
    ai_confidence = models.DecimalField(_("AI confidence"), max_digits=5, decimal_places=4, null=True, blank=True)
    risk_score = models.DecimalField(_("risk score"), max_digits=5, decimal_places=4)
    risk_tier = models.CharField(_("risk tier"), max_length=8, choices=RiskTier.choices)
    risk_breakdown = models.JSONField(_("risk breakdown"), default=dict)
    approvals_required = models.PositiveSmallIntegerField(_("approvals required"), default=0)
    owner_admin_only = models.BooleanField(_("owner or admin approval only"), default=False)
    priority = models.PositiveSmallIntegerField(_("priority"), default=5)
    expires_at = models.DateTimeField(_("expires"))
    # Not sent to the edge before this moment (a CURTAIL whose window starts later); null: at once.
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    dispatched_to = models.ForeignKey(
        "telemetry.EdgeDevice",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="commands_taken",
        verbose_name=_("dispatched to"),
    )
    # The effect seen in telemetry, summed over the targets (commands.verification): "" until acknowledged.
    verification = models.CharField(
        _("verification"), max_length=12, choices=Verification.choices, blank=True, default=""
    )
    rollback_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rollbacks",
        verbose_name=_("rollback of"),
    )

    class Meta:
        verbose_name = _("command")
        verbose_name_plural = _("commands")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["site", "status"], name="command_site_status"),
            models.Index(fields=["status", "expires_at"], name="command_status_expiry"),
            models.Index(fields=["site", "command_type", "status"], name="command_site_type_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "dedupe_key"],
                condition=models.Q(status__in=LIVE_STATUSES) & ~models.Q(dedupe_key=""),
                name="command_live_dedupe_unique",
            ),
            models.CheckConstraint(condition=models.Q(status__in=CommandStatus.values), name="command_status_valid"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.command_type} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class TargetResult(models.TextChoices):
    PENDING = "pending", _("Pending")
    OK = "ok", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class CommandTarget(models.Model):
    """One miner of a command, frozen at proposal: who it was (serial kept even if the miner goes), what
    telemetry said before (for rollback and verification) and what the edge reported."""

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="targets", verbose_name=_("command"))
    miner = models.ForeignKey(
        "miners.Miner",
        on_delete=models.SET_NULL,
        null=True,
        related_name="command_targets",
        verbose_name=_("miner"),
    )
    serial = models.CharField(_("serial number"), max_length=64)
    before_state = models.JSONField(_("state before"), default=dict, blank=True)
    result_status = models.CharField(
        _("result"), max_length=8, choices=TargetResult.choices, default=TargetResult.PENDING
    )
    result_message = models.CharField(_("result message"), max_length=500, blank=True)
    acked_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    # CURTAIL only: this target's part of the plan (commands.risk.curtail_plan), frozen at proposal:
    # {"action": "power_target" | "stop", "power_w": int | None}. Empty for every other type.
    action = models.JSONField(_("action"), default=dict, blank=True)
    verification = models.CharField(
        _("verification"), max_length=12, choices=Verification.choices, blank=True, default=""
    )
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    verification_detail = models.CharField(_("verification detail"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("command target")
        verbose_name_plural = _("command targets")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["command", "miner"], name="command_target_unique")]

    def __str__(self):
        return self.serial


class Decision(models.TextChoices):
    APPROVE = "approve", _("Approve")
    DENY = "deny", _("Deny")


class Approval(models.Model):
    """A decision on a command. ``approver`` is null for the system's auto-approval."""

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="approvals", verbose_name=_("command"))
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="command_approvals",
        verbose_name=_("approver"),
    )
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("approval")
        verbose_name_plural = _("approvals")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["command", "approver"], name="approval_once_per_approver")]

    def __str__(self):
        return f"{self.decision} by {self.approver or 'system'}"


class SiteApprovalPolicy(models.Model):
    """A site's own rules: per-type minimum tiers (tighten only), LOW auto-approval rules and safety limits.

    ``min_tiers``: ``{"POOL_SET": "CRITICAL", "*": "MEDIUM"}``. ``auto_approve_rules``: a list of
    ``{"name", "action_types", "max_targets", "max_kw", "min_confidence", "windows": [{"start": "22:00",
    "end": "06:00"}], "tz"}`` (tz defaults to the site's time zone)."""

    site = models.OneToOneField(
        "sites.Site", on_delete=models.CASCADE, related_name="approval_policy", verbose_name=_("site")
    )
    min_tiers = models.JSONField(_("minimum tier per type"), default=dict, blank=True)
    auto_approve_rules = models.JSONField(_("auto-approval rules"), default=list, blank=True)
    fan_floor_pct = models.PositiveSmallIntegerField(_("fan floor (%)"), default=30)
    chip_limit_c = models.FloatField(_("chip temperature limit (°C)"), default=85.0)
    contracted_min_kw = models.DecimalField(
        _("contracted minimum (kW)"), max_digits=12, decimal_places=3, null=True, blank=True
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("site approval policy")
        verbose_name_plural = _("site approval policies")

    def __str__(self):
        return str(self.site)
