"""Hashprice — USD one TH/s earns per day — and the block subsidy's halving schedule (no Django).

    BTC per TH/s per day = 10¹² H/s × 86,400 s ÷ (difficulty × 2³²) × (block subsidy + fees per block)
    hashprice (USD/TH/s/day) = BTC per TH/s per day × BTC price

``difficulty × 2³²`` is the expected number of hashes per block, so the first factor is the expected number of
blocks one TH/s finds in a day. Pool fees are left to the caller (multiply by ``1 − fee``).

The arithmetic uses only integer constants, so the functions return a ``Decimal`` for ``Decimal`` inputs, an exact
``Fraction`` for ``Fraction`` inputs (the ROI attribution needs that) and a float or numpy array for floats.
``intelligence.profitability`` (the calculator) computes its BTC per day with :func:`expected_btc_per_day`.

The subsidy is 50 BTC halved (in whole satoshis, rounding down as the consensus rule does) every 210,000
blocks. By date: the four halvings so far are known to the second (the timestamp of blocks 210,000 … 840,000);
later ones are estimated at one block per 600 s after block 840,000 — an estimate, blocks have lately come
somewhat faster than that, so a date within weeks of an estimated halving may be on the wrong side of it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

HASHES_PER_TH = 10**12
SECONDS_PER_DAY = 86_400
TWO_32 = 2**32
TARGET_BLOCK_SECONDS = 600
BLOCKS_PER_DAY = SECONDS_PER_DAY // TARGET_BLOCK_SECONDS  # 144
HALVING_INTERVAL = 210_000
SATS_PER_BTC = 100_000_000
INITIAL_SUBSIDY_SATS = 50 * SATS_PER_BTC

GENESIS = datetime(2009, 1, 3, 18, 15, 5, tzinfo=UTC)
# Block height → the block's timestamp (UTC): every halving so far.
KNOWN_HALVINGS = (
    (210_000, datetime(2012, 11, 28, 15, 24, 38, tzinfo=UTC)),
    (420_000, datetime(2016, 7, 9, 16, 46, 13, tzinfo=UTC)),
    (630_000, datetime(2020, 5, 11, 19, 23, 43, tzinfo=UTC)),
    (840_000, datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)),
)


def block_subsidy_sats(height: int) -> int:
    """The subsidy of the block at ``height``, in satoshis (Bitcoin Core's GetBlockSubsidy)."""
    if height < 0:
        raise ValueError("height must be ≥ 0")
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else INITIAL_SUBSIDY_SATS >> halvings


def block_subsidy_btc(height: int) -> Decimal:
    return Decimal(block_subsidy_sats(height)) / SATS_PER_BTC


def halving_time(index: int) -> datetime:
    """When halving ``index`` (1 = block 210,000) happened, or is estimated to happen."""
    if index < 1:
        raise ValueError("the first halving is index 1")
    if index <= len(KNOWN_HALVINGS):
        return KNOWN_HALVINGS[index - 1][1]
    last_height, last_time = KNOWN_HALVINGS[-1]
    blocks = index * HALVING_INTERVAL - last_height
    return last_time + timedelta(seconds=blocks * TARGET_BLOCK_SECONDS)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime (UTC)")
    return moment


def halvings_before(moment: datetime) -> int:
    """How many halvings had happened at ``moment`` (known ones exactly, later ones estimated)."""
    moment = _aware(moment)
    if moment < GENESIS:
        raise ValueError("before the genesis block")
    n = 0
    while n < 64 and halving_time(n + 1) <= moment:
        n += 1
    return n


def block_subsidy_btc_at(moment: datetime) -> Decimal:
    """The subsidy in force at ``moment`` (an aware datetime)."""
    return block_subsidy_btc(halvings_before(moment) * HALVING_INTERVAL)


def block_subsidy_btc_on(day: date) -> Decimal:
    """The subsidy over the UTC day ``day``, weighted by time: on a halving day it is the blend of the
    two (e.g. 2024-04-20, halved 9 min 27 s after midnight: 3.125 + 3.125 × 567 / 86,400)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    before, after = block_subsidy_btc_at(start), block_subsidy_btc_at(end - timedelta(microseconds=1))
    if before == after:
        return before
    change = halving_time(halvings_before(start) + 1)
    share_before = Decimal((change - start).total_seconds()) / SECONDS_PER_DAY
    return after + (before - after) * share_before


def estimated_height(moment: datetime) -> int:
    """A block height for ``moment``: interpolated between known halvings, 600 s per block after the last."""
    moment = _aware(moment)
    anchors = [(0, GENESIS), *KNOWN_HALVINGS]
    if moment < GENESIS:
        raise ValueError("before the genesis block")
    for (h0, t0), (h1, t1) in itertools.pairwise(anchors):
        if moment < t1:
            return h0 + int((h1 - h0) * (moment - t0).total_seconds() / (t1 - t0).total_seconds())
    last_height, last_time = anchors[-1]
    return last_height + int((moment - last_time).total_seconds() // TARGET_BLOCK_SECONDS)


def expected_btc_per_day(hashrate_ths, difficulty, reward_btc_per_block):
    """BTC that ``hashrate_ths`` earns per day on average, before pool fees."""
    return hashrate_ths * HASHES_PER_TH * SECONDS_PER_DAY / (difficulty * TWO_32) * reward_btc_per_block


def hashprice_usd_per_th_day(btc_price_usd, difficulty, block_subsidy_btc, fees_btc_per_block):
    """USD one TH/s earns per day (before pool fees). Works on Decimal, Fraction, float or numpy arrays."""
    return expected_btc_per_day(1, difficulty, block_subsidy_btc + fees_btc_per_block) * btc_price_usd


def hashprice_btc_per_th_day(difficulty, block_subsidy_btc, fees_btc_per_block):
    """The same in BTC (the 'hashvalue')."""
    return expected_btc_per_day(1, difficulty, block_subsidy_btc + fees_btc_per_block)


def fees_btc_per_block(fees_btc_per_day, blocks_per_day=BLOCKS_PER_DAY):
    """Average fees per block from a day's total (144 blocks a day unless the caller counted them)."""
    return fees_btc_per_day / blocks_per_day


def hashprice_series(btc_price_usd, difficulty, block_subsidy_btc, fees_btc_per_block) -> np.ndarray:
    """Vectorised float hashprice for daily series (arrays of equal length, or scalars)."""
    price = np.asarray(btc_price_usd, dtype=float)
    diff = np.asarray(difficulty, dtype=float)
    reward = np.asarray(block_subsidy_btc, dtype=float) + np.asarray(fees_btc_per_block, dtype=float)
    return float(HASHES_PER_TH * SECONDS_PER_DAY) / (diff * float(TWO_32)) * reward * price


def subsidy_series(days) -> np.ndarray:
    """:func:`block_subsidy_btc_on` for each day, as floats (for :func:`hashprice_series`)."""
    return np.array([float(block_subsidy_btc_on(d)) for d in days])


def hashprice_from_revenue(miners_revenue_usd_per_day, network_hashrate_ths):
    """Hashprice read off the network's total miner revenue (subsidy + fees, USD/day) and its hashrate."""
    return miners_revenue_usd_per_day / network_hashrate_ths
