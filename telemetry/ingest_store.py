"""Writing a validated sample batch: ``raw`` in one bulk write, ``live`` upserted, one outbox event,
all in one transaction.

PostgreSQL: the rows are COPY'd straight into ``telemetry_raw``; if one of them is already stored, the
transaction is undone and run again with the rows going through a temporary staging table (emptied at
commit) and one ``INSERT … SELECT … ON CONFLICT (miner_id, ts) DO NOTHING``. Both work whether
``telemetry_raw`` is partitioned or not. Other databases (SQLite): multi-row ``INSERT … ON CONFLICT DO
NOTHING`` in chunks under the variable limit. A sample already stored (same miner and time) is a
duplicate and changes nothing, so a re-sent batch is harmless.

``live`` moves only forward: a miner's row is rewritten only when the batch holds a sample newer than
its ``last_seen`` (the upsert's condition), so a late or out-of-order batch never moves it back.
``hashrate_ghs`` is the mean of the samples in the five minutes up to the newest one, × 1000, kept as
two lists (``hashrate_window_ts`` epoch seconds, ``hashrate_window_ths``). On PostgreSQL the upsert
merges the window itself, on the row it has locked (no read of the live rows first); on SQLite (one
writer) they are read and merged here. The optional settings (pool_url, fan_pct, power_mode) go to
live only; a miner whose samples give none keeps the live row's.

Rows are written in (miner, time) order and live rows upserted in miner order, so two batches touching
the same miners wait for each other instead of deadlocking. Alert rules and rollups never run here: the
``telemetry.ingested`` event carries the miners whose live row changed to their handlers."""

from __future__ import annotations

# ruff: noqa: S608 - the SQL is built from this module's column constants and placeholders; values are parameters.
import struct
import threading
import time
import weakref
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import postgres
from psycopg.errors import UniqueViolation

from hashinsight.events import outbox
from telemetry.ingest import Validated
from telemetry.models import LiveStatus
from telemetry.rollups import note_late_samples

WINDOW_S = 300  # the moving average's span
RAW_COLUMNS = (
    "miner_id", "ts", "site_id", "customer_id", "device_id", "hashrate_ths", "temp_chip_max_c", "temp_inlet_c",
    "temp_outlet_c", "fan_rpm", "power_w", "status", "accepted_shares", "rejected_shares", "errors",
)  # fmt: skip
LIVE_COLUMNS = (
    "miner_id", "site_id", "customer_id", "last_seen", "hashrate_ghs", "hashrate_ths_instant", "hashrate_window_ts",
    "hashrate_window_ths", "temp_chip_max_c", "temp_inlet_c", "temp_outlet_c", "fan_rpm", "power_w", "status",
    "accepted_shares", "rejected_shares", "errors", "updated_at",
)  # fmt: skip
SETTINGS = ("pool_url", "fan_pct", "power_mode")  # optional in a sample: absent keeps the live row's
LIVE_COLUMNS_ALL = LIVE_COLUMNS + SETTINGS
_EMPTY_JSON = "[]"


# Binary COPY (a third less client CPU than text, and less parsing on the server) needs each column's
# exact type; the tests on PostgreSQL fail if a migration changes one.
RAW_PG_TYPES = (
    "int8", "timestamptz", "int4", "int4", "int4", "float8", "float8", "float8", "float8", "jsonb", "float8", "text",
    "int8", "int8", "jsonb",
)  # fmt: skip
LIVE_PG_TYPES = (
    "int8", "int4", "int4", "timestamptz", "float8", "float8", "float8[]", "float8[]", "float8", "float8", "float8",
    "jsonb", "float8", "text", "int8", "int8", "jsonb", "timestamptz", "text", "int2", "text",
)  # fmt: skip


