"""The live list's sort keys (``LiveOrder``): temperature, hashrate and last seen of each live row, kept
in a narrow table of their own so that ingest's rewrite of a miner's live row (once a sample) changes no
indexed column and PostgreSQL updates it in place (HOT: no index entries at all).

They are copied from the live rows by ``refresh_order`` (the ``telemetry.live_order_refresh`` job,
every few seconds) for every row whose keys moved, and by ``sync_order`` at once for rows that must be
listed immediately: a miner's first sample (ingest), rows written through the ORM (``LiveStatus.save``
and ``bulk_create``). So the list is sorted by the values as of the last refresh, at most one refresh
interval old, and shows each row's current values; a row whose keys moved since is found where it was.

Both statements write in miner order, like ingest, so they never deadlock with it."""

from __future__ import annotations

# ruff: noqa: S608 - the SQL is built from this module's constants; values are parameters.
from collections.abc import Sequence

from django.db import connection

_KEYS = ("site_id", "temp_chip_max_c", "hashrate_ghs", "last_seen")
_COLUMNS = "miner_id, " + ", ".join(_KEYS)
_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in _KEYS)


def _distinct() -> str:
    # SQLite spells IS DISTINCT FROM as IS NOT.
    return "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"


def sync_order(miner_ids: Sequence[int]) -> None:
    """Copy the sort keys of these miners' live rows now (missing rows are skipped)."""
    ids = sorted(set(miner_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            where, params = "miner_id = ANY(%s)", [ids]
        else:
            where, params = f"miner_id IN ({', '.join(['%s'] * len(ids))})", ids
        cursor.execute(
            f"INSERT INTO telemetry_live_order ({_COLUMNS}) SELECT {_COLUMNS} FROM telemetry_live WHERE {where} "
            f"ORDER BY miner_id ON CONFLICT (miner_id) DO UPDATE SET {_SET}",
            params,
        )


def refresh_order() -> dict:
    """Bring every sort key up to its live row: rows whose keys moved (or that have none yet) are
    rewritten, the others left alone; keys of live rows deleted since are dropped. One statement each:
    a hash join of the two tables (~0.1 s for 100,000 miners) plus the rows that changed."""
    distinct = _distinct()
    changed = " OR ".join(f"o.{c} {distinct} l.{c}" for c in _KEYS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO telemetry_live_order ({_COLUMNS}) "
            f"SELECT l.miner_id, {', '.join('l.' + c for c in _KEYS)} FROM telemetry_live l "
            "LEFT JOIN telemetry_live_order o ON o.miner_id = l.miner_id "
            f"WHERE o.miner_id IS NULL OR {changed} ORDER BY l.miner_id "
            f"ON CONFLICT (miner_id) DO UPDATE SET {_SET}"
        )
        updated = cursor.rowcount
        cursor.execute(
            "DELETE FROM telemetry_live_order WHERE NOT EXISTS "
            "(SELECT 1 FROM telemetry_live l WHERE l.miner_id = telemetry_live_order.miner_id)"
        )
        deleted = cursor.rowcount
    return {"updated": updated, "deleted": deleted}
