"""The local spool: every batch is written here first and deleted only after the server answered 2xx.

One SQLite file (stdlib sqlite3, WAL, synchronous=FULL so a committed batch survives a power cut). Each row
is one request body exactly as it will be sent (gzip-compressed JSON), so a replay re-sends the same bytes,
oldest first. Tables:

- ``batches``: kind ("telemetry" | "safety"), state ("pending" | "quarantined"), items, oldest sample time,
  attempts and the last error. Quarantined batches are ones the server refused as malformed (400/413...):
  kept for inspection (``--status``) and ``--requeue-quarantined``, never retried on their own.
- ``meta``: JSON values the running collector records (last push, counters) so ``--status`` can read them
  from another process.
- ``conditions``: the safety conditions open per miner, so a restart does not report them twice.

When full (more than ``max_samples`` telemetry samples pending) the OLDEST pending telemetry batches are
dropped, counted in meta ``dropped_samples`` and logged: on a long outage the newest data is the most useful
to the live view, and the disk stays bounded. Safety events are small and never dropped by this policy.
Only the thread that opened a Spool uses it (the collector's event loop)."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("edge.collector.spool")

TELEMETRY = "telemetry"
SAFETY = "safety"
KINDS = (SAFETY, TELEMETRY)  # the order pushes go in: safety events first

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL,
    oldest_ts TEXT,
    items INTEGER NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS batches_queue ON batches (state, kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conditions (
    miner TEXT NOT NULL, kind TEXT NOT NULL, since TEXT NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY (miner, kind)
);
"""
_UPSERT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


class SpoolLocked(RuntimeError):
    """Another collector process holds this spool."""


@dataclass(frozen=True)
class Batch:
    id: int
    kind: str
    items: int
    oldest_ts: str | None
    body: bytes  # gzip-compressed JSON request body
    attempts: int

    def payload(self) -> dict:
        return json.loads(gzip.decompress(self.body))


def encode_body(payload: dict) -> bytes:
    return gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