# The jsonb and float8[] values are encoded here, once per value, into their binary form (_jsonb,
# _float8_array), and handed to psycopg as bytes with the bytea dumper: a binary COPY stream carries no
# types (the server reads each field as its column's type), and psycopg writes bytes as they are, in C.
# Its dumpers for these are Python calls per value (ours before: four a live row, two a raw row), where
# the other columns' are C; and a sample's fans are now encoded once for both COPYs.
def _wire_types(types: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("bytea" if kind in ("jsonb", "float8[]") else kind for kind in types)


RAW_WIRE_TYPES = _wire_types(RAW_PG_TYPES)
LIVE_WIRE_TYPES = _wire_types(LIVE_PG_TYPES)


class StoreResult(NamedTuple):
    inserted: int
    duplicates: int
    live_changed: list[int]


# ---------------------------------------------------------------------------------------------------
# A site's miner map, per process.
#
# A device may write only the miners of its own site. Reading 1,000+ miners per request would cost
# more than validating them, so each process keeps each site's map for MINER_MAP_TTL_S: a miner moved
# to another site (or deleted) stays writable by its old site's device for at most that long (the
# load time is taken before the query, so the bound holds). A serial the map does not know reloads it
# at once (at most every MINER_MAP_RELOAD_S), so a new miner's first samples are not refused for the
# whole TTL; a serial that stayed unknown after such a reload does not trigger another before the TTL
# runs out, so a collector repeating a bogus serial costs at most one extra read per TTL.

MINER_MAP_TTL_S = 5.0
MINER_MAP_RELOAD_S = 1.0
MINER_MAP_SITES = 256
MinerMap = dict[str, tuple[int, int | None]]


class _Entry(NamedTuple):
    loaded_at: float
    miners: MinerMap
    unknown: frozenset[str]  # serials still unknown when this map was loaded for them


_maps: OrderedDict[int, _Entry] = OrderedDict()
_maps_lock = threading.Lock()


def _load_miner_map(site_id: int) -> MinerMap:
    # A plain cursor: a 30,000-miner site loads in a fraction of the ORM's time, and every process does
    # this for every site it serves once per TTL.
    from miners.models import Miner

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT serial, id, customer_id FROM {Miner._meta.db_table} WHERE site_id = %s", [site_id])
        return {serial: (miner_id, customer_id) for serial, miner_id, customer_id in cursor.fetchall()}


def _load(site_id: int, unknown: frozenset[str] = frozenset()) -> MinerMap:
    loaded_at = time.monotonic()
    miners = _load_miner_map(site_id)
    with _maps_lock:
        _maps[site_id] = _Entry(loaded_at, miners, frozenset(s for s in unknown if s not in miners))
        _maps.move_to_end(site_id)
        while len(_maps) > MINER_MAP_SITES:
            _maps.popitem(last=False)
    return miners


def miner_map(site_id: int) -> MinerMap:
    """serial → (miner id, hosting client id) for the miners of ``site_id``, at most MINER_MAP_TTL_S old."""
    with _maps_lock:
        entry = _maps.get(site_id)
        if entry is not None and time.monotonic() - entry.loaded_at < MINER_MAP_TTL_S:
            _maps.move_to_end(site_id)
            return entry.miners
    return _load(site_id)


def fresher_miner_map(site_id: int, unknown: set[str]) -> MinerMap | None:
    """A map read again because ``unknown`` serials may be miners added since it was loaded; None when
    the current one stands (younger than MINER_MAP_RELOAD_S, or those serials were unknown to it too)."""
    with _maps_lock:
        entry = _maps.get(site_id)
        if entry is not None and (time.monotonic() - entry.loaded_at < MINER_MAP_RELOAD_S or unknown <= entry.unknown):
            return None
    return _load(site_id, frozenset(unknown))


def miner_map_invalidate(site_ids: Sequence[int] | None = None) -> None:
    """Forget this process's maps (of ``site_ids``, or all)."""
    with _maps_lock:
        if site_ids is None:
            _maps.clear()
        for site_id in site_ids or ():
            _maps.pop(site_id, None)


# ---------------------------------------------------------------------------------------------------
# The write.


def store_batch(*, site_id: int, device_id: int, validated: Validated, timings: dict | None = None) -> StoreResult:
    """Write ``validated.rows`` (sorted by miner and time) to raw, upsert live, publish one event."""
    rows = validated.rows
    if not rows:
        return StoreResult(0, 0, [])
    timings = {} if timings is None else timings
    try:
        return _store(site_id, device_id, validated, timings, fresh=True)
    except _AlreadyStored:
        # A re-sent sample (a collector retrying after a timeout): the whole transaction was undone (a
        # savepoint of it inside a caller's), so the batch goes again through the staging table.
        return _store(site_id, device_id, validated, timings, fresh=False)


class _AlreadyStored(Exception):
    """The direct COPY into raw met a sample already stored (PostgreSQL)."""


def _store(site_id: int, device_id: int, validated: Validated, timings: dict, *, fresh: bool) -> StoreResult:
    rows = validated.rows
    # PostgreSQL: each sample's fans as binary jsonb, once for both COPYs (raw, and live for the newest).
    fans = [_jsonb(r[6]) for r in rows] if connection.vendor == "postgresql" else None
    with transaction.atomic():
        started = time.perf_counter()
        if fans is not None:
            _staging_tables()
        inserted = _insert_raw(rows, site_id, device_id, validated.customer_of, fans, fresh=fresh)
        if inserted:
            # A collector replaying its spool after an outage sends samples older than the windows the
            # 5-minute rollup still re-rolls: move its cursor back (no query for recent samples).
            note_late_samples(min(row[1] for row in rows))
        written = time.perf_counter()
        changed = _upsert_live(rows, site_id, validated.customer_of, fans)
        if inserted or changed:
            outbox.publish(
                "telemetry.ingested",
                aggregate=f"edge_device:{device_id}",
                payload={
                    "site_id": site_id, "device_id": device_id, "accepted": inserted, "miner_ids": changed,
                    "newest_ts": max(row[1] for row in rows),
                },
            )  # fmt: skip
        timings["write"] = written - started
        timings["live"] = time.perf_counter() - written
        live_done = time.perf_counter()
    timings["commit"] = time.perf_counter() - live_done  # COMMIT and the outbox hand-off after it
    return StoreResult(inserted, len(rows) - inserted, changed)


# PostgreSQL stages each batch in two temporary tables, created once per connection (the pool keeps
# connections, so a request pays no DDL: creating and dropping them per request cost more than the
# COPY itself on a busy server) and emptied at commit (ON COMMIT DELETE ROWS: a truncate in place, and
# only in transactions that used them). They are unlogged and local to the session, so concurrent
# requests on other connections never see each other's rows.
_staged_connections: weakref.WeakSet = weakref.WeakSet()


def _staging_tables() -> None:
    raw_connection = connection.connection
    if raw_connection in _staged_connections:
        return
    with connection.cursor() as cursor:
        for name, like in (("_ingest_raw", "telemetry_raw"), ("_ingest_live", "telemetry_live")):
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE {like} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
    # Known to exist only once committed: a rollback of this transaction takes the tables with it.
    transaction.on_commit(lambda: _staged_connections.add(raw_connection))


def _staging_done(cursor, name: str) -> None:
    # Emptied at commit; but inside a caller's longer transaction (our atomic block is then a savepoint)
    # a second batch must not find this one's rows.
    if len(connection.atomic_blocks) > 1:
        cursor.execute(f"DELETE FROM {name}")


_EMPTY_JSONB = b"\x01[]"


def _jsonb(value: list) -> bytes:
    """A list as binary jsonb: the version byte (1), then the JSON text (orjson, one C call)."""
    return b"\x01" + orjson.dumps(value) if value else _EMPTY_JSONB


_FLOAT8_OID = postgres.types["float8"].oid
_EMPTY_FLOAT8_ARRAY = struct.pack(">iii", 0, 0, _FLOAT8_OID)
_float8_arrays: dict[int, struct.Struct] = {}


def _float8_array(values: list[float]) -> bytes:
    """A list of floats as a binary float8[] in one struct.pack call: one dimension, no nulls; each
    element its length (8), then the double."""
    count = len(values)
    if not count:
        return _EMPTY_FLOAT8_ARRAY
    packer = _float8_arrays.get(count)
    if packer is None:
        packer = _float8_arrays.setdefault(count, struct.Struct(">iiiii" + "id" * count))
    if count == 1:  # the usual window of a batch's own part: one sample
        return packer.pack(1, 0, _FLOAT8_OID, 1, 1, 8, values[0])
    interleaved = [8] * (2 * count)
    interleaved[1::2] = values
    return packer.pack(1, 0, _FLOAT8_OID, count, 1, *interleaved)


def _copy_rows(cursor, table: str, columns: str, types: tuple[str, ...], values: list[tuple]) -> None:
    raw_cursor = cursor.cursor  # psycopg's, under Django's wrapper
    # Django's wrapper maps psycopg's errors to its own and marks a broken connection unusable (so it is
    # not handed to the next request); a raw cursor's COPY bypasses it unless wrapped here.
    with (
        connection.wrap_database_errors,
        raw_cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        write = copy.write_row
        for row in values:
            write(row)


def _json(value: list) -> str:
    return orjson.dumps(value).decode() if value else _EMPTY_JSON


def _insert_raw(
    rows: list[tuple],
    site_id: int,
    device_id: int,
    customer_of: dict[int, int | None],
    fans: list[bytes] | None,
    *,
    fresh: bool,
) -> int:
    """``fans``: each row's fan_rpm as binary jsonb (PostgreSQL), None elsewhere."""
    columns = ", ".join(RAW_COLUMNS)
    if fans is not None:
        values = [
            (r[0], r[1], site_id, customer_of[r[0]], device_id, r[2], r[3], r[4], r[5], fan, r[7], r[8], r[9], r[10],
             _jsonb(r[11]) if r[11] else _EMPTY_JSONB)
            for r, fan in zip(rows, fans, strict=True)
        ]  # fmt: skip
        with connection.cursor() as cursor:
            # Fresh samples (the usual case) are copied straight into raw: half the database's work of
            # staging them first. One already stored makes the COPY fail, which undoes the transaction
            # (store_batch then runs it again with fresh=False: through the staging table and ON CONFLICT
            # DO NOTHING). No savepoint around the COPY: two round trips a batch that only a re-sent
            # batch would use.
            if fresh:
                try:
                    _copy_rows(cursor, "telemetry_raw", columns, RAW_WIRE_TYPES, values)
                except IntegrityError as exc:  # Django's, raised from psycopg's by wrap_database_errors
                    if isinstance(exc.__cause__, UniqueViolation):
                        raise _AlreadyStored from exc
                    raise
                return len(values)
            _copy_rows(cursor, "_ingest_raw", columns, RAW_WIRE_TYPES, values)
            cursor.execute(
                f"INSERT INTO telemetry_raw ({columns}) SELECT {columns} FROM _ingest_raw ORDER BY miner_id, ts "
                "ON CONFLICT (miner_id, ts) DO NOTHING"
            )
            inserted = cursor.rowcount
            _staging_done(cursor, "_ingest_raw")
            return inserted
    adapt_ts = connection.ops.adapt_datetimefield_value
    per_row = len(RAW_COLUMNS)
    chunk = max(1, (connection.features.max_query_params or 30_000) // per_row)
    inserted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * per_row) + ")"] * len(part))
            params: list = []
            for r in part:
                params.extend((r[0], adapt_ts(r[1]), site_id, customer_of[r[0]], device_id, r[2], r[3], r[4], r[5],
                               _json(r[6]), r[7], r[8], r[9], r[10], _json(r[11])))  # fmt: skip
            cursor.execute(
                f"INSERT INTO telemetry_raw ({columns}) VALUES {placeholders} ON CONFLICT (miner_id, ts) DO NOTHING",
                params,
            )
            inserted += cursor.rowcount
    return inserted


