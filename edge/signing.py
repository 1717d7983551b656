"""Canonical JSON and the HMAC-SHA256 command signature, on the edge (stdlib only; edge/ imports nothing from the
server). It must give byte for byte what the server's ``hashinsight.security.canonical`` gives: a cross-check
test (hashinsight/tests/test_signing.py) compares both on tricky payloads.

Canonical JSON, exactly:
- UTF-8 JSON without whitespace (separators "," and ":"), non-ASCII characters as themselves (only the escapes
  JSON requires: quote, backslash, control characters), object keys sorted by code point (string keys only).
- Integers as they are; a float with an integral value as an integer (100.0 -> 100, -0.0 -> 0); other floats by
  Python's shortest round-trip repr (0.1, 1e-07); NaN and infinities refused.
- true/false/null; lists and tuples as arrays; sets refused.
- Values a JSON document cannot hold, for parity with the server: an aware datetime in UTC as
  YYYY-MM-DDTHH:MM:SS.ffffffZ (naive refused), a date as YYYY-MM-DD, a Decimal as a string in plain notation
  (non-finite refused), a UUID as its string.

The signature is base64 (standard alphabet, padded) of HMAC-SHA256 over the canonical JSON of the ten signed
fields, keyed with the 32 bytes of the device's ``hmac_secret`` (URL-safe base64 text in credentials.json)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

SIGNED_FIELDS = (
    "command_id",
    "site_id",
    "targets",
    "type",
    "params",
    "priority",
    "expires_at",
    "dedupe_key",
    "signed_at",
    "nonce",
)
SIGNATURE_FIELD = "signature"


def _plain(value):
    if value is None or value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, bool):  # a bool subclass would be odd, but stays a bool
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("canonical JSON: NaN and infinities are refused")
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            raise ValueError("canonical JSON: non-finite decimals are refused")
        return format(value, "f")
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("canonical JSON: naive datetimes are refused")
        utc = value.astimezone(UTC)
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON: object keys must be strings, not {type(key).__name__}")
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"canonical JSON: cannot encode {type(value).__name__}")


def canonical_json(value) -> bytes:
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def key_from_secret(secret: str | bytes) -> bytes:
    """The HMAC key: ``hmac_secret`` from credentials.json is URL-safe base64 (unpadded) of 32 random bytes."""
    if isinstance(secret, bytes | bytearray):
        return bytes(secret)
    if not isinstance(secret, str) or not secret:
        raise ValueError("no HMAC secret: register this collector again")
    return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))


def signed_part(envelope: Mapping) -> dict:
    """The signed fields of ``envelope``; KeyError names the first missing one."""
    return {name: envelope[name] for name in SIGNED_FIELDS}


def signature_of(payload: Mapping, key: bytes) -> str:
    """base64(HMAC-SHA256(key, canonical JSON of the ten signed fields of ``payload``))."""
    digest = hmac.new(key, canonical_json(signed_part(payload)), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(payload: Mapping, signature, key: bytes) -> bool:
    """Constant-time check of ``signature`` against the payload's; False for anything unencodable."""
    if not isinstance(signature, str):
        return False
    try:
        expected = signature_of(payload, key)
    except (KeyError, TypeError, ValueError, RecursionError):
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))
