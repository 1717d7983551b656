"""Writing a validated sample batch: ``raw`` in one bulk write, ``live`` upserted, one outbox event,
all in one transaction.

PostgreSQL: the rows are COPY'd straight into ``telemetry_raw``; if one of them is already stored, that
COPY is undone and the rows go through a temporary staging table (emptied at commit) and one
``INSERT … SELECT … ON CONFLICT (miner_id, ts) DO NOTHING``. Both work whether ``telemetry_raw`` is
partitioned or not. Other databases (SQLite): multi-row ``INSERT … ON CONFLICT DO NOTHING`` in chunks
under the variable limit. A sample already stored (same miner and time) is a duplicate and changes
nothing, so a re-sent batch is harmless.

``live`` moves only forward: a miner's row is rewritten only when the batch holds a sample newer than
its ``last_seen``, and the upsert itself repeats that condition, so a late or out-of-order batch never
moves it back. ``hashrate_ghs`` is the mean of the (epoch s, TH/s) pairs in the five minutes up to the
newest sample, × 1000.

Rows are written in (miner, time) order and live rows locked in miner order, so two batches touching
the same miners wait for each other instead of deadlocking. Alert rules and rollups never run here: the
``telemetry.ingested`` event carries the miners whose live row changed to their handlers."""

from __future__ import annotations

# ruff: noqa: S608 - the SQL is built from this module's column constants and placeholders; values are parameters.
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.errors import UniqueViolation
from psycopg.pq import Format

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
    "miner_id", "site_id", "customer_id", "last_seen", "hashrate_ghs", "hashrate_ths_instant", "hashrate_window",
    "temp_chip_max_c", "temp_inlet_c", "temp_outlet_c", "fan_rpm", "power_w", "status", "accepted_shares",
    "rejected_shares", "errors", "updated_at",
)  # fmt: skip
_EMPTY_JSON = "[]"


# Binary COPY (a third less client CPU than text, and less parsing on the server) needs each column's
# exact type; the tests on PostgreSQL fail if a migration changes one.
RAW_PG_TYPES = (
    "int8", "timestamptz", "int4", "int4", "int4", "float8", "float8", "float8", "float8", "jsonb", "float8", "text",
    "int8", "int8", "jsonb",
)  # fmt: skip
LIVE_PG_TYPES = (
    "int8", "int4", "int4", "timestamptz", "float8", "float8", "jsonb", "float8", "float8", "float8", "jsonb", "float8",
    "text", "int8", "int8", "jsonb", "timestamptz",
)  # fmt: skip


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
    with transaction.atomic():
        started = time.perf_counter()
        if connection.vendor == "postgresql":
            _staging_tables()
        inserted = _insert_raw(rows, site_id, device_id, validated.customer_of)
        if inserted:
            # A collector replaying its spool after an outage sends samples older than the windows the
            # 5-minute rollup still re-rolls: move its cursor back (no query for recent samples).
            note_late_samples(min(row[1] for row in rows))
        written = time.perf_counter()
        changed = _upsert_live(rows, site_id, validated.customer_of)
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


class _JsonbListDumper(Dumper):
    """A list as binary jsonb (a version byte, then the text), through orjson in one call: half the client
    CPU of psycopg's own JSON dumper, which wraps json.dumps in two Python calls per value."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj):
        return b"\x01" + orjson.dumps(obj) if obj else b"\x01[]"


def _copy_rows(cursor, table: str, columns: str, types: tuple[str, ...], values: list[tuple]) -> None:
    raw_cursor = cursor.cursor  # psycopg's, under Django's wrapper
    raw_cursor.adapters.register_dumper(list, _JsonbListDumper)  # this cursor only
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


def _insert_raw(rows: list[tuple], site_id: int, device_id: int, customer_of: dict[int, int | None]) -> int:
    columns = ", ".join(RAW_COLUMNS)
    if connection.vendor == "postgresql":
        values = [
            (r[0], r[1], site_id, customer_of[r[0]], device_id, r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
             r[11])
            for r in rows
        ]  # fmt: skip
        with connection.cursor() as cursor:
            # Fresh samples (the usual case) are copied straight into raw: half the database's work of
            # staging them first. One already stored makes the COPY fail; it is then undone (savepoint)
            # and the batch goes through the staging table and ON CONFLICT DO NOTHING.
            try:
                with transaction.atomic():
                    _copy_rows(cursor, "telemetry_raw", columns, RAW_PG_TYPES, values)
                return len(values)
            except IntegrityError as exc:  # Django's, raised from psycopg's by wrap_database_errors
                if not isinstance(exc.__cause__, UniqueViolation):
                    raise
            _copy_rows(cursor, "_ingest_raw", columns, RAW_PG_TYPES, values)
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


def _current_live(miner_ids: list[int]) -> dict[int, tuple[float, list]]:
    """miner id → (last_seen as epoch seconds, window) for the batch's miners that have a live row,
    locked. Epoch floats compare exactly with ``datetime.timestamp()`` (both are the correctly rounded
    double of the same microsecond count) and cost no timezone-aware datetime per row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT miner_id, extract(epoch FROM last_seen)::float8, hashrate_window FROM telemetry_live "
                "WHERE miner_id = ANY(%s) ORDER BY miner_id FOR UPDATE",
                [miner_ids],
            )
            found = cursor.fetchall()
        # One parse for all windows instead of one per row.
        windows = orjson.loads("[" + ",".join(window or "[]" for _, _, window in found) + "]") if found else []
        return {row[0]: (row[1], window) for row, window in zip(found, windows, strict=True)}
    rows = LiveStatus.objects.filter(miner_id__in=miner_ids).values_list("miner_id", "last_seen", "hashrate_window")
    return {m: (seen.timestamp(), window or []) for m, seen, window in rows}


