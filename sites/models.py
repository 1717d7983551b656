"""Sites, their zones, and hosting clients (customers), with guardian grant tables.

Grants live only here, at the site and customer level, in direct-foreign-key tables (guardian's
performance guide): miners and everything below them are reached through ``site_id``/``customer_id``.
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from hashinsight.core.storage import get_private_storage


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known IANA time zone."), params={"value": value})


class Site(models.Model):
    """A mining facility. Times are stored in UTC and shown in the site's ``timezone``."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_timezone])
    capacity_kw = models.DecimalField(
        _("capacity (kW)"), max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    # What the operator pays for energy at this site; the fleet economics use it for power cost.
    # 0.05 USD/kWh is a typical industrial mining rate, a placeholder until the operator sets theirs.
    power_price_usd_per_kwh = models.DecimalField(
        _("power price (USD/kWh)"),
        max_digits=8,
        decimal_places=5,
        default=Decimal("0.05"),
        validators=[MinValueValidator(0)],
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(capacity_kw__gte=0), name="site_capacity_kw_gte_0"),
            models.CheckConstraint(condition=models.Q(power_price_usd_per_kwh__gte=0), name="site_power_price_gte_0"),
        ]

    def __str__(self):
        return self.name


class ZoneKind(models.TextChoices):
    ROOM = "room", _("Room")
    CONTAINER = "container", _("Container")
    POWER = "power", _("Power block")
    BUILDING = "building", _("Building")


class EnergySource(models.TextChoices):
    HYDRO = "hydro", pgettext_lazy("energy source", "Hydro")
    SOLAR = "solar", _("Solar")
    WIND = "wind", _("Wind")
    GRID = "grid", _("Grid")


