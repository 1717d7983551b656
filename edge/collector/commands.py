"""Commands from the server, on the edge: verified before anything is sent to a miner, then carried out through
the miner's adapter (issue 8). No Django, nothing from the server's code: the signature is checked with
``edge.signing``, which writes the same canonical JSON as the server.

An envelope (one command of the poll answer) is an object holding exactly the ten signed fields of
``edge.signing.SIGNED_FIELDS`` plus ``"signature"``; any other field is refused, so nothing unsigned can steer a
miner. ``CommandVerifier.verify`` checks, in this order, and answers a ``Refusal`` with the first failure:

1. ``malformed``: not an object, a field missing or extra, a signature that is not a string;
2. ``bad_signature``: the HMAC does not match (any field tampered with, or another device's key);
3. ``malformed`` again for a signed but unusable command: wrong types, timestamps that are not ISO-8601 with a
   zone, ``expires_at`` not after ``signed_at``, a lifetime above ``max_lifetime_s``;
4. ``wrong_site``: ``site_id`` is not this device's site (compared as text: 7 and "7" are the same site);
5. ``expired``: ``expires_at`` is not in the future by the device's clock (no tolerance);
6. ``clock_skew``: ``signed_at`` is more than ``max_skew_s`` ahead of the device's clock;
7. ``replayed``: the nonce was accepted before. Accepting it records it in the ``NonceStore`` (SQLite, durable)
   *before* the command runs, so a crash mid-command never runs it twice (at most once); the result recorded
   afterwards is handed back with a replay so the device can acknowledge again.

Nonces are kept until ``max_skew_s`` after their command's expiry (a command is refused as expired by then even
if the clock stepped back by up to the tolerance), then pruned.

``execute(verified, adapter, miners)`` runs the command on each target through the adapter's
``execute(miner, command, params)`` (CURTAIL: per target action, see ``edge.collector.curtail``) and returns one
result per target for the acknowledgement: ``{"miner", "status": "ok" | "failed" | "unsupported", "message",
"before_state"?}``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.collector.adapters.base import COMMANDS, Adapter, AdapterError, UnsupportedCommand
from edge.collector.sample import MinerSpec, Sample
from edge.signing import SIGNATURE_FIELD, SIGNED_FIELDS, key_from_secret, signature_matches, signed_part

log = logging.getLogger("edge.collector.commands")

MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
WRONG_SITE = "wrong_site"
EXPIRED = "expired"
CLOCK_SKEW = "clock_skew"
REPLAYED = "replayed"
REASONS = (MALFORMED, BAD_SIGNATURE, WRONG_SITE, EXPIRED, CLOCK_SKEW, REPLAYED)

OK = "ok"
FAILED = "failed"
UNSUPPORTED = "unsupported"

MAX_NONCE_CHARS = 200
MAX_TARGETS = 10_000


# --- the nonce store --------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS command_nonces (
    nonce TEXT PRIMARY KEY,
    command_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    accepted_at REAL NOT NULL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS command_nonces_expiry ON command_nonces (expires_at);
"""


