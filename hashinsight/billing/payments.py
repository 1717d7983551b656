"""Payments (owner: payments)."""

from __future__ import annotations


def assign_addresses(invoice) -> None:
    """Called inside the issuing transaction: give the invoice an unused BTC and USDT address from the pool."""
