"""The ASIC model catalog, miner assets (with encrypted network identity) and user portfolios."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from hashinsight.security.crypto import open_json, seal_json

# The catalog's bounds, in one place: the field validators (admin forms, API serializers), the CHECK
# constraints (the database) and ``MinerModel.clean`` all read these. 2,000 TH/s and 20 kW per unit are
# about twice today's largest hydro miners; the efficiency cap (about ten times the least efficient ASIC ever
# sold) keeps ``efficiency_j_per_th`` inside the 8 digits the API prints, so one bad row cannot turn
# every catalog read into an error.
HASHRATE_THS_MIN, HASHRATE_THS_MAX = Decimal("0.01"), Decimal("2000")
POWER_W_MIN, POWER_W_MAX = Decimal("1"), Decimal("20000")
EFFICIENCY_J_PER_TH_MAX = Decimal("100000")


class MinerModel(models.Model):
    """A make and model of SHA-256 ASIC with its nominal hashrate and power at the wall.

    Several rows may share a name: they are the factory bins (for example S19j Pro 90/96/100/104 TH/s).
    Seeded from miners/data/asic_models.csv (see miners/data/PROVENANCE.md)."""

    class Cooling(models.TextChoices):
        AIR = "air", _("Air")
        HYDRO = "hydro", _("Hydro")
        IMMERSION = "immersion", _("Immersion")

    vendor = models.CharField(_("vendor"), max_length=80)
    name = models.CharField(_("model"), max_length=120)
    code = models.SlugField(_("code"), max_length=120, unique=True)
    hashrate_ths = models.DecimalField(
        _("nominal TH/s"), max_digits=10, decimal_places=2,
        validators=[MinValueValidator(HASHRATE_THS_MIN), MaxValueValidator(HASHRATE_THS_MAX)],
    )  # fmt: skip
    power_w = models.DecimalField(
        _("nominal W"), max_digits=10, decimal_places=1,
        validators=[MinValueValidator(POWER_W_MIN), MaxValueValidator(POWER_W_MAX)],
    )  # fmt: skip
    cooling = models.CharField(_("cooling"), max_length=16, choices=Cooling.choices, default=Cooling.AIR)
    release_date = models.DateField(_("release date"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("miner model")
        verbose_name_plural = _("miner models")
        ordering = ["vendor", "name", "-hashrate_ths"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "name", "hashrate_ths"], name="minermodel_unique_bin"),
            models.CheckConstraint(
                condition=models.Q(hashrate_ths__gte=HASHRATE_THS_MIN, hashrate_ths__lte=HASHRATE_THS_MAX),
                name="minermodel_hashrate_range",
            ),
            models.CheckConstraint(
                condition=models.Q(power_w__gte=POWER_W_MIN, power_w__lte=POWER_W_MAX), name="minermodel_power_range"
            ),
            models.CheckConstraint(
                condition=models.Q(power_w__lte=models.F("hashrate_ths") * EFFICIENCY_J_PER_TH_MAX),
                name="minermodel_efficiency_max",
            ),
        ]

    def __str__(self):
        return f"{self.name} {self.hashrate_ths.normalize():f}T"

    def clean(self):
        check_efficiency(hashrate_ths=self.hashrate_ths, power_w=self.power_w)

    @property
    def efficiency_j_per_th(self) -> Decimal:
        return (self.power_w / self.hashrate_ths).quantize(Decimal("0.01"))


def check_efficiency(*, hashrate_ths, power_w) -> None:
    """Refuse a power that is absurd for the hashrate (each may be within its own bounds)."""
    if hashrate_ths and power_w and hashrate_ths > 0 and power_w > hashrate_ths * EFFICIENCY_J_PER_TH_MAX:
        raise ValidationError(
            {"power_w": _("At most %(max)s J/TH: check the units (W, TH/s).") % {"max": f"{EFFICIENCY_J_PER_TH_MAX:,}"}}
        )


class MinerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    MAINTENANCE = "maintenance", _("Maintenance")
    OFFLINE = "offline", _("Offline")
    RETIRED = "retired", _("Retired")


class Miner(models.Model):
    """One ASIC standing in a zone of a site, optionally owned by a hosting client.

    Its network identity (IP, MAC, login) is sealed with envelope encryption in ``identity_sealed``
    and only ever opened for users who may manage its site."""

    Status = MinerStatus

    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="miners", verbose_name=_("site"))
    zone = models.ForeignKey("sites.Zone", on_delete=models.PROTECT, related_name="miners", verbose_name=_("zone"))
    customer = models.ForeignKey(
        "sites.Customer",
        on_delete=models.PROTECT,
        related_name="miners",
        null=True,
        blank=True,
        verbose_name=_("hosting client"),
    )
    model = models.ForeignKey(MinerModel, on_delete=models.PROTECT, related_name="miners", verbose_name=_("model"))
    serial = models.CharField(_("serial number"), max_length=64, unique=True)
    asset_tag = models.CharField(_("asset tag"), max_length=64, blank=True)
    rack = models.CharField(_("rack"), max_length=32, blank=True)
    shelf = models.PositiveSmallIntegerField(_("shelf"), null=True, blank=True)
    slot = models.PositiveSmallIntegerField(_("slot"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=MinerStatus.choices, default=MinerStatus.ACTIVE)
    firmware = models.CharField(_("firmware"), max_length=80, blank=True)
    pool_url = models.CharField(_("pool URL"), max_length=255, blank=True)
    pool_worker = models.CharField(_("pool worker"), max_length=120, blank=True)
    identity_sealed = models.TextField(_("sealed network identity"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("miner")
        verbose_name_plural = _("miners")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["site", "id"], name="miner_site_id"),
            models.Index(fields=["customer", "id"], name="miner_customer_id"),
            models.Index(fields=["site", "status"], name="miner_site_status"),
            models.Index(fields=["zone"], name="miner_zone"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=MinerStatus.values), name="miner_status_valid"),
            models.UniqueConstraint(
                fields=["site", "rack", "shelf", "slot"],
                condition=~models.Q(rack="") & models.Q(shelf__isnull=False, slot__isnull=False),
                name="miner_unique_position_per_site",
            ),
            models.UniqueConstraint(
                fields=["asset_tag"], condition=~models.Q(asset_tag=""), name="miner_unique_asset_tag"
            ),
        ]

    def __str__(self):
        return self.serial

    def clean(self):
        if self.zone_id and self.site_id and self.zone.site_id != self.site_id:
            raise ValidationError({"zone": _("The zone does not belong to the miner's site.")})

    # The serial is bound into the ciphertext so a sealed value copied onto another miner won't open.
    def _aad(self) -> bytes:
        return f"miner:{self.serial}".encode()

    def set_identity(self, *, ip: str = "", mac: str = "", username: str = "", password: str = "") -> None:
        values = {"ip": ip, "mac": mac, "username": username, "password": password}
        self.identity_sealed = seal_json(values, aad=self._aad()) if any(values.values()) else ""

    def get_identity(self) -> dict:
        if not self.identity_sealed:
            return {"ip": "", "mac": "", "username": "", "password": ""}
        return open_json(self.identity_sealed, aad=self._aad())


class PortfolioEntry(models.Model):
    """The seed's ``user_miners``: miners an app customer owns outside our sites, by model and count."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolio", verbose_name=_("user")
    )
    model = models.ForeignKey(MinerModel, on_delete=models.PROTECT, related_name="+", verbose_name=_("model"))
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    power_price_usd_per_kwh = models.DecimalField(
        _("power price (USD/kWh)"), max_digits=8, decimal_places=5, validators=[MinValueValidator(0)]
    )
    label = models.CharField(_("label"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("portfolio entry")
        verbose_name_plural = _("portfolio entries")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="portfolio_quantity_gte_1"),
            models.CheckConstraint(condition=models.Q(power_price_usd_per_kwh__gte=0), name="portfolio_price_gte_0"),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.model}"
