"""The profitability calculator, open to everyone."""

from __future__ import annotations

from django.shortcuts import render

from hashinsight.portal.forms.calculator import CalculatorForm
from hashinsight.portal.views.dashboard import market_context
from intelligence.market import latest_snapshot
from intelligence.profitability import InvalidInput, mining_profitability


def calculator(request):
    """Open to everyone, signed in or not (BASIC READ, the guest's one page). Every figure has a
    default, so the first visit already shows a result; the form is a GET, so the URL is the link to share."""
    form = CalculatorForm.from_query(request.GET)
    result = None
    if form.is_valid():
        try:
            result = mining_profitability(form.inputs())
        except InvalidInput as exc:  # the form's bounds are the function's; this is a second line
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    context = {"form": form, "result": result, **market_context(latest_snapshot().date)}
    return render(request, "portal/calculator.html", context)