def _current_live(miner_ids: list[int]) -> dict[int, tuple]:
    """miner id → (last_seen as epoch seconds, window times, window hashrates, pool_url, fan_pct,
    power_mode) for the batch's miners that have a live row (SQLite: one writer at a time, no lock)."""
    rows = LiveStatus.objects.filter(miner_id__in=miner_ids).values_list(
        "miner_id", "last_seen", "hashrate_window_ts", "hashrate_window_ths", "pool_url", "fan_pct", "power_mode"
    )
    return {m: (seen.timestamp(), *rest) for m, seen, *rest in rows}


def _last_seen_of(miner_ids: list[int]) -> dict[int, float]:
    """miner id → live last_seen (epoch seconds), unlocked: last_seen only moves forward, so the locked
    row the upsert then finds has seen at least as much."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT miner_id, extract(epoch FROM last_seen)::float8 FROM telemetry_live WHERE miner_id = ANY(%s)",
            [miner_ids],
        )
        return dict(cursor.fetchall())


def _upsert_live(
    rows: list[tuple], site_id: int, customer_of: dict[int, int | None], fans: list[bytes] | None = None
) -> list[int]:
    """Upsert the live row of each miner whose newest sample here is newer than its live row; returns
    those miners' ids (ascending). ``fans``: each row's fan_rpm as binary jsonb (PostgreSQL: required).

    The window keeps the pairs of the last WINDOW_S seconds up to the newest sample: the live row's
    own, then this batch's samples newer than its ``last_seen``. A late sample (not newer) goes to raw
    and the rollups, but neither into live nor into the moving average. The settings (pool, fan duty,
    power mode) are each the latest that the batch's samples newer than ``last_seen`` give; a miner's
    samples that give none keep the live row's.

    PostgreSQL merges the window inside the upsert, against the row it has locked (no read of the live
    rows first); SQLite, a single writer, reads them and merges here. On PostgreSQL ``last_seen`` is read
    first only for a miner whose settings come from a sample other than its newest here (a late sample
    must not set them), which a collector's usual batch, one sample per miner, never has."""
    # rows are sorted by (miner, ts): each miner's samples are consecutive, its newest last.
    groups: list[tuple[int, int, int]] = []  # (miner id, first index, last index)
    start = 0
    count = len(rows)
    for i in range(1, count + 1):
        if i == count or rows[i][0] != rows[start][0]:
            groups.append((rows[start][0], start, i - 1))
            start = i
    postgres = connection.vendor == "postgresql"
    current = {} if postgres else _current_live([g[0] for g in groups])
    seen_of: dict[int, float] = {}
    if postgres:
        mixed = [
            g[0] for g in groups
            if g[1] != g[2] and any(r[12] is not None or r[13] is not None or r[14] is not None
                                    for r in rows[g[1] : g[2]])
        ]  # fmt: skip
        if mixed:
            seen_of = _last_seen_of(mixed)
    now = timezone.now()
    values: list[tuple] = []
    keeps: set[int] = set()  # PostgreSQL: miners whose batch gives some setting no value
    for miner_id, first, last in groups:
        newest = rows[last]
        newest_epoch = newest[1].timestamp()
        since = newest_epoch - WINDOW_S
        live = current.get(miner_id)
        if live is None:
            # PostgreSQL: the upsert leaves out what the live row has already seen, save the settings above.
            seen = seen_of.get(miner_id, float("-inf"))
            if newest_epoch <= seen:
                continue
            times, hashrates = [], []
            pool_url = fan_pct = power_mode = None
        else:
            seen, old_times, old_hashrates, pool_url, fan_pct, power_mode = live
            if newest_epoch <= seen:
                continue
            keep = bisect_right(old_times, since)  # ascending: the pairs after `since` are a suffix
            times, hashrates = old_times[keep:], old_hashrates[keep:]
        if first == last:  # one sample of this miner (the usual batch): no loop
            hashrate = newest[2]
            if hashrate is not None:
                times.append(newest_epoch)
                hashrates.append(hashrate)
            pool_url = newest[12] if newest[12] is not None else pool_url
            fan_pct = newest[13] if newest[13] is not None else fan_pct
            power_mode = newest[14] if newest[14] is not None else power_mode
        else:
            for r in rows[first : last + 1]:
                epoch = r[1].timestamp()
                if epoch <= seen:
                    continue
                hashrate = r[2]
                if hashrate is not None and epoch > since:
                    times.append(epoch)
                    hashrates.append(hashrate)
                pool_url = r[12] if r[12] is not None else pool_url
                fan_pct = r[13] if r[13] is not None else fan_pct
                power_mode = r[14] if r[14] is not None else power_mode
        if hashrates:
            total = 0.0
            for hashrate in hashrates:
                total += hashrate
            ghs = total / len(hashrates) * 1000
        else:
            ghs = None
        if postgres:
            if pool_url is None or fan_pct is None or power_mode is None:
                keeps.add(miner_id)
                pool_url = _KEEP_TEXT if pool_url is None else pool_url
                fan_pct = _KEEP_INT if fan_pct is None else fan_pct
                power_mode = _KEEP_TEXT if power_mode is None else power_mode
            # The lists already in their binary form (LIVE_WIRE_TYPES).
            values.append(
                (miner_id, site_id, customer_of.get(miner_id), newest[1], ghs, newest[2], _float8_array(times),
                 _float8_array(hashrates), newest[3], newest[4], newest[5], fans[last], newest[7], newest[8], newest[9],
                 newest[10], _jsonb(newest[11]) if newest[11] else _EMPTY_JSONB, now, pool_url, fan_pct, power_mode)
            )  # fmt: skip
            continue
        values.append(
            (miner_id, site_id, customer_of.get(miner_id), newest[1], ghs, newest[2], times, hashrates, newest[3],
             newest[4], newest[5], newest[6], newest[7], newest[8], newest[9], newest[10], newest[11], now,
             pool_url or "", fan_pct, power_mode or "")
        )  # fmt: skip
    if not values:
        return []
    if postgres:
        return _write_live_pg(values, keeps)
    _write_live_sqlite(values)
    return [v[0] for v in values]


