"""Time partitions of the ``raw`` and ``history_5m`` layers, and retention of every layer.

On PostgreSQL ``telemetry_raw`` (by ``ts``) and ``telemetry_history_5m`` (by ``bucket``) are natively
RANGE-partitioned, one partition per UTC day, plus a DEFAULT partition so a row outside every partition
is still stored (ingest never fails for want of a partition). Daily partitions for both layers:

- ``raw`` is kept 24 h: a day's partition is dropped whole once its end is past retention, so between
  24 h and 48 h of samples are on disk and no row is ever deleted one by one.
- ``history_5m`` (90 days) at 100,000 miners holds 28.8 M rows a day: daily partitions keep each one a
  few GB with small indexes, let the daily rollup read exactly one partition, and let retention drop
  exactly the 91st day (weekly ones would hold up to a week more and be seven times bigger). About 95
  partitions is well within what the planner prunes cheaply.

Each partitioned table also carries a BRIN index on its time column (PostgreSQL only, not in Django's
model state): the 5-minute rollup reads a few minutes of a day's partition, and samples arrive in time
order, so a BRIN of a few pages finds them without a B-tree of hundreds of MB.

SQLite keeps plain tables; retention there is a DELETE by time (as it is, on PostgreSQL, for the rows
that landed in a DEFAULT partition).
"""

# ruff: noqa: S608 - table, column and partition names and bounds come from this module, never from input.
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db import connection as default_connection
from django.utils import timezone

# One advisory lock for partition upkeep: two retention runs (or a migration and a run) never create
# or drop the same partition at once. The number is arbitrary but fixed ("telemetry" in hex-ish).
ADVISORY_LOCK_KEY = 0x7E1E_3E7A
# DDL on a partitioned table waits for a lock on the parent; ingest holds it only briefly, so a short
# wait is enough, and a run that cannot get it fails and is retried an hour later.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Layer:
    name: str
    table: str
    column: str

    def retention(self) -> timedelta:
        if self.name == "raw":
            return timedelta(hours=settings.TELEMETRY_RAW_RETENTION_HOURS)
        return timedelta(days=settings.TELEMETRY_HISTORY_RETENTION_DAYS)

    @property
    def default_partition(self) -> str:
        return f"{self.table}_default"

    def partition_name(self, day: date) -> str:
        return f"{self.table}_p{day:%Y%m%d}"


RAW = Layer("raw", "telemetry_raw", "ts")
HISTORY_5M = Layer("history_5m", "telemetry_history_5m", "bucket")
LAYERS = (RAW, HISTORY_5M)
# The daily layers are kept at least this long whatever the setting says (reports and billing read them).
DAILY_MIN_RETENTION_DAYS = 365


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _literal(moment: datetime) -> str:
    # Generated from a date, never from input: safe to inline in DDL (bounds take no parameters).
    return f"'{moment.astimezone(UTC).isoformat()}'"


def _is_postgres(connection) -> bool:
    return connection.vendor == "postgresql"


def is_partitioned(table: str, *, connection=default_connection) -> bool:
    if not _is_postgres(connection):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
        return cursor.fetchone() is not None