class NonceStore:
    """The nonces of accepted commands, in a table ``command_nonces`` of the collector's SQLite state.

    Give it the spool's file (``config.spool_path``, WAL mode, it opens its own connection) or an open connection
    in autocommit mode (``Spool.db``) to share; only the thread that opened it uses it, like the spool."""

    def __init__(self, path_or_db: Path | str | sqlite3.Connection):
        if isinstance(path_or_db, sqlite3.Connection):
            self.db, self._owned = path_or_db, False
        else:
            path = Path(path_or_db)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._owned = True
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        if self._owned:
            self.db.close()

    @contextlib.contextmanager
    def _tx(self):
        if self.db.in_transaction:  # a caller's transaction on a shared connection
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def remember(self, nonce: str, *, command_id: str, expires_at: datetime, now: datetime, keep_s: float) -> bool:
        """Record ``nonce`` (kept until ``keep_s`` after ``expires_at``); False if it is already known. Prunes
        the nonces whose time is over in the same transaction."""
        with self._tx():
            self.db.execute("DELETE FROM command_nonces WHERE expires_at < ?", (now.timestamp() - keep_s,))
            cur = self.db.execute(
                "INSERT OR IGNORE INTO command_nonces (nonce, command_id, expires_at, accepted_at) VALUES (?, ?, ?, ?)",
                (nonce, command_id, expires_at.timestamp(), now.timestamp()),
            )
            return cur.rowcount == 1

    def prune(self, now: datetime, *, keep_s: float) -> int:
        """Forget the nonces of commands expired more than ``keep_s`` before ``now``; returns how many."""
        with self._tx():
            cur = self.db.execute("DELETE FROM command_nonces WHERE expires_at < ?", (now.timestamp() - keep_s,))
            return cur.rowcount

    def knows(self, nonce: str) -> bool:
        return self.db.execute("SELECT 1 FROM command_nonces WHERE nonce = ?", (nonce,)).fetchone() is not None

    def record_result(self, nonce: str, results: list[dict]) -> None:
        """Keep the per-miner results of the command, handed back if its envelope is delivered again."""
        self.db.execute("UPDATE command_nonces SET result = ? WHERE nonce = ?", (json.dumps(results), nonce))

    def result_of(self, nonce: str) -> list[dict] | None:
        row = self.db.execute("SELECT result FROM command_nonces WHERE nonce = ?", (nonce,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM command_nonces").fetchone()[0]


# --- verification -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCommand:
    command_id: str
    site_id: str | int
    type: str
    targets: tuple[str, ...]
    params: dict
    priority: int | None
    expires_at: datetime
    signed_at: datetime
    dedupe_key: str | None
    nonce: str
    payload: dict = field(repr=False)  # the signed fields as received


@dataclass(frozen=True)
class Refusal:
    reason: str  # one of REASONS
    message: str
    command_id: str | None = None
    previous_result: list[dict] | None = None  # with "replayed": what the first delivery did, if recorded

    def __bool__(self) -> bool:  # `if result:` reads as "verified"
        return False


def _parse_time(value, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not ISO-8601: {value[:40]!r}") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"{name} has no time zone")
    return parsed.astimezone(UTC)


def _target_serial(target) -> str:
    if isinstance(target, Mapping):
        target = target.get("serial")
    if not isinstance(target, str) or not target:
        raise ValueError("targets must be miner serials")
    return target


class CommandVerifier:
    """Checks envelopes for one device: its HMAC key, its site, its nonce store and its clock."""

    def __init__(
        self,
        secret: str | bytes,
        nonce_store: NonceStore,
        clock: Callable[[], datetime] | None = None,
        *,
        site_id: str | int,
        max_skew_s: float = 300.0,
        max_lifetime_s: float = 86_400.0,
    ):
        if site_id is None or site_id == "":
            raise ValueError("this device's site is unknown (no site_id in credentials.json): register it again")
        self.key = key_from_secret(secret)
        if not self.key:
            raise ValueError("empty HMAC key")
        self.nonces = nonce_store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.site_id = site_id
        self.max_skew_s = max_skew_s
        self.max_lifetime_s = max_lifetime_s

    def verify(self, envelope) -> VerifiedCommand | Refusal:
        if not isinstance(envelope, Mapping):
            return Refusal(MALFORMED, "a command must be an object")
        raw_id = envelope.get("command_id")
        command_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        missing = [name for name in (*SIGNED_FIELDS, SIGNATURE_FIELD) if name not in envelope]
        extra = sorted(str(k) for k in envelope if k not in SIGNED_FIELDS and k != SIGNATURE_FIELD)
        if missing or extra:
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unsigned fields {', '.join(extra)}" if extra else "",
                )
                if part
            )
            return Refusal(MALFORMED, f"command envelope: {detail}", command_id)
        if not isinstance(envelope[SIGNATURE_FIELD], str):
            return Refusal(MALFORMED, "the signature must be a base64 string", command_id)
        if not signature_matches(envelope, envelope[SIGNATURE_FIELD], self.key):
            return Refusal(BAD_SIGNATURE, "the signature does not match this device's key", command_id)

        payload = signed_part(envelope)
        try:
            command = self._command(payload, command_id)
        except ValueError as exc:
            return Refusal(MALFORMED, str(exc), command_id)
        if str(command.site_id) != str(self.site_id):
            return Refusal(
                WRONG_SITE, f"command for site {command.site_id}, this device is at {self.site_id}", command_id
            )
        now = self.clock().astimezone(UTC)
        if command.expires_at <= now:
            return Refusal(EXPIRED, f"expired at {payload['expires_at']}", command_id)
        if command.signed_at > now + timedelta(seconds=self.max_skew_s):
            return Refusal(
                CLOCK_SKEW,
                f"signed at {payload['signed_at']}, more than {self.max_skew_s:g} s ahead of this device's clock",
                command_id,
            )
        if not self.nonces.remember(
            command.nonce, command_id=command.command_id, expires_at=command.expires_at, now=now, keep_s=self.max_skew_s
        ):
            return Refusal(
                REPLAYED, "this command was already received", command_id, self.nonces.result_of(command.nonce)
            )
        return command

    def _command(self, payload: dict, command_id: str | None) -> VerifiedCommand:
        if command_id is None or not command_id:
            raise ValueError("command_id must be a string or an integer")
        kind = payload["type"]
        if not isinstance(kind, str) or not kind:
            raise ValueError("type must be a string")
        targets = payload["targets"]
        if not isinstance(targets, list) or len(targets) > MAX_TARGETS:
            raise ValueError(f"targets must be a list of at most {MAX_TARGETS} miners")
        serials = tuple(_target_serial(t) for t in targets)
        params = payload["params"]
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError("params must be an object")
        priority = payload["priority"]
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise ValueError("priority must be an integer")
        nonce = payload["nonce"]
        if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_CHARS:
            raise ValueError(f"nonce must be a string of 1–{MAX_NONCE_CHARS} characters")
        dedupe_key = payload["dedupe_key"]
        if dedupe_key is not None and not isinstance(dedupe_key, str):
            raise ValueError("dedupe_key must be a string")
        site_id = payload["site_id"]
        if isinstance(site_id, bool) or not isinstance(site_id, str | int):
            raise ValueError("site_id must be a string or an integer")
        expires_at = _parse_time(payload["expires_at"], "expires_at")
        signed_at = _parse_time(payload["signed_at"], "signed_at")
        if expires_at <= signed_at:
            raise ValueError("expires_at must be after signed_at")
        if (expires_at - signed_at).total_seconds() > self.max_lifetime_s:
            raise ValueError(f"a command may live at most {self.max_lifetime_s:g} s")
        return VerifiedCommand(
            command_id=command_id,
            site_id=site_id,
            type=kind,
            targets=serials,
            params=params,
            priority=priority,
            expires_at=expires_at,
            signed_at=signed_at,
            dedupe_key=dedupe_key,
            nonce=nonce,
            payload=payload,
        )


# --- execution --------------------------------------------------------------------------------------------------

# The server's parameter names (commands.risk.validate_params) → the adapters' (adapters/cgminer.py, pyasic.py).
_RENAMES = {"SET_FAN": {"percent": "speed_pct"}, "POOL_SET": {"worker": "user"}}
# Legacy type names the server may still carry (commands.risk maps them too).
_LEGACY = {
    "reboot": "MINER_RESTART",
    "restart": "MINER_RESTART",
    "stop": "HASHING_DISABLE",
    "disable": "HASHING_DISABLE",
    "start": "HASHING_ENABLE",
    "enable": "HASHING_ENABLE",
    "set_pool": "POOL_SET",
    "set_fan": "SET_FAN",
    "power_mode": "POWER_MODE",
    "curtail": "CURTAIL",
}
_BEFORE_FIELDS = ("status", "hashrate_ths", "power_w", "fan_rpm", "temp_chip_max_c", "errors")


def adapter_params(command_type: str, params: Mapping) -> dict:
    """The command's parameters under the names the adapters read (percent → speed_pct, worker → user)."""
    renames = _RENAMES.get(command_type, {})
    out = {}
    for key, value in params.items():
        out[renames.get(key, key)] = value
    return out


def _adapter_for(adapter, miner: MinerSpec) -> Adapter:
    return adapter if isinstance(adapter, Adapter) else adapter(miner.adapter)


def _result(serial: str, status: str, message: str, before: dict | None = None) -> dict:
    out = {"miner": serial, "status": status, "message": message[:500]}
    if before is not None:
        out["before_state"] = before
    return out


def before_state(sample: Sample) -> dict:
    """What a command's acknowledgement reports of a miner just before it acted (the server keeps it for the
    rollback and the effect check: commands.risk.inverse reads pool_url, pool_worker, fan_percent, power_mode):
    status, hashrate_ths, power_w, fan_rpm, temp_chip_max_c, errors always; pool_url, pool_worker, fan_percent
    (0–100, or "auto" when the firmware drives the fans), power_mode and power_limit_w when the adapter read them."""
    data = sample.to_json()
    out = {name: data.get(name) for name in _BEFORE_FIELDS}
    fan_percent = None
    if sample.fan_mode == "auto":
        fan_percent = "auto"
    elif sample.fan_mode == "manual" and sample.fan_pct is not None:
        fan_percent = sample.fan_pct
    settings = {
        "pool_url": sample.pool_url,
        "pool_worker": sample.pool_worker,
        "fan_percent": fan_percent,
        "power_mode": sample.power_mode,
        "power_limit_w": sample.power_limit_w,
    }
    out.update({key: value for key, value in settings.items() if value is not None})
    return out


async def execute(
    verified: VerifiedCommand,
    adapter: Adapter | Callable[[str], Adapter],
    miners: Mapping[str, MinerSpec],
    *,
    read_before: bool = True,
    concurrency: int = 32,
    nonce_store: NonceStore | None = None,
    restores=None,
    now: datetime | None = None,
) -> list[dict]:
    """Carry out ``verified`` on each of its targets; one result per target, in the order of the targets.

    ``adapter`` is one adapter for every miner, or a function from an adapter name (``MinerSpec.adapter``) to the
    adapter (``Collector.adapter``). ``miners`` maps serials to the miners this device polls; a target it does
    not know fails with "unknown miner". With ``read_before`` each miner is polled first and the reading kept
    as ``before_state`` (what a rollback or the effect check compares with, see ``before_state``). A target's
    failure never stops the others. With ``nonce_store`` the results are recorded with the command's nonce.

    CURTAIL runs each target's planned action (``edge.collector.curtail``) and, with ``restores`` (a
    ``curtail.RestoreStore``), schedules the restore at ``params["end"]``; a CURTAIL without a readable end, or
    whose end has passed (``now``), changes nothing."""
    from edge.collector import curtail  # curtail builds on this module's results: imported when used

    kind = _LEGACY.get(verified.type, verified.type)
    gate = asyncio.Semaphore(max(1, concurrency))
    now = now or datetime.now(UTC)
    actions: dict = {}
    end = until = None
    if kind == "CURTAIL":
        end = curtail.parse_end(verified.params)
        refusal = None
        if end is None:
            refusal = "CURTAIL needs params end (ISO-8601 with a zone): nothing changed"
        elif end <= now:
            refusal = f"the curtailment window ended at {verified.params.get('end')}: nothing changed"
        if refusal:
            results = [_result(serial, FAILED, refusal) for serial in verified.targets]
            if nonce_store is not None:
                nonce_store.record_result(verified.nonce, results)
            return results
        until = end.strftime("%Y-%m-%dT%H:%M:%SZ")
        actions = curtail.target_actions((verified.payload or {}).get("targets") or list(verified.targets))
        if restores is not None:
            known = [
                {"serial": serial, "miner": curtail.miner_json(miners[serial])}
                for serial in dict.fromkeys(verified.targets)
                if serial in miners
            ]
            restores.schedule(str(verified.command_id), verified.nonce, end, known, now=now)

    async def one(serial: str) -> dict:
        if kind not in COMMANDS:
            return _result(serial, UNSUPPORTED, f"unknown command type {verified.type!r}")
        miner = miners.get(serial)
        if miner is None:
            return _result(serial, FAILED, "unknown miner: not in this collector's inventory")
        async with gate:
            try:
                handler = _adapter_for(adapter, miner)
            except Exception as exc:
                return _result(serial, UNSUPPORTED, f"no adapter {miner.adapter!r}: {exc}")
            before = sample = None
            if read_before or kind == "CURTAIL":  # a curtailment needs the settings it may have to restore
                try:
                    sample = await handler.poll(miner, ts=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                    before = before_state(sample)
                except Exception:
                    log.warning("%s: could not read the state before %s", serial, kind, exc_info=True)
            try:
                if kind == "CURTAIL":
                    action, watts = actions.get(serial, (curtail.STOP, None))
                    status, message = await curtail.curtail_target(
                        handler, miner, action, watts, before=sample, restores=restores,
                        command_id=str(verified.command_id), until=until,
                    )  # fmt: skip
                    return _result(serial, status, message, before)
                answer = await handler.execute(miner, kind, adapter_params(kind, verified.params))
            except UnsupportedCommand as exc:
                return _result(serial, UNSUPPORTED, str(exc) or f"{kind} is not supported", before)
            except AdapterError as exc:
                return _result(serial, FAILED, str(exc) or f"{kind} failed", before)
            except Exception as exc:
                log.exception("%s: the %s adapter raised on %s", serial, miner.adapter, kind)
                return _result(serial, FAILED, f"adapter error: {type(exc).__name__}: {exc}", before)
            return _result(serial, OK, _message(answer) or "done", before)

    results = list(await asyncio.gather(*(one(serial) for serial in verified.targets)))
    if nonce_store is not None:
        nonce_store.record_result(verified.nonce, results)
    return results


def _message(answer) -> str:
    """The miner's own words when it gave some (cgminer STATUS Msg), else nothing."""
    if isinstance(answer, Mapping):
        for status in answer.get("STATUS") or []:
            if isinstance(status, Mapping) and status.get("Msg"):
                return str(status["Msg"])
    return ""
