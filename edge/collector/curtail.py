"""CURTAIL on the edge: each target's action carried out, and what was changed put back at the window's end.

The server plans a curtailment per miner (``commands.risk.curtail_plan``) and sends the targets as objects
``{"serial", "action": "power_target" | "stop" | "none", "power_w": int | null}``:

- ``power_target``: the adapter's soft power target (``Adapter.set_power_target``: the simulator's
  ``power_target`` command, pyasic's ``set_power_limit``). Where the adapter raises ``UnsupportedCommand`` (stock
  cgminer, a firmware pyasic has no limit for) or no wattage was given, the miner is stopped instead (hashing
  disabled) and the result's message says so;
- ``stop``: hashing disabled. A miner that was not hashing because an operator had disabled it (status idle) is
  left alone: re-enabling it at the end would undo the operator's decision;
- ``none``: nothing to do ("no change needed").
A target given as a plain serial (a server from before per-target plans) is stopped.

At ``params["end"]`` the collector restores what it changed: the power target back to the one set before (or
cleared, back to the power mode read before), hashing enabled again. The plan is written to the collector's SQLite
state (table ``curtail_restores``, next to the nonces) before anything is sent to a miner and updated before each
step, so a collector restarted mid-window restores on time, one that was down at the end restores as soon as it
starts, and a crash between a change and its bookkeeping still restores (clearing a target that was never set and
enabling hashing that was never disabled are harmless). A restore that fails (the miner did not answer) is tried
again ``RESTORE_ATTEMPTS`` times, ``RESTORE_RETRY_S`` apart, then reported failed.

Overlapping curtailments of one miner: each restores the state it found. One received later that ends later found
the earlier one's curtailed state, so at the earlier one's end the miner is not touched: its restore steps are
handed over to the later one (run after the later one's own, at its end) and the earlier one reports "handed over".
One nested inside another (received later, ends sooner) simply puts back the outer one's curtailed state.

The restore is reported with ``POST /api/edge/v1/commands/{id}/ack`` ``{"nonce", "phase": "restore", "results"}``
(one result per target of the command), retried with backoff while the server cannot be reached. A server that
refuses it (400, 404, 409, 410, 422: one that does not know the restore phase yet) is not asked again: the results
stay in the table (state ``refused``) for whoever reads the spool."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.collector.adapters.base import Adapter, AdapterError, UnsupportedCommand
from edge.collector.sample import MinerSpec, Sample

log = logging.getLogger("edge.collector.curtail")

POWER_TARGET, STOP, NONE = "power_target", "stop", "none"
ACTIONS = (POWER_TARGET, STOP, NONE)
RESTORE_POWER, RESTORE_HASHING = "power_target", "hashing"  # what a target's restore puts back
RESTORE_ATTEMPTS = 3
RESTORE_RETRY_S = 30.0
ACK_BACKOFF_CAP_S = 300.0
SCHEDULED, RESTORED, ACKED, REFUSED = "scheduled", "restored", "acked", "refused"
REFUSED_ACK_STATUSES = {400, 404, 409, 410, 413, 422}  # the server will not take this restore report

_SCHEMA = """
CREATE TABLE IF NOT EXISTS curtail_restores (
    command_id TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    end_at TEXT NOT NULL,
    due_at REAL NOT NULL,
    state TEXT NOT NULL,
    targets TEXT NOT NULL,
    results TEXT,
    ack_attempts INTEGER NOT NULL DEFAULT 0,
    ack_next_at REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    restored_at REAL
);
CREATE INDEX IF NOT EXISTS curtail_restores_due ON curtail_restores (state, due_at);
"""


def parse_end(params: Mapping) -> datetime | None:
    """The window's end (``params["end"]``, ISO-8601 with a zone) as an aware UTC datetime, or None."""
    raw = params.get("end") if isinstance(params, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        end = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return end.astimezone(UTC) if end.utcoffset() is not None else None


def target_actions(targets) -> dict[str, tuple[str, int | None]]:
    """{serial: (action, power_w)} from the signed targets; a plain serial is a stop."""
    out: dict[str, tuple[str, int | None]] = {}
    for target in targets or []:
        if isinstance(target, str):
            out[target] = (STOP, None)
        elif isinstance(target, Mapping) and isinstance(target.get("serial"), str):
            watts = target.get("power_w")
            if isinstance(watts, float) and watts.is_integer():
                watts = int(watts)
            if isinstance(watts, bool) or not isinstance(watts, int):
                watts = None
            out[target["serial"]] = (str(target.get("action") or STOP), watts)
    return out


# --- the restore table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restore:
    seq: int  # the order the CURTAILs were received in (SQLite rowid)
    command_id: str
    nonce: str
    end_at: str
    due_at: float
    state: str
    targets: list[dict]
    results: list[dict] | None
    ack_attempts: int
    ack_next_at: float | None
    last_error: str | None


class RestoreStore:
    """Table ``curtail_restores`` of the collector's SQLite state: one row per CURTAIL, its targets' restore plans.

    Shares the spool's connection (autocommit), used by the collector's event loop thread only, like NonceStore."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _tx(self):
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def schedule(self, command_id: str, nonce: str, end: datetime, targets: list[dict], *, now: datetime) -> None:
        """Record a CURTAIL before it touches a miner: ``targets`` are ``{"serial", "miner": {...}}`` with nothing
        to restore yet (``plan`` fills that in). A command already recorded is left as it is."""
        rows = [{**t, "steps": [], "attempts": 0} for t in targets]
        self.db.execute(
            "INSERT OR IGNORE INTO curtail_restores (command_id, nonce, end_at, due_at, state, targets, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                command_id,
                nonce,
                end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                end.timestamp(),
                SCHEDULED,
                json.dumps(rows),
                now.timestamp(),
            ),
        )

    def plan(self, command_id: str, serial: str, restore: str | None, **previous) -> None:
        """What restoring ``serial`` will take (None: nothing), written before the change it undoes: one step
        ``{"restore": "power_target" | "hashing", "previous_limit_w", "previous_mode"}``."""
        step = {"restore": restore, "previous_limit_w": None, "previous_mode": None}
        step.update({k: v for k, v in previous.items() if k in ("previous_limit_w", "previous_mode")})
        self._update_target(command_id, serial, lambda target: target.update(steps=[step] if restore else []))

    def hand_over(self, command_id: str, serial: str, steps: list[dict]) -> None:
        """Append an earlier curtailment's restore ``steps`` for ``serial`` to this one's (run after its own)."""
        self._update_target(command_id, serial, lambda target: target["steps"].extend(steps))

    def _update_target(self, command_id: str, serial: str, change: Callable[[dict], None]) -> None:
        with self._tx():
            row = self.db.execute("SELECT targets FROM curtail_restores WHERE command_id = ?", (command_id,)).fetchone()
            if row is None:
                return
            targets = json.loads(row[0])
            for target in targets:
                if target["serial"] == serial:
                    change(target)
            self.db.execute(
                "UPDATE curtail_restores SET targets = ? WHERE command_id = ?", (json.dumps(targets), command_id)
            )

    def successor(self, restore: Restore, serial: str) -> Restore | None:
        """A curtailment of ``serial`` received after ``restore``'s and ending later, with something to restore
        on it: the one that must put ``serial`` back instead (see the module docstring)."""
        rows = self.db.execute(
            _SELECT + " WHERE state = ? AND rowid > ? AND due_at > ? ORDER BY due_at, rowid",
            (SCHEDULED, restore.seq, restore.due_at),
        ).fetchall()
        for row in map(_restore, rows):
            for target in row.targets:
                if target["serial"] == serial and target.get("steps") and target.get("result") is None:
                    return row
        return None

    def get(self, command_id: str) -> Restore | None:
        row = self.db.execute(_SELECT + " WHERE command_id = ?", (str(command_id),)).fetchone()
        return _restore(row) if row else None

    def due(self, now: datetime) -> list[Restore]:
        """Restores to run (scheduled, end reached) and reports to send (restored, next attempt reached)."""
        t = now.timestamp()
        rows = self.db.execute(
            _SELECT + " WHERE (state = ? AND due_at <= ?) OR (state = ? AND COALESCE(ack_next_at, 0) <= ?) "
            "ORDER BY due_at, command_id",
            (SCHEDULED, t, RESTORED, t),
        ).fetchall()
        return [_restore(row) for row in rows]

    def save_targets(self, command_id: str, targets: list[dict], *, due_at: float | None = None) -> None:
        if due_at is None:
            self.db.execute(
                "UPDATE curtail_restores SET targets = ? WHERE command_id = ?", (json.dumps(targets), command_id)
            )
        else:
            self.db.execute(
                "UPDATE curtail_restores SET targets = ?, due_at = ? WHERE command_id = ?",
                (json.dumps(targets), due_at, command_id),
            )

    def restored(self, command_id: str, targets: list[dict], results: list[dict], *, now: datetime) -> None:
        self.db.execute(
            "UPDATE curtail_restores SET state = ?, targets = ?, results = ?, restored_at = ?, ack_next_at = ? "
            "WHERE command_id = ?",
            (RESTORED, json.dumps(targets), json.dumps(results), now.timestamp(), now.timestamp(), command_id),
        )

    def ack_failed(self, command_id: str, error: str, *, next_at: float) -> None:
        self.db.execute(
            "UPDATE curtail_restores SET ack_attempts = ack_attempts + 1, ack_next_at = ?, last_error = ? "
            "WHERE command_id = ?",
            (next_at, error[:500], command_id),
        )

    def finish(self, command_id: str, state: str, error: str | None = None) -> None:
        self.db.execute(
            "UPDATE curtail_restores SET state = ?, last_error = COALESCE(?, last_error), "
            "ack_attempts = ack_attempts + 1 WHERE command_id = ?",
            (state, error[:500] if error else None, command_id),
        )

    def open_rows(self) -> list[dict]:
        """The restores not yet reported and acknowledged (for ``--status``): scheduled, restored, refused."""
        rows = self.db.execute(
            "SELECT command_id, end_at, state, ack_attempts, last_error FROM curtail_restores "
            "WHERE state != ? ORDER BY due_at, rowid",
            (ACKED,),
        ).fetchall()
        keys = ("command_id", "end_at", "state", "ack_attempts", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def pending(self) -> int:
        (count,) = self.db.execute(
            "SELECT COUNT(*) FROM curtail_restores WHERE state IN (?, ?)", (SCHEDULED, RESTORED)
        ).fetchone()
        return count


_SELECT = (
    "SELECT rowid, command_id, nonce, end_at, due_at, state, targets, results, ack_attempts, ack_next_at, last_error "
    "FROM curtail_restores"
)


def _restore(row) -> Restore:
    seq, command_id, nonce, end_at, due_at, state, targets, results, attempts, next_at, error = row
    return Restore(
        seq, command_id, nonce, end_at, due_at, state, json.loads(targets), json.loads(results) if results else None,
        attempts, next_at, error,
    )  # fmt: skip


def miner_json(miner: MinerSpec) -> dict:
    return {"host": miner.host, "port": miner.port, "adapter": miner.adapter, "model": miner.model}


# --- one target -----------------------------------------------------------------------------------------------


async def curtail_target(
    handler: Adapter,
    miner: MinerSpec,
    action: str,
    power_w: int | None,
    *,
    before: Sample | None,
    restores: RestoreStore | None,
    command_id: str,
    until: str,
) -> tuple[str, str]:
    """Carry out one target's action; (status, message). Raises AdapterError for a failed change."""
    if action == NONE:
        return "ok", "no change needed"
    if action not in ACTIONS:
        return "failed", f"unknown curtailment action {action!r}"

    def plan(restore: str | None, **previous) -> None:
        if restores is not None:
            restores.plan(command_id, miner.serial, restore, **previous)

    fallback = ""
    if action == POWER_TARGET:
        if power_w is None or power_w <= 0:
            fallback = "no power target given"
        else:
            plan(
                RESTORE_POWER,
                previous_limit_w=before.power_target_w if before is not None else None,
                previous_mode=before.power_mode if before is not None else None,
            )
            try:
                await handler.set_power_target(miner, power_w)
            except UnsupportedCommand as exc:
                plan(None)  # nothing was sent
                fallback = f"no power target on this miner ({exc})"
            else:
                return "ok", f"power target {power_w} W until {until}"
    if before is not None and before.status == "idle":
        plan(None)
        what = f"{fallback}; " if fallback else ""
        return "ok", f"{what}hashing was already disabled: left as it was, nothing to restore"
    plan(RESTORE_HASHING)
    await handler.execute(miner, "HASHING_DISABLE", {})
    if fallback:
        return "ok", f"{fallback}: hashing stopped instead until {until}"
    return "ok", f"hashing stopped until {until}"


async def restore_step(handler: Adapter, miner: MinerSpec, step: Mapping) -> str:
    """Undo one change curtail_target made on one miner; the result's message. Raises AdapterError."""
    kind = step.get("restore")
    if kind == RESTORE_POWER:
        previous = step.get("previous_limit_w")
        if isinstance(previous, int) and previous > 0:
            await handler.set_power_target(miner, previous)
            return f"power target back to {previous} W"
        await handler.clear_power_target(miner, mode=step.get("previous_mode"))
        return "power target cleared"
    if kind == RESTORE_HASHING:
        await handler.execute(miner, "HASHING_ENABLE", {})
        return "hashing enabled again"
    return "nothing to restore"


async def run_restore(
    restore: Restore,
    adapter: Callable[[str], Adapter],
    miners: Mapping[str, MinerSpec],
    *,
    store: RestoreStore,
    now: datetime,
) -> list[dict] | None:
    """Restore every target of ``restore`` not yet restored; the results when all are done (else None: some will
    be tried again after RESTORE_RETRY_S)."""
    targets = [dict(t) for t in restore.targets]
    retry = False
    for target in targets:
        if target.get("result") is not None:
            continue
        serial = target["serial"]
        if not target.get("steps"):
            target["result"] = {"miner": serial, "status": "ok", "message": "nothing to restore"}
            continue
        later = store.successor(restore, serial)
        if later is not None:
            store.hand_over(later.command_id, serial, target["steps"])
            message = f"handed over to CURTAIL {later.command_id}, which curtails it until {later.end_at}"
            target.update(steps=[], result={"miner": serial, "status": "ok", "message": message})
            continue
        spec = miners.get(serial)
        if spec is None and isinstance(target.get("miner"), Mapping):
            m = target["miner"]
            spec = MinerSpec(serial, str(m["host"]), int(m["port"]), str(m.get("adapter") or "cgminer"), m.get("model"))
        if spec is None:
            target["result"] = {"miner": serial, "status": "failed", "message": "restore: miner unknown to this edge"}
            continue
        done = target.setdefault("done", [])
        try:
            while target["steps"]:  # each step done is dropped, so a retry goes on from the first one left
                done.append(await restore_step(adapter(spec.adapter), spec, target["steps"][0]))
                target["steps"] = target["steps"][1:]
            target["result"] = {"miner": serial, "status": "ok", "message": "; ".join(done)}
        except UnsupportedCommand as exc:
            target["result"] = {"miner": serial, "status": "unsupported", "message": f"restore: {exc}"[:500]}
        except Exception as exc:  # AdapterError, or the adapter's bug: the miner stays as it is, retried
            target["attempts"] = int(target.get("attempts") or 0) + 1
            text = str(exc) if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {exc}"
            log.warning("%s: restore after CURTAIL %s failed (attempt %d): %s", serial, restore.command_id,
                        target["attempts"], text)  # fmt: skip
            if target["attempts"] >= RESTORE_ATTEMPTS:
                target["result"] = {"miner": serial, "status": "failed", "message": f"restore failed: {text}"[:500]}
            else:
                retry = True
    if retry:
        store.save_targets(restore.command_id, targets, due_at=now.timestamp() + RESTORE_RETRY_S)
        return None
    results = [t["result"] for t in targets]
    store.restored(restore.command_id, targets, results, now=now)
    return results


def ack_delay(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Backoff before the next restore report: between half and all of min(cap, 2^attempts) seconds."""
    ceiling = min(ACK_BACKOFF_CAP_S, 2.0**attempts)
    return ceiling / 2 + rng() * ceiling / 2