def partitions_of(table: str, *, connection=default_connection) -> list[str]:
    """Names of the partitions attached to ``table`` (DEFAULT included), sorted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def _lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _create_partition(cursor, layer: Layer, day: date) -> None:
    """A partition for ``day``; rows already waiting for it in the DEFAULT partition move into it
    (PostgreSQL refuses a new partition whose range the DEFAULT partition still holds rows of)."""
    name, lo, hi = layer.partition_name(day), _day_start(day), _day_start(day + timedelta(days=1))
    bounds = f"FROM ({_literal(lo)}) TO ({_literal(hi)})"
    in_range = f"{layer.column} >= {_literal(lo)} AND {layer.column} < {_literal(hi)}"
    cursor.execute(f'SELECT 1 FROM "{layer.default_partition}" WHERE {in_range} LIMIT 1')
    if cursor.fetchone() is None:
        cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{layer.table}" FOR VALUES {bounds}')
        return
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{layer.table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{layer.default_partition}" WHERE {in_range} RETURNING *) '
        f'INSERT INTO "{name}" SELECT * FROM moved'
    )
    cursor.execute(f'ALTER TABLE "{layer.table}" ATTACH PARTITION "{name}" FOR VALUES {bounds}')


def _days_waiting_in_default(cursor, layer: Layer, since: datetime) -> set[date]:
    cursor.execute(
        f"SELECT DISTINCT CAST(({layer.column} AT TIME ZONE 'UTC') AS date) "
        f'FROM "{layer.default_partition}" WHERE {layer.column} >= %s',
        [since],
    )
    return {row[0] for row in cursor.fetchall()}


def ensure_partitions(*, ahead: int | None = None, now: datetime | None = None, connection=default_connection):
    """Create the daily partitions from yesterday to ``ahead`` days after today (default
    ``TELEMETRY_PARTITIONS_AHEAD_DAYS``), and one for every day within retention whose rows wait in the
    DEFAULT partition (the job was down, or a sample came from far ahead). Idempotent, and safe when two
    run at once (advisory lock). Returns the names created. A no-op on SQLite."""
    if not _is_postgres(connection):
        return []
    ahead = settings.TELEMETRY_PARTITIONS_AHEAD_DAYS if ahead is None else ahead
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    created: list[str] = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        _lock(cursor)
        for layer in LAYERS:
            if not is_partitioned(layer.table, connection=connection):
                continue
            existing = set(partitions_of(layer.table, connection=connection))
            days = {today + timedelta(days=n) for n in range(-1, ahead + 1)}
            days |= _days_waiting_in_default(cursor, layer, now - layer.retention())
            for day in sorted(days):
                if layer.partition_name(day) not in existing:
                    _create_partition(cursor, layer, day)
                    created.append(layer.partition_name(day))
    return created


_DAY_SUFFIX = re.compile(r"_p(\d{8})$")


def drop_expired_partitions(*, now: datetime | None = None, connection=default_connection) -> list[str]:
    """Drop every daily partition whose whole range is past its layer's retention (its end at or
    before ``now - retention``). Returns the names dropped. A no-op on SQLite."""
    if not _is_postgres(connection):
        return []
    now = now or timezone.now()
    dropped: list[str] = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        _lock(cursor)
        for layer in LAYERS:
            if not is_partitioned(layer.table, connection=connection):
                continue
            cutoff = now - layer.retention()
            for name in partitions_of(layer.table, connection=connection):
                match = _DAY_SUFFIX.search(name)
                if not match:
                    continue  # the DEFAULT partition: its old rows are deleted one by one
                end = _day_start(datetime.strptime(match.group(1), "%Y%m%d").date() + timedelta(days=1))
                if end <= cutoff:
                    cursor.execute(f'DROP TABLE "{name}"')
                    dropped.append(name)
    return dropped


def delete_expired(*, now: datetime | None = None, connection=default_connection) -> dict[str, int]:
    """Retention by DELETE: raw and 5-minute rows past retention on SQLite (on PostgreSQL only those in
    a DEFAULT partition: partitions are dropped whole), the site 5-minute layer (90 days, small, not
    partitioned), and the daily layers when ``TELEMETRY_DAILY_RETENTION_DAYS`` is set (never less than
    365 days; 0, the default, keeps them for good: reports and billing read them). Returns rows deleted
    per table."""
    now = now or timezone.now()
    ops = connection.ops
    deleted: dict[str, int] = {}
    targets: list[tuple[str, str, object]] = []
    for layer in LAYERS:
        table = layer.default_partition if is_partitioned(layer.table, connection=connection) else layer.table
        targets.append((table, layer.column, ops.adapt_datetimefield_value(now - layer.retention())))
    history_days = settings.TELEMETRY_HISTORY_RETENTION_DAYS
    targets.append(
        ("telemetry_site_history_5m", "bucket", ops.adapt_datetimefield_value(now - timedelta(days=history_days)))
    )
    daily_days = settings.TELEMETRY_DAILY_RETENTION_DAYS
    if daily_days:
        oldest_kept = now.astimezone(UTC).date() - timedelta(days=max(daily_days, DAILY_MIN_RETENTION_DAYS))
        for table in ("telemetry_daily", "telemetry_site_daily"):
            targets.append((table, "day", ops.adapt_datefield_value(oldest_kept)))
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for table, column, cutoff in targets:
            cursor.execute(f'DELETE FROM "{table}" WHERE "{column}" < %s', [cutoff])
            deleted[table] = cursor.rowcount
    return deleted


def summarize_new_ranges(layer: Layer, *, connection=default_connection) -> None:
    """Summarize the page ranges of the layer's BRIN indexes that are not yet: a range appended since
    the last summary is never skipped by a BRIN scan, so until autovacuum comes round a scan of the
    last five minutes would read every row written since (measured: 7 s instead of 4.5 s for the
    5-minute rollup of 100,000 miners). Costs a read of the pages written since the previous call (a
    minute of samples for the 5-minute job). Skipped when autovacuum holds the table (it summarizes as
    it goes): waiting for it would hold the rollup up, and cancelling it every minute would starve it.
    A no-op on SQLite."""
    if not _is_postgres(connection):
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('lock_timeout', '200ms', true)")
            cursor.execute(
                "SELECT brin_summarize_new_values(i.indexrelid) FROM pg_inherits h "
                "JOIN pg_index i ON i.indrelid = h.inhrelid JOIN pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = ic.relam WHERE h.inhparent = to_regclass(%s) AND am.amname = 'brin'",
                [layer.table],
            )
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError:
        pass


# ---------------------------------------------------------------------------------------------------
# Conversion (migration 0005): a plain table becomes a partitioned one with the same columns, primary
# key, indexes and check constraints, so Django's model state stays what migration 0004 says.


def convert_to_partitioned(layer: Layer, *, connection, now: datetime | None = None) -> None:
    """Rename the plain table aside, create the partitioned parent from it (LIKE: same columns,
    defaults, checks), recreate its primary key and indexes under their own names, add the DEFAULT
    partition and daily partitions for the rows it holds (within retention) and the days ahead, move
    the rows, drop the old table. Run inside the migration's transaction; does nothing if the table is
    already partitioned."""
    if is_partitioned(layer.table, connection=connection):
        return
    now = now or timezone.now()
    old = f"{layer.table}_unpartitioned"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u') ORDER BY conname",
            [layer.table],
        )
        key_constraints = cursor.fetchall()
        cursor.execute(
            "SELECT ic.relname, pg_get_indexdef(ic.oid) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass(%s) ORDER BY ic.relname",
            [layer.table],
        )
        indexes = cursor.fetchall()  # every index, those behind the key constraints included
        constraint_names = {name for name, _ in key_constraints}
        cursor.execute(f"SELECT min({layer.column}) FROM {layer.table}")
        oldest = cursor.fetchone()[0]

        cursor.execute(f'ALTER TABLE "{layer.table}" RENAME TO "{old}"')
        for name, _ in indexes:  # free the names (renaming a key's index renames the constraint too)
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:50]}_unpartitioned"')
        cursor.execute(
            f'CREATE TABLE "{layer.table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
            f"INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({layer.column})"
        )
        for name, definition in key_constraints:
            cursor.execute(f'ALTER TABLE "{layer.table}" ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            if name not in constraint_names:
                cursor.execute(definition)  # captured before the rename: names the new parent
        brin = f"{layer.table.removeprefix('telemetry_')}_{layer.column}_brin"
        # autosummarize: autovacuum summarizes each page range once it is full (see summarize_new_ranges).
        cursor.execute(
            f'CREATE INDEX "{brin}" ON "{layer.table}" USING brin ({layer.column}) WITH (autosummarize = on)'
        )
        cursor.execute(f'CREATE TABLE "{layer.default_partition}" PARTITION OF "{layer.table}" DEFAULT')

        today = now.astimezone(UTC).date()
        first = today - timedelta(days=1)
        if oldest is not None:
            first = min(first, max(oldest.astimezone(UTC).date(), (now - layer.retention()).date()))
        day = first
        while day <= today + timedelta(days=settings.TELEMETRY_PARTITIONS_AHEAD_DAYS):
            cursor.execute(
                f'CREATE TABLE "{layer.partition_name(day)}" PARTITION OF "{layer.table}" FOR VALUES '
                f"FROM ({_literal(_day_start(day))}) TO ({_literal(_day_start(day + timedelta(days=1)))})"
            )
            day += timedelta(days=1)
        cursor.execute(f'INSERT INTO "{layer.table}" SELECT * FROM "{old}"')
        cursor.execute(f'DROP TABLE "{old}"')
