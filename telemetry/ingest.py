"""Validation of an edge device's sample batch: pure Python, no ORM, a few microseconds per sample.

Each sample is checked on its own and either accepted (as a row tuple ready for the store) or rejected
with ``{"index", "miner", "reason"}``. Reasons are stable codes, with the field after a colon where
one field is at fault (``wrong_type:hashrate_ths``, ``out_of_range:fan_rpm``, ``missing_field:ts``).

Three optional keys give the miner's settings as the edge read them, for the live layer only:
``pool_url`` (a string of at most 255 printable characters), ``fan_pct`` (an integer 0–100) and
``power_mode`` (low, normal or high); absent or null says nothing (live keeps what it had).

A serial that is not a miner of the device's own site is ``unknown_miner`` whether it exists elsewhere
or not, so a device learns nothing about other sites.

The loop is hand-written on purpose (ingest's figure is 20,000 samples/s on two cores): no serializer
per sample, ``type(v) in (int, float)`` so a JSON ``true`` is not a number, ``datetime.fromisoformat``
for timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

MAX_SAMPLES = 5_000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_AGE = timedelta(hours=24)
STATUSES = frozenset({"hashing", "idle", "offline", "error"})

# Ranges, with a margin over what today's hardware reports (the largest ASIC is ~1,000 TH/s, 10 kW).
HASHRATE_MAX_THS = 2_500.0
TEMP_MIN_C, TEMP_MAX_C = -40.0, 150.0
POWER_MAX_W = 25_000.0
FANS_MAX, FAN_MAX_RPM = 16, 30_000
SHARES_MAX = 2**63 - 1
ERRORS_MAX, ERROR_MAX_CHARS = 32, 64
SERIAL_MAX_CHARS = 64
TS_MAX_CHARS = 40
# The miner's settings as the edge read them (optional; absent or null: live keeps what it had).
POOL_URL_MAX_CHARS = 255
FAN_PCT_MAX = 100
POWER_MODES = frozenset({"low", "normal", "high"})

# Columns of a validated row, in order (the store adds site_id and device_id).
ROW_COLUMNS = (
    "miner_id", "ts", "hashrate_ths", "temp_chip_max_c", "temp_inlet_c", "temp_outlet_c", "fan_rpm", "power_w",
    "status", "accepted_shares", "rejected_shares", "errors", "pool_url", "fan_pct", "power_mode",
)  # fmt: skip
_FLOATS = (
    ("hashrate_ths", 0.0, HASHRATE_MAX_THS),
    ("temp_chip_max_c", TEMP_MIN_C, TEMP_MAX_C),
    ("temp_inlet_c", TEMP_MIN_C, TEMP_MAX_C),
    ("temp_outlet_c", TEMP_MIN_C, TEMP_MAX_C),
    ("power_w", 0.0, POWER_MAX_W),
)


class Validated(NamedTuple):
    rows: list[tuple]  # ROW_COLUMNS, sorted by (miner_id, ts)
    rejected: list[dict]
    customer_of: dict[int, int | None]  # miner id → hosting client id, for the accepted rows' miners


def parse_utc(value, now: datetime, max_age: timedelta = MAX_AGE) -> tuple[datetime | None, str | None]:
    """An ISO-8601 UTC timestamp (``Z`` or ``+00:00``) within [now - max_age, now + 5 min]."""
    if type(value) is not str:
        return None, "wrong_type:ts"
    if len(value) > TS_MAX_CHARS:
        return None, "bad_ts"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None, "bad_ts"
    offset = ts.utcoffset()
    if offset is None or offset:
        return None, "ts_not_utc"
    if ts > now + FUTURE_TOLERANCE:
        return None, "ts_in_future"
    if ts < now - max_age:
        return None, "ts_too_old"
    if ts.tzinfo is not UTC:
        ts = ts.replace(tzinfo=UTC)
    return ts, None


def _reject(rejected: list, index: int, miner, reason: str) -> None:
    rejected.append(
        {"index": index, "miner": miner[:SERIAL_MAX_CHARS] if type(miner) is str else None, "reason": reason}
    )


def validate_samples(samples: list, miners: dict[str, tuple[int, int | None]], now: datetime) -> Validated:
    """Check each sample of ``samples`` against ``miners`` (serial → (miner id, client id), the
    device's own site only) and ``now`` (aware). See the module docstring for the reasons."""
    rows: list[tuple] = []
    rejected: list[dict] = []
    customer_of: dict[int, int | None] = {}
    seen: set = set()
    parsed_ts: dict[str, tuple[datetime | None, str | None]] = {}
    oldest, newest = now - MAX_AGE, now + FUTURE_TOLERANCE
    fromisoformat = datetime.fromisoformat
    miners_get = miners.get
    utc = UTC
    floats = _FLOATS
    for index, sample in enumerate(samples):
        if type(sample) is not dict:
            _reject(rejected, index, None, "not_an_object")
            continue
        get = sample.get
        serial = get("miner")
        if serial is None:
            _reject(rejected, index, None, "missing_field:miner")
            continue
        if type(serial) is not str:
            _reject(rejected, index, None, "wrong_type:miner")
            continue
        known = miners_get(serial)
        if known is None:
            _reject(rejected, index, serial, "unknown_miner")
            continue
        # Timestamp: inlined parse_utc (the hot path), once per distinct string: a collector stamps a
        # whole poll round with one time, so a batch usually holds one or a few.
        raw_ts = get("ts")
        if raw_ts is None:
            _reject(rejected, index, serial, "missing_field:ts")
            continue
        if type(raw_ts) is not str:
            _reject(rejected, index, serial, "wrong_type:ts")
            continue
        parsed = parsed_ts.get(raw_ts)
        if parsed is None:
            if len(raw_ts) > TS_MAX_CHARS:
                parsed = None, "bad_ts"
            else:
                try:
                    ts = fromisoformat(raw_ts)
                except ValueError:
                    parsed = None, "bad_ts"
                else:
                    offset = ts.utcoffset()
                    if offset is None or offset:
                        parsed = None, "ts_not_utc"
                    elif ts > newest:
                        parsed = None, "ts_in_future"
                    elif ts < oldest:
                        parsed = None, "ts_too_old"
                    else:
                        parsed = (ts if ts.tzinfo is utc else ts.replace(tzinfo=utc)), None
                parsed_ts[raw_ts] = parsed
        ts, reason = parsed
        if reason is not None:
            _reject(rejected, index, serial, reason)
            continue
        status = get("status")
        if status is None:
            _reject(rejected, index, serial, "missing_field:status")
            continue
        if type(status) is not str:
            _reject(rejected, index, serial, "wrong_type:status")
            continue
        if status not in STATUSES:
            _reject(rejected, index, serial, "unknown_status")
            continue
        hashrate, chip, inlet, outlet, power = (
            get("hashrate_ths"), get("temp_chip_max_c"), get("temp_inlet_c"), get("temp_outlet_c"), get("power_w")
        )  # fmt: skip
        reason = None
        # The usual sample: four floats and the power (JSON often sends it as an integer), all in range. One
        # condition instead of a loop over _FLOATS; anything else goes through the loop, which names the field.
        if (
            type(hashrate) is float and type(chip) is float and type(inlet) is float and type(outlet) is float
            and (type(power) is int or type(power) is float)
            and 0.0 <= hashrate <= HASHRATE_MAX_THS and TEMP_MIN_C <= chip <= TEMP_MAX_C
            and TEMP_MIN_C <= inlet <= TEMP_MAX_C and TEMP_MIN_C <= outlet <= TEMP_MAX_C and 0.0 <= power <= POWER_MAX_W
        ):  # fmt: skip
            values = (hashrate, chip, inlet, outlet, float(power))
        else:
            values = []
            for name, low, high in floats:
                value = get(name)
                if value is None:
                    values.append(None)
                    continue
                kind = type(value)
                if kind is not float and kind is not int:
                    reason = "wrong_type:" + name
                    break
                if not low <= value <= high:
                    reason = "out_of_range:" + name
                    break
                values.append(float(value))
            if reason is not None:
                _reject(rejected, index, serial, reason)
                continue
        fans = get("fan_rpm")
        if fans is None:
            fans = []
        elif type(fans) is not list:
            _reject(rejected, index, serial, "wrong_type:fan_rpm")
            continue
        elif fans:
            if len(fans) > FANS_MAX:
                _reject(rejected, index, serial, "out_of_range:fan_rpm")
                continue
            for fan in fans:
                if type(fan) is not int:
                    reason = "wrong_type:fan_rpm"
                    break
                if not 0 <= fan <= FAN_MAX_RPM:
                    reason = "out_of_range:fan_rpm"
                    break
            if reason is not None:
                _reject(rejected, index, serial, reason)
                continue
        accepted_shares = get("accepted_shares")
        rejected_shares = get("rejected_shares")
        for name, value in (("accepted_shares", accepted_shares), ("rejected_shares", rejected_shares)):
            if value is not None:
                if type(value) is not int:
                    reason = "wrong_type:" + name
                    break
                if not 0 <= value <= SHARES_MAX:
                    reason = "out_of_range:" + name
                    break
        if reason is not None:
            _reject(rejected, index, serial, reason)
            continue
        errors = get("errors")
        if errors is None:
            errors = []
        elif type(errors) is not list:
            _reject(rejected, index, serial, "wrong_type:errors")
            continue
        elif errors:
            if len(errors) > ERRORS_MAX:
                _reject(rejected, index, serial, "out_of_range:errors")
                continue
            for code in errors:
                if type(code) is not str:
                    reason = "wrong_type:errors"
                    break
                # PostgreSQL refuses NUL inside jsonb text; an empty code says nothing.
                if not 0 < len(code) <= ERROR_MAX_CHARS or "\x00" in code:
                    reason = "out_of_range:errors"
                    break
            if reason is not None:
                _reject(rejected, index, serial, reason)
                continue
        # The settings: rare enough in a sample that one lookup each is all the common case pays.
        pool_url = get("pool_url")
        if pool_url is not None:
            if type(pool_url) is not str:
                _reject(rejected, index, serial, "wrong_type:pool_url")
                continue
            # Control characters (NUL among them, which PostgreSQL refuses) belong in no URL.
            if len(pool_url) > POOL_URL_MAX_CHARS or not pool_url.isprintable():
                _reject(rejected, index, serial, "out_of_range:pool_url")
                continue
        fan_pct = get("fan_pct")
        if fan_pct is not None:
            if type(fan_pct) is not int:
                _reject(rejected, index, serial, "wrong_type:fan_pct")
                continue
            if not 0 <= fan_pct <= FAN_PCT_MAX:
                _reject(rejected, index, serial, "out_of_range:fan_pct")
                continue
        power_mode = get("power_mode")
        if power_mode is not None:
            if type(power_mode) is not str:
                _reject(rejected, index, serial, "wrong_type:power_mode")
                continue
            if power_mode not in POWER_MODES:
                _reject(rejected, index, serial, "unknown_power_mode")
                continue
        miner_id = known[0]
        key = (miner_id, ts)
        if key in seen:
            _reject(rejected, index, serial, "duplicate_in_batch")
            continue
        seen.add(key)
        customer_of[miner_id] = known[1]
        rows.append(
            (miner_id, ts, values[0], values[1], values[2], values[3], fans, values[4], status,
             accepted_shares, rejected_shares, errors, pool_url, fan_pct, power_mode)
        )  # fmt: skip
    # One order for every writer: two batches touching the same keys lock them in the same order.
    rows.sort(key=_row_key)
    return Validated(rows, rejected, customer_of)


def _row_key(row: tuple):
    return row[0], row[1]
