"""Factories for the payments tests (owner: payments): issued invoices and a filled address pool."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from hashinsight.billing.models import Invoice, InvoiceStatus, PaymentAddress
from hashinsight.tests.factories import HostingContractFactory

# Valid addresses (BIP-350's vectors and well-known mainnet addresses; TRON's USDT contract and two more).
BTC_ADDRESSES = [
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
]
USDT_ADDRESSES = ["TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"]

_numbers = iter(range(1, 10**6))


def tron_address(n: int) -> str:
    """A valid TRC-20 address made from a number (Base58Check of 0x41 + 20 bytes)."""
    from hashinsight.billing.addresses import b58check_encode

    return b58check_encode(bytes([0x41]) + n.to_bytes(20, "big"))


def issued_invoice(
    *,
    contract=None,
    customer=None,
    site=None,
    total="1000.00",
    status=InvoiceStatus.ISSUED,
    due_date=None,
    currency="USD",
    **fields,
) -> Invoice:
    """An issued invoice (numbered, due in 15 days unless said) for a contract (a new one unless given)."""
    if contract is None:
        kwargs = {}
        if customer is not None:
            kwargs["customer"] = customer
        if site is not None:
            kwargs["site"] = site
        contract = HostingContractFactory(**kwargs)
    n = next(_numbers)
    today = timezone.now().date()
    number = fields.pop("number", f"INV-T-{n:06d}")
    return Invoice.objects.create(
        number=number, customer=contract.customer, contract=contract, site=contract.site,
        period_start=date(2025, 1, 1) + timedelta(days=31 * (n % 300)), period_end=date(2025, 1, 31) +
        timedelta(days=31 * (n % 300)), currency=currency, status=status, subtotal=Decimal(total),
        total=Decimal(total), issue_date=today, due_date=due_date or today + timedelta(days=15),
        issued_at=timezone.now(), **fields,
    )  # fmt: skip


def fill_pool(btc=BTC_ADDRESSES, usdt=USDT_ADDRESSES) -> None:
    PaymentAddress.objects.bulk_create(
        [PaymentAddress(network="btc", address=a) for a in btc]
        + [PaymentAddress(network="usdt", address=a) for a in usdt]
    )