def _upsert_live(rows: list[tuple], site_id: int, customer_of: dict[int, int | None]) -> list[int]:
    """Upsert the live row of each miner whose newest sample here is newer than its live row; returns
    those miners' ids (ascending).

    The window keeps the pairs of the last WINDOW_S seconds up to the newest sample: the live row's
    own, then this batch's samples newer than its ``last_seen``. A late sample (not newer) goes to raw
    and the rollups, but neither into live nor into the moving average."""
    # rows are sorted by (miner, ts): each miner's samples are consecutive, its newest last.
    groups: list[tuple[int, int, int]] = []  # (miner id, first index, last index)
    start = 0
    count = len(rows)
    for i in range(1, count + 1):
        if i == count or rows[i][0] != rows[start][0]:
            groups.append((rows[start][0], start, i - 1))
            start = i
    current = _current_live([g[0] for g in groups])
    now = timezone.now()
    values: list[tuple] = []
    for miner_id, first, last in groups:
        newest = rows[last]
        newest_epoch = newest[1].timestamp()
        since = newest_epoch - WINDOW_S
        live = current.get(miner_id)
        if live is None:
            seen = float("-inf")
            pairs = []
        else:
            seen, old = live
            if newest_epoch <= seen:
                continue
            pairs = [pair for pair in old if pair[0] > since]
        for r in rows[first : last + 1]:
            hashrate = r[2]
            if hashrate is not None:
                epoch = r[1].timestamp()
                if epoch > seen and epoch > since:
                    pairs.append([int(epoch) if epoch.is_integer() else round(epoch, 3), hashrate])
        if pairs:
            total = 0.0
            for pair in pairs:
                total += pair[1]
            ghs = total / len(pairs) * 1000
        else:
            ghs = None
        values.append(
            (miner_id, site_id, customer_of.get(miner_id), newest[1], ghs, newest[2], pairs, newest[3], newest[4],
             newest[5], newest[6], newest[7], newest[8], newest[9], newest[10], newest[11], now)
        )  # fmt: skip
    if values:
        _write_live(values)
    return [v[0] for v in values]


_LIVE_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in LIVE_COLUMNS[1:])


def _write_live(values: list[tuple]) -> None:
    columns = ", ".join(LIVE_COLUMNS)
    conflict = (
        f"ON CONFLICT (miner_id) DO UPDATE SET {_LIVE_UPDATE} WHERE EXCLUDED.last_seen > telemetry_live.last_seen"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY, like raw: measured at a third of the client CPU of unnest() over 17 array parameters,
            # and faster on the server too.
            _copy_rows(cursor, "_ingest_live", columns, LIVE_PG_TYPES, values)
            cursor.execute(
                f"INSERT INTO telemetry_live ({columns}) SELECT {columns} FROM _ingest_live ORDER BY miner_id "
                + conflict
            )
            _staging_done(cursor, "_ingest_live")
            return
        adapt_ts = connection.ops.adapt_datetimefield_value
        per_row = len(LIVE_COLUMNS)
        chunk = max(1, (connection.features.max_query_params or 30_000) // per_row)
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * per_row) + ")"] * len(part))
            params: list = []
            for v in part:
                params.extend((*v[:3], adapt_ts(v[3]), v[4], v[5], _json(v[6]), *v[7:10], _json(v[10]), *v[11:15],
                               _json(v[15]), adapt_ts(v[16])))  # fmt: skip
            cursor.execute(f"INSERT INTO telemetry_live ({columns}) VALUES {placeholders} {conflict}", params)
