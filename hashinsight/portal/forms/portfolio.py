"""An app customer's portfolio entry: which model, how many, at what power price."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from hashinsight.portal.forms.calculator import DEFAULT_ELECTRICITY_USD_PER_KWH, default_model
from miners.models import PortfolioEntry
from miners.selectors import miner_model_list


class PortfolioEntryForm(forms.ModelForm):
    # Bounds a person could mean: the calculator's fleet limit, and a power price no mine pays.
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1_000_000)
    power_price_usd_per_kwh = forms.DecimalField(
        label=_("Power price (USD/kWh)"), min_value=Decimal(0), max_value=Decimal(10), max_digits=8, decimal_places=5
    )

    class Meta:
        model = PortfolioEntry
        fields = ["model", "quantity", "power_price_usd_per_kwh", "label"]

    @classmethod
    def initial_values(cls) -> dict:
        """The calculator's common model and power price, so a new entry starts from sensible figures."""
        model = default_model()
        return {
            "model": model.pk if model else None,
            "quantity": 1,
            "power_price_usd_per_kwh": DEFAULT_ELECTRICITY_USD_PER_KWH,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = miner_model_list()
        self.fields["model"].empty_label = None
        for name, field in self.fields.items():
            css = "form-select" if name == "model" else "form-control"
            field.widget.attrs["class"] = css + (" is-invalid" if name in self.errors else "")