class Zone(models.Model):
    """A part of a site with its own power budget: a room, a container, a power block or a building."""

    Kind = ZoneKind
    EnergySource = EnergySource

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="zones", verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("type"), max_length=16, choices=ZoneKind.choices, default=ZoneKind.ROOM)
    capacity_kw = models.DecimalField(
        _("capacity (kW)"), max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    energy_source = models.CharField(
        _("energy source"), max_length=16, choices=EnergySource.choices, default=EnergySource.GRID
    )

    class Meta:
        verbose_name = _("zone")
        verbose_name_plural = _("zones")
        ordering = ["site_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="zone_unique_name_per_site"),
            models.CheckConstraint(condition=models.Q(capacity_kw__gte=0), name="zone_capacity_kw_gte_0"),
            models.CheckConstraint(condition=models.Q(kind__in=ZoneKind.values), name="zone_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(energy_source__in=EnergySource.values), name="zone_energy_source_valid"
            ),
        ]

    def __str__(self):
        return f"{self.site} / {self.name}"


class Customer(models.Model):
    """A hosting client: a company whose miners are hosted on our sites under a contract.

    Its contact users are the users granted ``view_customer`` on it (see ``sites.services``)."""

    company = models.CharField(_("company"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    email = models.EmailField(_("billing e-mail"), blank=True)
    hosting_rate_usd_per_kwh = models.DecimalField(
        _("hosting rate (USD/kWh)"), max_digits=8, decimal_places=5, validators=[MinValueValidator(0)]
    )
    contract_start = models.DateField(_("contract start"))
    contract_end = models.DateField(_("contract end"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("hosting client")
        verbose_name_plural = _("hosting clients")
        ordering = ["company"]
        constraints = [
            models.CheckConstraint(condition=models.Q(hosting_rate_usd_per_kwh__gte=0), name="customer_rate_gte_0"),
            models.CheckConstraint(
                condition=models.Q(contract_end__isnull=True) | models.Q(contract_end__gte=models.F("contract_start")),
                name="customer_contract_end_after_start",
            ),
        ]

    def __str__(self):
        return self.company

    def clean(self):
        if self.contract_end and self.contract_start and self.contract_end < self.contract_start:
            raise ValidationError({"contract_end": _("The contract cannot end before it starts.")})


CURRENCIES = [("USD", "USD"), ("USDT", "USDT"), ("CNY", "CNY"), ("EUR", "EUR")]


class Deal(models.Model):
    """A sales lead or deal (module CRM): a prospect or an existing hosting client, its stage, the load it would
    bring and its value, owned by one salesperson. A lead is a deal at stage ``lead``."""

    class Stage(models.TextChoices):
        LEAD = "lead", _("Lead")
        QUALIFIED = "qualified", _("Qualified")
        PROPOSAL = "proposal", _("Proposal sent")
        NEGOTIATION = "negotiation", _("Negotiation")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("hosting client"),
    )
    prospect_company = models.CharField(_("prospect company"), max_length=200, blank=True)
    contact_name = models.CharField(_("contact"), max_length=120, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="deals", verbose_name=_("site")
    )
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, default=Stage.LEAD)
    expected_miners = models.PositiveIntegerField(_("expected miners"), default=0)
    expected_mw = models.DecimalField(
        _("expected load (MW)"), max_digits=8, decimal_places=3, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    value = models.DecimalField(
        _("value"), max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    owner = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="deals", verbose_name=_("sales owner")
    )
    expected_close = models.DateField(_("expected close"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(customer__isnull=True, prospect_company=""), name="deal_names_a_company"
            ),
            models.CheckConstraint(condition=models.Q(value__gte=0), name="deal_value_gte_0"),
        ]

    def __str__(self):
        return self.title


class TariffKind(models.TextChoices):
    ALL_IN_KWH = "all_in_kwh", _("All-in per kWh")
    KWH_PLUS_FIXED = "kwh_plus_fixed", _("Per kWh plus a monthly fee per miner")
    REVENUE_SHARE = "revenue_share", _("Revenue share")


class EnergyBasis(models.TextChoices):
    METERED = "metered", _("Metered (telemetry power)")
    COMPUTED = "computed", _("Computed (nominal power x hours up)")


class CurtailmentCreditKind(models.TextChoices):
    NONE = "none", _("No credit")
    RATE = "rate", _("Credit rate per miner-hour")
    PASS_THROUGH = "pass_through", _("Revenue pass-through")


class HostingContract(models.Model):
    """A hosting client's contract at one site (module CRM): term, deposit, tariff, SLA and curtailment terms, the
    miners it covers (none listed: every miner of the client at the site) and the signed document. Invoices
    (``hashinsight.billing``) are computed from it; ``number`` is what invoices and statements quote."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")
        TERMINATED = "terminated", _("Terminated")

    number = models.CharField(_("contract number"), max_length=40, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="contracts", verbose_name=_("hosting client")
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="contracts", verbose_name=_("site"))
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="contracts", verbose_name=_("deal")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.DRAFT)
    start_date = models.DateField(_("start"))
    end_date = models.DateField(_("end"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=4, choices=CURRENCIES, default="USD")
    deposit = models.DecimalField(
        _("deposit"), max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    payment_terms_days = models.PositiveSmallIntegerField(_("payment terms (days)"), default=15)
    # Tariff: which of the three, and its parameters (the ones the kind does not use stay at 0).
    tariff_kind = models.CharField(
        _("tariff"), max_length=16, choices=TariffKind.choices, default=TariffKind.ALL_IN_KWH
    )
    energy_basis = models.CharField(
        _("energy basis"), max_length=10, choices=EnergyBasis.choices, default=EnergyBasis.METERED
    )
    rate_per_kwh = models.DecimalField(
        _("rate (per kWh)"), max_digits=10, decimal_places=5, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    fixed_fee_per_miner_month = models.DecimalField(
        _("fixed fee (per miner per month)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0)],
    )
    revenue_share_pct = models.DecimalField(
        _("operator's revenue share (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0)],
    )
    # SLA: the monthly uptime target and the credit schedule, a list of {"below_pct": "97", "credit_pct": "5"}:
    # the credit of the first (highest) threshold the operator-caused uptime falls below, in % of the month's charge.
    sla_uptime_target_pct = models.DecimalField(
        _("SLA uptime target (%)"), max_digits=5, decimal_places=2, default=Decimal("97.00")
    )
    sla_credit_schedule = models.JSONField(_("SLA credit schedule"), default=list, blank=True)
    # Curtailment terms: operator curtailment up to the allowance (hours per miner per month) is excluded
    # downtime with no credit; beyond it, downtime is operator-caused and credited as the kind says.
    curtailment_allowance_hours = models.DecimalField(
        _("curtailment allowance (hours per miner per month)"), max_digits=7, decimal_places=2, default=Decimal("0")
    )
    curtailment_credit_kind = models.CharField(
        _("curtailment credit"),
        max_length=12,
        choices=CurtailmentCreditKind.choices,
        default=CurtailmentCreditKind.NONE,
    )
    curtailment_credit_per_miner_hour = models.DecimalField(
        _("curtailment credit (per miner-hour)"), max_digits=10, decimal_places=5, default=Decimal("0")
    )
    curtailment_priority = models.PositiveSmallIntegerField(
        _("curtailment priority"), default=5, help_text=_("Lower numbers are curtailed first.")
    )
    firm = models.BooleanField(_("firm load (never curtailed by a normal event)"), default=False)
    miners = models.ManyToManyField(
        "miners.Miner", blank=True, related_name="hosting_contracts", verbose_name=_("miners covered")
    )
    sales_owner = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sold_contracts",
        verbose_name=_("sales owner"),
    )
    commission_pct = models.DecimalField(
        # xgettext:no-python-format
        _("sales commission (% of each paid invoice)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
    )
    # Private storage only (hashinsight.core.storage.private_storage); downloaded through a permission-checked view.
    signed_document = models.FileField(
        _("signed document"), upload_to="contracts/%Y/", storage=get_private_storage, blank=True, max_length=200
    )
    signed_document_sha256 = models.CharField(_("signed document SHA-256"), max_length=64, blank=True)
    signed_at = models.DateField(_("signed"), null=True, blank=True)
    # When it went from draft to active; a contract terminated with none never ran (billing skips it).
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True, editable=False)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("hosting contract")
        verbose_name_plural = _("hosting contracts")
        ordering = ["customer_id", "-start_date"]
        indexes = [models.Index(fields=["customer", "status"], name="contract_customer_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="contract_end_after_start",
            ),
            models.CheckConstraint(condition=models.Q(tariff_kind__in=TariffKind.values), name="contract_tariff_valid"),
            models.CheckConstraint(
                condition=models.Q(sla_uptime_target_pct__gte=0, sla_uptime_target_pct__lte=100),
                name="contract_sla_target_pct",
            ),
            models.CheckConstraint(
                condition=models.Q(revenue_share_pct__gte=0, revenue_share_pct__lte=100),
                name="contract_revenue_share_pct",
            ),
            models.CheckConstraint(
                condition=models.Q(commission_pct__gte=0, commission_pct__lte=100), name="contract_commission_pct"
            ),
        ]

    def __str__(self):
        return f"{self.number} ({self.customer})"


class SiteUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Site, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "permission"], name="site_uop_user_perm")]


class SiteGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Site, on_delete=models.CASCADE)


class CustomerUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "permission"], name="customer_uop_user_perm")]


class CustomerGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)


# Not a model field: kept here so every module names the grants the same way.
SITE_VIEW = "sites.view_site"
SITE_MANAGE = "sites.change_site"
CUSTOMER_VIEW = "sites.view_customer"