class Spool:
    def __init__(self, path: Path, *, max_samples: int = 2_000_000, max_quarantined: int = 100, lock: bool = True):
        self.path = Path(path)
        self.max_samples = max_samples
        self.max_quarantined = max_quarantined
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = None
        if lock:
            self._lock_fd = os.open(f"{self.path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                self._lock_fd = None
                raise SpoolLocked(f"{self.path} is in use by another collector (lock {self.path}.lock)") from None
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    @classmethod
    def open_readonly(cls, path: Path) -> Spool:
        """For ``--status`` while a collector runs: no lock taken (WAL lets readers in)."""
        return cls(path, lock=False)

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def _tx(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- batches --------------------------------------------------------------------------------------------

    def add(
        self,
        kind: str,
        payload: dict,
        *,
        items: int,
        oldest_ts: str | None,
        opened: list[tuple[str, str, str, str]] = (),
        closed: list[tuple[str, str]] = (),
    ) -> tuple[int, int]:
        """Store one request body; returns (batch id, samples dropped to stay within max_samples).

        ``opened``/``closed`` update the safety conditions in the same transaction as the events that report
        them, so a crash cannot record a condition whose event was never spooled."""
        if kind not in KINDS:
            raise ValueError(kind)
        body = encode_body(payload)
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO batches (kind, created_at, oldest_ts, items, body) VALUES (?, ?, ?, ?, ?)",
                (kind, time.time(), oldest_ts, items, body),
            )
            batch_id = cur.lastrowid
            self._write_conditions(opened, closed)
            dropped = self._enforce_limit(keep=batch_id) if kind == TELEMETRY else 0
        if dropped:
            log.warning(
                "spool full (more than %d samples pending): dropped the oldest %d samples; total dropped %d",
                self.max_samples,
                dropped,
                self.get_meta("dropped_samples", 0),
            )
        return batch_id, dropped

    def _enforce_limit(self, *, keep: int) -> int:
        dropped = 0
        (pending,) = self.db.execute(
            "SELECT COALESCE(SUM(items), 0) FROM batches WHERE kind = ? AND state = 'pending'", (TELEMETRY,)
        ).fetchone()
        while pending > self.max_samples:
            row = self.db.execute(
                "SELECT id, items FROM batches WHERE kind = ? AND state = 'pending' AND id != ? ORDER BY id LIMIT 1",
                (TELEMETRY, keep),
            ).fetchone()
            if row is None:
                break
            self.db.execute("DELETE FROM batches WHERE id = ?", (row[0],))
            pending -= row[1]
            dropped += row[1]
        if dropped:
            self._incr_meta("dropped_samples", dropped)
        return dropped

    def next_batch(self, kind: str) -> Batch | None:
        row = self.db.execute(
            "SELECT id, kind, items, oldest_ts, body, attempts FROM batches "
            "WHERE state = 'pending' AND kind = ? ORDER BY id LIMIT 1",
            (kind,),
        ).fetchone()
        return Batch(*row) if row else None

    def pending(self, kind: str) -> list[Batch]:
        rows = self.db.execute(
            "SELECT id, kind, items, oldest_ts, body, attempts FROM batches "
            "WHERE state = 'pending' AND kind = ? ORDER BY id",
            (kind,),
        ).fetchall()
        return [Batch(*row) for row in rows]

    def delete(self, batch_id: int) -> None:
        self.db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    def record_failure(self, batch_id: int, error: str) -> None:
        self.db.execute(
            "UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error[:500], batch_id)
        )

    def quarantine(self, batch_id: int, reason: str) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE batches SET state = 'quarantined', attempts = attempts + 1, last_error = ? WHERE id = ?",
                (reason[:500], batch_id),
            )
            rows = self.db.execute(
                "SELECT id, items FROM batches WHERE state = 'quarantined' ORDER BY id DESC LIMIT -1 OFFSET ?",
                (self.max_quarantined,),
            ).fetchall()
            for old_id, items in rows:
                self.db.execute("DELETE FROM batches WHERE id = ?", (old_id,))
                self._incr_meta("dropped_quarantined_samples", items)
        if rows:
            log.warning("quarantine holds more than %d batches: deleted the oldest %d", self.max_quarantined, len(rows))

    def quarantined(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, kind, items, oldest_ts, attempts, last_error FROM batches WHERE state = 'quarantined' "
            "ORDER BY id"
        ).fetchall()
        keys = ("id", "kind", "items", "oldest_ts", "attempts", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def requeue_quarantined(self) -> int:
        """Put quarantined batches back in the queue, in their original order (ids are kept)."""
        cur = self.db.execute("UPDATE batches SET state = 'pending', attempts = 0 WHERE state = 'quarantined'")
        return cur.rowcount

    def depth(self) -> dict:
        """Pending and quarantined batches and items per kind, and the oldest pending sample time."""
        out = {"pending_batches": 0, "pending_samples": 0, "pending_safety_events": 0, "quarantined_batches": 0}
        for kind, state, batches, items in self.db.execute(
            "SELECT kind, state, COUNT(*), COALESCE(SUM(items), 0) FROM batches GROUP BY kind, state"
        ):
            if state == "quarantined":
                out["quarantined_batches"] += batches
                continue
            out["pending_batches"] += batches
            out["pending_samples" if kind == TELEMETRY else "pending_safety_events"] += items
        (oldest,) = self.db.execute(
            "SELECT MIN(oldest_ts) FROM batches WHERE state = 'pending' AND kind = ?", (TELEMETRY,)
        ).fetchone()
        out["oldest_spooled_ts"] = oldest
        return out

    # --- meta -----------------------------------------------------------------------------------------------

    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, **values) -> None:
        with self._tx():
            for key, value in values.items():
                self.db.execute(
                    _UPSERT_META,
                    (key, json.dumps(value)),
                )

    def _incr_meta(self, key: str, by: int) -> None:
        current = self.get_meta(key, 0)
        self.db.execute(_UPSERT_META, (key, json.dumps(current + by)))

    def incr_meta(self, key: str, by: int = 1) -> None:
        with self._tx():
            self._incr_meta(key, by)

    def all_meta(self) -> dict:
        return {key: json.loads(value) for key, value in self.db.execute("SELECT key, value FROM meta ORDER BY key")}

    # --- safety conditions ----------------------------------------------------------------------------------

    def open_conditions(self) -> dict[tuple[str, str], tuple[str, str]]:
        """{(miner, kind): (since, event_id)} for the conditions currently open."""
        rows = self.db.execute("SELECT miner, kind, since, event_id FROM conditions")
        return {(miner, kind): (since, event_id) for miner, kind, since, event_id in rows}

    def set_conditions(self, opened: list[tuple[str, str, str, str]], closed: list[tuple[str, str]]) -> None:
        with self._tx():
            self._write_conditions(opened, closed)

    def _write_conditions(self, opened, closed) -> None:
        self.db.executemany("DELETE FROM conditions WHERE miner = ? AND kind = ?", closed)
        self.db.executemany(
            "INSERT OR REPLACE INTO conditions (miner, kind, since, event_id) VALUES (?, ?, ?, ?)", opened
        )
