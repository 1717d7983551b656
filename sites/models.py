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