# PostgreSQL: a setting the batch does not give is sent as a value no sample can hold (validation
# refuses control characters in pool_url; power_mode is one of three words; fan_pct is 0–100), and the
# upsert keeps the live row's own. A row inserted with one (the miner's first sample) gets the blank
# value ("" / null) right after, in the same transaction.
_KEEP_TEXT = "\x01"
_KEEP_INT = -1
_WINDOW = ("hashrate_ghs", "hashrate_window_ts", "hashrate_window_ths")
_LIVE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in LIVE_COLUMNS[1:] if c not in _WINDOW and c not in SETTINGS)
# The window: the live row's samples still inside the five minutes up to the new last_seen, then the
# batch's samples newer than the live row's last_seen (the batch sends those of its five minutes); the
# average over both. Times are ascending, so each part is a suffix: width_bucket() finds where it starts
# (binary search, no subquery per row: a JSON window merged with jsonb_array_elements() cost 13–16 µs a
# row, more than reading the rows first did; this costs ~4). On the row the upsert has locked, so
# concurrent batches of a miner merge in turn. Times are doubles of epoch seconds: extract(epoch)::float8
# and Python's datetime.timestamp() are both the correctly rounded double of the same microsecond count,
# so a sample's time and last_seen compare exactly on either side.
_OLD_FROM = (
    f"width_bucket(extract(epoch FROM EXCLUDED.last_seen)::float8 - {WINDOW_S}, telemetry_live.hashrate_window_ts)"
)
_NEW_FROM = "width_bucket(extract(epoch FROM telemetry_live.last_seen)::float8, EXCLUDED.hashrate_window_ts)"
_TS = f"telemetry_live.hashrate_window_ts[{_OLD_FROM} + 1:] || EXCLUDED.hashrate_window_ts[{_NEW_FROM} + 1:]"
_THS = f"telemetry_live.hashrate_window_ths[{_OLD_FROM} + 1:] || EXCLUDED.hashrate_window_ths[{_NEW_FROM} + 1:]"
_LIVE_PG_UPSERT = f"""
INSERT INTO telemetry_live ({", ".join(LIVE_COLUMNS_ALL)})
SELECT {", ".join(LIVE_COLUMNS_ALL)} FROM _ingest_live ORDER BY miner_id
ON CONFLICT (miner_id) DO UPDATE SET {_LIVE_SET},
    hashrate_window_ts = {_TS},
    hashrate_window_ths = {_THS},
    hashrate_ghs = (SELECT avg(v) * 1000 FROM unnest({_THS}) v),
    pool_url = CASE WHEN EXCLUDED.pool_url = chr(1) THEN telemetry_live.pool_url ELSE EXCLUDED.pool_url END,
    fan_pct = CASE WHEN EXCLUDED.fan_pct = {_KEEP_INT} THEN telemetry_live.fan_pct ELSE EXCLUDED.fan_pct END,
    power_mode = CASE WHEN EXCLUDED.power_mode = chr(1) THEN telemetry_live.power_mode ELSE EXCLUDED.power_mode END
WHERE EXCLUDED.last_seen > telemetry_live.last_seen
RETURNING miner_id, xmax = 0
"""
_LIVE_PG_BLANK = """
UPDATE telemetry_live SET pool_url = CASE WHEN pool_url = chr(1) THEN '' ELSE pool_url END,
    fan_pct = NULLIF(fan_pct, -1), power_mode = CASE WHEN power_mode = chr(1) THEN '' ELSE power_mode END
WHERE miner_id = ANY(%s)
"""


