"""The calculator's form."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from intelligence.market import latest_snapshot
from miners.models import MinerModel


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
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1_000_000, initial=1)
    electricity_usd_per_kwh = forms.DecimalField(
        label=_("Electricity price (USD/kWh)"),
        min_value=Decimal(0),
        max_digits=8,
        decimal_places=5,
        initial=Decimal("0.05"),
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
        label=_("Pool fee (%)"),
        min_value=Decimal(0),
        max_value=Decimal("99.99"),
        max_digits=5,
        decimal_places=2,
        initial=Decimal("2"),
    )

    @classmethod
    def initial_values(cls) -> dict:
        market = latest_snapshot()
        return {
            "quantity": 1,
            "electricity_usd_per_kwh": Decimal("0.05"),
            "pool_fee_pct": Decimal("2"),
            "btc_price_usd": market.btc_price_usd,
            "difficulty": market.difficulty,
            "block_subsidy_btc": market.block_subsidy_btc,
            "fees_btc_per_block": market.fees_btc_per_block,
        }

    def clean(self):
        data = super().clean()
        model = data.get("model")
        if model is not None:
            data["hashrate_ths"] = data.get("hashrate_ths") or model.hashrate_ths
            data["power_w"] = data.get("power_w") if data.get("power_w") is not None else model.power_w
        if not data.get("hashrate_ths"):
            self.add_error("hashrate_ths", _("Pick a model or enter the hashrate."))
        if data.get("power_w") is None:
            self.add_error("power_w", _("Pick a model or enter the power draw."))
        return data
