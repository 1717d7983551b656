"""The CGMiner JSON-over-TCP API: request/response framing and a tiny asyncio client.

Shared by the simulator (server side) and the collector's CGMiner adapter (client side). Standard library only.

Client API (what the collector uses)::

    async def query(host: str, port: int, command: str, timeout: float = 5.0, *, parameter: str | None = None) -> dict
        Opens one TCP connection, sends {"command": command[, "parameter": parameter]}, reads the reply until the
        NUL byte (or EOF), closes, and returns the decoded JSON object. ``command`` may join several read commands
        with "+" ("summary+stats"): the reply is then {"summary": [<reply>], "stats": [<reply>], "id": 1}.
        The whole exchange (connect, send, read) is bounded by ``timeout`` seconds.
        A reply whose STATUS is "E" (unknown command, bad parameter...) is *returned*, not raised: test it with
        ``is_error(reply)`` or call ``raise_for_status(reply)``.
        Raises:
          CGMinerUnavailable   connection refused/reset, host unreachable, or timeout (CGMinerTimeout, a subclass):
                               for the collector this means "miner offline"
          CGMinerProtocolError the peer answered something that is not a JSON object
        Both subclass CGMinerError.

    def is_error(reply: dict) -> bool                 True if any STATUS section in the reply is "E" or "F"
    def raise_for_status(reply: dict) -> dict         raises CGMinerCommandError(code, msg) on an error reply
    def section(reply: dict, name: str) -> list[dict] e.g. section(reply, "SUMMARY"); works on a single reply only

Wire format (as cgminer's API-README describes it): the client writes one JSON object, the server answers one
JSON object followed by a NUL byte and closes the connection; one request per connection. Every reply carries
"STATUS": [{"STATUS": "S"|"I"|"W"|"E"|"F", "When": epoch_s, "Code": int, "Msg": str, "Description": str}] and
"id": 1, plus the command's own section ("SUMMARY", "STATS", "DEVS", "POOLS", "VERSION").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

__all__ = [
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "CGMinerCommandError",
    "CGMinerError",
    "CGMinerProtocolError",
    "CGMinerTimeout",
    "CGMinerUnavailable",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "is_error",
    "query",
    "raise_for_status",
    "section",
    "status",
]

MAX_REQUEST_BYTES = 8 * 1024
MAX_REPLY_BYTES = 4 * 1024 * 1024
TERMINATOR = b"\x00"


class CGMinerError(Exception):
    """Base of every error this module raises."""


class CGMinerUnavailable(CGMinerError):
    """No answer: connection refused or reset, unreachable, closed without a reply, or timed out."""


class CGMinerTimeout(CGMinerUnavailable):
    """The exchange took longer than the timeout."""


class CGMinerProtocolError(CGMinerError):
    """The peer answered, but not with a JSON object (or with more than MAX_REPLY_BYTES)."""


class CGMinerCommandError(CGMinerError):
    """The miner answered with an error STATUS (see raise_for_status)."""

    def __init__(self, code: int, msg: str):
        super().__init__(f"cgminer error {code}: {msg}")
        self.code = code
        self.msg = msg


# ---------------------------------------------------------------------------------------------------------------
# framing (both sides)


def encode_request(command: str, parameter: str | None = None) -> bytes:
    body: dict = {"command": command}
    if parameter is not None:
        body["parameter"] = parameter
    return json.dumps(body, separators=(",", ":")).encode()


def decode_request(data: bytes) -> tuple[str, str | None]:
    """Parse a request: the JSON form {"command", "parameter"?} or cgminer's plain-text form "command|parameter".

    Raises ValueError with a short reason on anything else (the server answers it with an error STATUS)."""
    text = data.rstrip(b"\x00\r\n ").decode("utf-8", errors="strict").strip()
    if not text:
        raise ValueError("empty request")
    if text.startswith("{"):
        body = json.loads(text)  # json.JSONDecodeError is a ValueError
        if not isinstance(body, dict):
            raise ValueError("request is not a JSON object")
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValueError("missing command")
        parameter = body.get("parameter")
        if parameter is not None and not isinstance(parameter, str | int | float):
            raise ValueError("parameter must be a string")
        return command.strip(), (None if parameter is None else str(parameter))
    command, _, parameter = text.partition("|")
    if not command.strip():
        raise ValueError("missing command")
    return command.strip(), (parameter if _ else None)


def status(code: int, msg: str, *, kind: str = "S", description: str = "cgminer 4.11.1") -> dict:
    """One STATUS entry, as cgminer writes it."""
    return {"STATUS": kind, "When": int(time.time()), "Code": code, "Msg": msg, "Description": description}


def encode_reply(reply: dict) -> bytes:
    return json.dumps(reply, separators=(",", ":")).encode() + TERMINATOR


def decode_reply(data: bytes) -> dict:
    """Decode a reply (NUL and whitespace stripped). Tolerates the known firmware slips: a missing comma between
    objects in a list ("}{", bmminer), a stray comma (",}" btminer, "[,{" bmminer). Raises CGMinerProtocolError if
    the result is not a JSON object."""
    text = data.split(TERMINATOR, 1)[0].decode("utf-8", errors="replace").strip()
    if not text:
        raise CGMinerProtocolError("empty reply")
    try:
        reply = json.loads(text)
    except ValueError:
        repaired = text.replace(",}", "}").replace("}{", "},{").replace("[,{", "[{")
        try:
            reply = json.loads(repaired)
        except ValueError as exc:
            raise CGMinerProtocolError(f"reply is not JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise CGMinerProtocolError("reply is not a JSON object")
    return reply


def _statuses(reply: dict) -> list[dict]:
    found = [s for s in reply.get("STATUS") or [] if isinstance(s, dict)]
    for key, value in reply.items():  # multi-command replies: {"summary": [ {STATUS...} ], ...}
        if key != "STATUS" and isinstance(value, list) and value and isinstance(value[0], dict):
            found.extend(s for s in value[0].get("STATUS") or [] if isinstance(s, dict))
    return found


def is_error(reply: dict) -> bool:
    return any(s.get("STATUS") in ("E", "F") for s in _statuses(reply))


def raise_for_status(reply: dict) -> dict:
    for s in _statuses(reply):
        if s.get("STATUS") in ("E", "F"):
            raise CGMinerCommandError(int(s.get("Code") or 0), str(s.get("Msg") or ""))
    return reply


def section(reply: dict, name: str) -> list[dict]:
    value = reply.get(name)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# ---------------------------------------------------------------------------------------------------------------
# client


async def _exchange(host: str, port: int, payload: bytes) -> bytes:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise CGMinerUnavailable(f"{host}:{port}: {exc}") from None
    try:
        writer.write(payload)
        await writer.drain()
        chunks, size = [], 0
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if TERMINATOR in chunk:
                break
            if size > MAX_REPLY_BYTES:
                raise CGMinerProtocolError(f"reply longer than {MAX_REPLY_BYTES} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise CGMinerUnavailable(f"{host}:{port}: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def query(host: str, port: int, command: str, timeout: float = 5.0, *, parameter: str | None = None) -> dict:
    """Send one command and return the decoded reply (see the module docstring for errors)."""
    try:
        data = await asyncio.wait_for(_exchange(host, port, encode_request(command, parameter)), timeout)
    except TimeoutError:
        raise CGMinerTimeout(f"{host}:{port}: no reply within {timeout} s") from None
    if not data:
        raise CGMinerUnavailable(f"{host}:{port}: connection closed without a reply")
    return decode_reply(data)
