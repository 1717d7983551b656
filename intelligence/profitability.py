"""Mining profitability: the one pure function behind the calculator (no Django, Decimal throughout).

    expected BTC/day = hashrate (H/s) × 86,400 / (difficulty × 2³²) × (block subsidy + average fees)
                       × (1 − pool fee)
    power cost/day   = power (kW) × 24 h × electricity price
    break-even electricity price = revenue/day ÷ energy/day
    break-even BTC price         = power cost/day ÷ BTC/day

``difficulty × 2³²`` is the expected number of hashes needed to find one block. A month is 30 days.
The BTC/day formula itself is ``intelligence.algorithms.hashprice.expected_btc_per_day`` (one place for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from decimal import Decimal

from intelligence.algorithms import hashprice

TWO_32 = Decimal(hashprice.TWO_32)
SECONDS_PER_DAY = Decimal(hashprice.SECONDS_PER_DAY)
DAYS_PER_MONTH = Decimal(30)
# The pool fee assumed where nobody names one: the calculator's preset and every fleet and site figure.
DEFAULT_POOL_FEE_PCT = Decimal(2)
FORMULA = (
    "BTC/day = hashrate_H/s × 86400 ÷ (difficulty × 2^32) × (subsidy + fees) × (1 − pool fee); "
    "cost/day = kW × 24 × price; break-even power price = revenue ÷ kWh; break-even BTC price = cost ÷ BTC"
)


class InvalidInput(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ProfitInputs:
    hashrate_ths: Decimal  # per miner
    power_w: Decimal  # per miner, at the wall
    quantity: int
    electricity_usd_per_kwh: Decimal
    btc_price_usd: Decimal
    difficulty: Decimal
    block_subsidy_btc: Decimal
    fees_btc_per_block: Decimal
    pool_fee_pct: Decimal

    def validate(self) -> None:
        positive = ("hashrate_ths", "btc_price_usd", "difficulty")
        non_negative = ("power_w", "electricity_usd_per_kwh", "block_subsidy_btc", "fees_btc_per_block", "pool_fee_pct")
        for name in positive:
            if getattr(self, name) <= 0:
                raise InvalidInput(name, "must be greater than zero")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise InvalidInput(name, "must not be negative")
        if self.quantity < 1:
            raise InvalidInput("quantity", "must be at least 1")
        if self.pool_fee_pct >= 100:
            raise InvalidInput("pool_fee_pct", "must be below 100")


@dataclass(frozen=True)
class ProfitResult:
    fleet_hashrate_ths: Decimal
    fleet_power_kw: Decimal
    energy_kwh_per_day: Decimal
    btc_per_day: Decimal
    btc_per_month: Decimal
    revenue_usd_per_day: Decimal
    revenue_usd_per_month: Decimal
    power_cost_usd_per_day: Decimal
    power_cost_usd_per_month: Decimal
    profit_usd_per_day: Decimal
    profit_usd_per_month: Decimal
    break_even_electricity_usd_per_kwh: Decimal
    break_even_btc_price_usd: Decimal | None  # None when the fleet earns nothing
    formula: str = FORMULA

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def margin_pct(self) -> Decimal | None:
        """Profit as a share of revenue; None when the fleet earns nothing."""
        return self.profit_usd_per_day / self.revenue_usd_per_day * 100 if self.revenue_usd_per_day else None


# The additive figures; the break-evens are ratios and are recomputed from the totals.
SUMMED = tuple(f.name for f in fields(ProfitResult) if not f.name.startswith("break_even") and f.name != "formula")


def combine(results: Iterable[ProfitResult]) -> ProfitResult:
    """The total of several groups (a site's models, a fleet's sites); empty gives zeros.

    The break-evens are the whole's, not an average of the parts': the one power price, or the one
    BTC price, at which the total profit is zero."""
    results = list(results)
    totals = {name: sum((getattr(r, name) for r in results), Decimal(0)) for name in SUMMED}
    return ProfitResult(
        **totals,
        break_even_electricity_usd_per_kwh=(
            totals["revenue_usd_per_day"] / totals["energy_kwh_per_day"] if totals["energy_kwh_per_day"] else Decimal(0)
        ),
        break_even_btc_price_usd=(
            totals["power_cost_usd_per_day"] / totals["btc_per_day"] if totals["btc_per_day"] else None
        ),
    )


def mining_profitability(inputs: ProfitInputs) -> ProfitResult:
    inputs.validate()
    fleet_ths = inputs.hashrate_ths * inputs.quantity
    fleet_kw = inputs.power_w * inputs.quantity / 1000
    reward = inputs.block_subsidy_btc + inputs.fees_btc_per_block
    btc_day = hashprice.expected_btc_per_day(fleet_ths, inputs.difficulty, reward) * (1 - inputs.pool_fee_pct / 100)
    revenue_day = btc_day * inputs.btc_price_usd
    kwh_day = fleet_kw * 24
    cost_day = kwh_day * inputs.electricity_usd_per_kwh
    return ProfitResult(
        fleet_hashrate_ths=fleet_ths,
        fleet_power_kw=fleet_kw,
        energy_kwh_per_day=kwh_day,
        btc_per_day=btc_day,
        btc_per_month=btc_day * DAYS_PER_MONTH,
        revenue_usd_per_day=revenue_day,
        revenue_usd_per_month=revenue_day * DAYS_PER_MONTH,
        power_cost_usd_per_day=cost_day,
        power_cost_usd_per_month=cost_day * DAYS_PER_MONTH,
        profit_usd_per_day=revenue_day - cost_day,
        profit_usd_per_month=(revenue_day - cost_day) * DAYS_PER_MONTH,
        break_even_electricity_usd_per_kwh=revenue_day / kwh_day if kwh_day else Decimal(0),
        break_even_btc_price_usd=cost_day / btc_day if btc_day else None,
    )
