"""Money and units on screen, one way: a unit on every figure and thousands separators in every
language (the separators come from the active locale's formats; see hashinsight/formats).

    {{ v|usd }}      → $12,345.67          {{ v|btc }}  → 0.01234567 BTC
    {{ v|kw }}       → 1,234.5 kW          {{ v|ths }}  → 12,345 TH/s
    {{ v|usd_kwh }}  → 0.0500 USD/kWh      {{ v|pct }}  → 12.3%
    {{ v|count }}    → 100,000

Each takes the number of decimals as an optional argument (``{{ v|kw:0 }}``). Values may be
Decimal, int, float or numeric strings (cached summaries hold strings). None or an empty string
renders as "—": there is no figure (for example the break-even BTC price of a fleet that earns nothing).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()
NONE = "—"


def _grouped(value, places: int) -> str | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    # number_format truncates extra decimals; round half up first, as people expect of money.
    number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return number_format(number, decimal_pos=places, use_l10n=True, force_grouping=True)


def _with_unit(value, places: int, unit: str) -> str:
    text = _grouped(value, places)
    return NONE if text is None else f"{text} {unit}"


@register.filter
def usd(value, places: int = 2) -> str:
    text = _grouped(value, places)
    if text is None:
        return NONE
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    # Translators: a US dollar amount; %(amount)s is already formatted with separators.
    return sign + _("$%(amount)s") % {"amount": digits}


@register.filter
def btc(value, places: int = 8) -> str:
    return _with_unit(value, places, "BTC")


@register.filter
def kw(value, places: int = 1) -> str:
    return _with_unit(value, places, "kW")


@register.filter
def ths(value, places: int = 0) -> str:
    return _with_unit(value, places, "TH/s")


@register.filter
def usd_kwh(value, places: int = 4) -> str:
    return _with_unit(value, places, "USD/kWh")


@register.filter
def pct(value, places: int = 1) -> str:
    text = _grouped(value, places)
    return NONE if text is None else f"{text}%"


@register.filter
def count(value) -> str:
    text = _grouped(value or 0, 0)
    return NONE if text is None else text