def _write_live_pg(values: list[tuple], keeps: set[int]) -> list[int]:
    """COPY to staging (like raw: a third of the client CPU of unnest() over array parameters), one
    upsert; the ids of the rows it wrote, ascending."""
    with connection.cursor() as cursor:
        _copy_rows(cursor, "_ingest_live", ", ".join(LIVE_COLUMNS_ALL), LIVE_WIRE_TYPES, values)
        cursor.execute(_LIVE_PG_UPSERT)
        written = cursor.fetchall()
        blank = [miner_id for miner_id, inserted in written if inserted and miner_id in keeps]
        if blank:
            cursor.execute(_LIVE_PG_BLANK, [blank])
        _staging_done(cursor, "_ingest_live")
    return sorted(miner_id for miner_id, _ in written)


def _write_live_sqlite(values: list[tuple]) -> None:
    columns = ", ".join(LIVE_COLUMNS_ALL)
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in LIVE_COLUMNS_ALL[1:])
    conflict = f"ON CONFLICT (miner_id) DO UPDATE SET {update} WHERE EXCLUDED.last_seen > telemetry_live.last_seen"
    adapt_ts = connection.ops.adapt_datetimefield_value
    per_row = len(LIVE_COLUMNS_ALL)
    chunk = max(1, (connection.features.max_query_params or 30_000) // per_row)
    with connection.cursor() as cursor:
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * per_row) + ")"] * len(part))
            params: list = []
            for v in part:
                params.extend((*v[:3], adapt_ts(v[3]), v[4], v[5], _json(v[6]), _json(v[7]), *v[8:11], _json(v[11]),
                               *v[12:16], _json(v[16]), adapt_ts(v[17]), *v[18:]))  # fmt: skip
            cursor.execute(f"INSERT INTO telemetry_live ({columns}) VALUES {placeholders} {conflict}", params)
