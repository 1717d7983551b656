"""SLA downtime classification (owner: sla). Interface the invoicing part calls; the sla part fills it in.

Downtime of a miner-day is split into operator-caused (site outage, operator curtailment beyond the contract's
allowance, failed maintenance, unexplained), client-caused (client-requested disable) and excluded (miner hardware
fault, force majeure, curtailment within the allowance); curtailment at the operator's request is also counted in
``curtailed_h`` for the curtailment credit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class DayDowntime:
    operator_h: Decimal = Decimal("0")
    client_h: Decimal = Decimal("0")
    excluded_h: Decimal = Decimal("0")
    curtailed_h: Decimal = Decimal("0")  # at the operator's request (credit basis), whatever class it fell into
    reasons: tuple[str, ...] = ()  # codes: site_outage, curtailment, maintenance_failed, client_disable, ...
    command_ids: tuple[int, ...] = field(default=())


def classify_period(contract, start: date, end: date, *, uptime: dict | None = None) -> dict:
    """``{(miner_id, day): DayDowntime}`` for the contract's miners between ``start`` and ``end`` (inclusive), only
    for miner-days with downtime or curtailment. ``uptime`` is ``{(miner_id, day): uptime_pct}`` when the caller
    already read the daily layer (miner-days missing from it were not reported: 24 h down)."""
    return {}


def sla_credit_pct(contract, sla_uptime_pct: Decimal) -> Decimal:
    """The credit (in % of the month's charge) the contract's schedule gives for this SLA uptime; 0 when met."""
    return Decimal("0")
