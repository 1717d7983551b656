"""The calculator's form: every field has a default, so the page computes on first load and a shared
link that names only some figures (``?quantity=10``) fills in the rest."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.http import QueryDict
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from intelligence.market import latest_snapshot
from intelligence.profitability import DEFAULT_POOL_FEE_PCT, TWO_32, ProfitInputs
from miners.models import MinerModel

# Preselected model: Bitmain's Antminer S21 (200 TH/s, 3,500 W), the most widely deployed current-generation
# air-cooled miner. Chosen by its catalog code, so the choice is the same on every install.
DEFAULT_MODEL_CODE = "antminer-s21-200t"
DEFAULT_ELECTRICITY_USD_PER_KWH = Decimal("0.05")
# A block every 600 s on average: the network's hashrate is difficulty × 2³² hashes per 600 s.
BLOCK_INTERVAL_S = 600
HASHES_PER_TH = Decimal(10) ** 12
TH_PER_EH = Decimal(10) ** 6


def default_model() -> MinerModel | None:
    """The preselected model; if the catalog lacks it, its first row (the catalog's own order)."""
    return MinerModel.objects.filter(code=DEFAULT_MODEL_CODE).first() or MinerModel.objects.first()


def network_hashrate_ths(difficulty: Decimal) -> Decimal:
    return difficulty * TWO_32 / BLOCK_INTERVAL_S / HASHES_PER_TH


def _eh(ths: Decimal) -> str:
    return number_format((ths / TH_PER_EH).quantize(Decimal("0.1")), decimal_pos=1, force_grouping=True)


@dataclass(frozen=True)
class Override:
    """A figure typed in over the chosen model's nominal one, shown as a badge next to the result."""

    label: str
    value: Decimal
    nominal: Decimal
    unit: str

    @staticmethod
    def _shown(number: Decimal) -> str:
        # As typed, without trailing zeros ("210.5", "3,300"), grouped by the active language's format.
        return number_format(Decimal(f"{number.normalize():f}"), force_grouping=True)

    @property
    def shown_value(self) -> str:
        return self._shown(self.value)

    @property
    def shown_nominal(self) -> str:
        return self._shown(self.nominal)


class CalculatorForm(forms.Form):
    model = forms.ModelChoiceField(
        queryset=MinerModel.objects.all(),
        required=False,
        label=_("Miner model"),
        empty_label=_("Custom (enter TH/s and W)"),
    )
    hashrate_ths = forms.DecimalField(
        label=_("Hashrate per miner (TH/s)"), min_value=Decimal("0.01"), required=False, max_digits=12, decimal_places=3
    )
    power_w = forms.DecimalField(
        label=_("Power per miner (W)"), min_value=Decimal(0), required=False, max_digits=12, decimal_places=1
    )
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1_000_000)
    electricity_usd_per_kwh = forms.DecimalField(
        label=_("Electricity price (USD/kWh)"), min_value=Decimal(0), max_digits=8, decimal_places=5
    )
    btc_price_usd = forms.DecimalField(
        label=_("BTC price (USD)"), min_value=Decimal("0.01"), max_digits=14, decimal_places=2
    )
    difficulty = forms.DecimalField(
        label=_("Network difficulty"), min_value=Decimal(1), max_digits=30, decimal_places=0
    )
    block_subsidy_btc = forms.DecimalField(
        label=_("Block subsidy (BTC)"), min_value=Decimal(0), max_digits=12, decimal_places=8
    )
    fees_btc_per_block = forms.DecimalField(
        label=_("Average fees per block (BTC)"), min_value=Decimal(0), max_digits=12, decimal_places=8
    )
    pool_fee_pct = forms.DecimalField(
        label=_("Pool fee (%)"), min_value=Decimal(0), max_value=Decimal("99.99"), max_digits=5, decimal_places=2
    )

    # Typed over the model's nominal figure, or required when no model is chosen.
    PER_MINER = {
        "hashrate_ths": ("TH/s", _("Pick a model or enter the hashrate.")),
        "power_w": ("W", _("Pick a model or enter the power draw.")),
    }

    @classmethod
    def defaults(cls) -> dict[str, str]:
        """Today's market figures (the latest day of the shipped history) and the preselected model."""
        market = latest_snapshot()
        model = default_model()
        return {
            "model": str(model.pk) if model else "",
            "hashrate_ths": "",
            "power_w": "",
            "quantity": "1",
            "electricity_usd_per_kwh": str(DEFAULT_ELECTRICITY_USD_PER_KWH),
            "btc_price_usd": str(market.btc_price_usd),
            "difficulty": str(market.difficulty),
            "block_subsidy_btc": str(market.block_subsidy_btc),
            "fees_btc_per_block": str(market.fees_btc_per_block),
            "pool_fee_pct": str(DEFAULT_POOL_FEE_PCT),
        }

    @classmethod
    def from_query(cls, query: QueryDict) -> CalculatorForm:
        """A form bound to the defaults overlaid with what the query names (an empty value counts as
        not named). A link with a hashrate and a power but no model is a custom miner, as links were
        before models; with only one of them, it overrides the preselected model's figure."""
        data = cls.defaults()
        if "model" not in query and query.get("hashrate_ths") and query.get("power_w"):
            data["model"] = ""
        for name in cls.base_fields:
            value = query.get(name)
            if value is not None and (value.strip() or name in ("model", *cls.PER_MINER)):
                data[name] = value.strip()
        return cls(data)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.overrides: list[Override] = []

    def clean(self):
        data = super().clean()
        if "model" in self.errors:
            return data  # its own error says it all; "pick a model" on two more fields would be noise
        model = data.get("model")
        for name, (unit, missing) in self.PER_MINER.items():
            if name in self.errors:
                continue  # one error per field: the field's own message already explains it
            value, nominal = data.get(name), getattr(model, name, None)
            if value is None and nominal is None:
                self.add_error(name, missing)
            elif value is None:
                data[name] = nominal
            elif nominal is not None and value != nominal:
                self.overrides.append(Override(self.fields[name].label, value, nominal, unit))
        self._check_fleet_fits_network(data)
        return data

    def _check_fleet_fits_network(self, data) -> None:
        if any(name in self.errors for name in ("hashrate_ths", "quantity", "difficulty")):
            return
        if data.get("hashrate_ths") is None or data.get("quantity") is None or data.get("difficulty") is None:
            return
        fleet, network = data["hashrate_ths"] * data["quantity"], network_hashrate_ths(data["difficulty"])
        if fleet > network:
            self.add_error(
                None,
                _(
                    "This fleet (%(fleet)s EH/s) would be larger than the whole Bitcoin network (about "
                    "%(network)s EH/s at this difficulty), so the calculation means nothing. Check the "
                    "quantity and the hashrate per miner."
                )
                % {"fleet": _eh(fleet), "network": _eh(network)},
            )

    def inputs(self) -> ProfitInputs:
        data = self.cleaned_data
        return ProfitInputs(**{name: data[name] for name in ProfitInputs.__dataclass_fields__})
