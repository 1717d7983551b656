"""The profitability calculator, open to everyone."""

from __future__ import annotations

from django.shortcuts import render

from hashinsight.portal.forms.calculator import CalculatorForm
from intelligence.market import latest_snapshot
from intelligence.profitability import FORMULA, ProfitInputs, mining_profitability


def calculator(request):
    """Open to everyone, signed in or not (BASIC READ, the guest's one page)."""
    form = CalculatorForm(request.GET or None, initial=CalculatorForm.initial_values())
    result = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        result = mining_profitability(
            ProfitInputs(
                hashrate_ths=data["hashrate_ths"],
                power_w=data["power_w"],
                quantity=data["quantity"],
                electricity_usd_per_kwh=data["electricity_usd_per_kwh"],
                btc_price_usd=data["btc_price_usd"],
                difficulty=data["difficulty"],
                block_subsidy_btc=data["block_subsidy_btc"],
                fees_btc_per_block=data["fees_btc_per_block"],
                pool_fee_pct=data["pool_fee_pct"],
            )
        )
    return render(
        request,
        "portal/calculator.html",
        {"form": form, "result": result, "formula": FORMULA, "market": latest_snapshot()},
    )
