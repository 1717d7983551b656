"""Money rules, in one place: amounts are ``Decimal`` with a currency, never float; invoice amounts are rounded
to the cent **half-up** (0.005 → 0.01, the rule of commercial invoices and of most tax authorities; banker's
rounding would turn 0.125 into 0.12). Rounding happens once per invoice line, on the line's exact sum, so a
line equals the rounded sum of its unrounded miner-day amounts, and the total is the sum of the rounded lines."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_decimal(value) -> Decimal:
    """A Decimal from a Decimal, int or str; floats go through their shortest repr (``0.1`` → ``Decimal('0.1')``,
    not the binary expansion), so figures read from the float telemetry layers keep the digits they showed."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def round_money(value) -> Decimal:
    """Half-up to the cent."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(value, currency: str) -> str:
    """``1,234.50 USD``: thousands separated, two decimals, currency code after (stored text, CSV, PDF)."""
    return f"{round_money(value):,.2f} {currency}"
