"""Signing the commands sent to an edge device (issue 8, DESIGN.md "Commands"). Pure Python, no Django.

The signature is ``base64(HMAC-SHA256(key, canonical_json(payload)))`` (standard alphabet, with padding), where
``payload`` holds exactly the fields of ``SIGNED_FIELDS`` and ``key`` is the device's 32-byte HMAC secret
(``telemetry.devices.device_hmac_secret``). A payload missing one of them or carrying any other field is refused:
nothing is ever sent that the signature does not cover. The canonical form is the project's one
(``hashinsight.security.canonical``, shared with the audit chain); the edge has its own copy of it
(``edge/signing.py``), kept byte-identical by a cross-check test.

What goes on the wire is ``signed_envelope(payload, key)``: the payload in its canonical plain form (datetimes
already written as ``…Z`` strings, decimals as strings, whole floats as integers), plus ``"signature"``. The edge
re-encodes exactly what it received, so it must receive the plain form, not the Python values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from hashinsight.security.canonical import canonical_json, to_plain

__all__ = [
    "SIGNATURE_FIELD",
    "SIGNED_FIELDS",
    "SigningError",
    "canonical_json",
    "new_nonce",
    "sign_command",
    "signed_envelope",
    "verify",
]

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
NONCE_BYTES = 16  # 128 bits


class SigningError(ValueError):
    """The payload is not exactly the signed fields (the message names the missing or extra ones)."""


def _checked(payload: Mapping) -> dict:
    if not isinstance(payload, Mapping):
        raise SigningError(f"a command payload must be an object, not {type(payload).__name__}")
    missing = [name for name in SIGNED_FIELDS if name not in payload]
    extra = sorted(str(name) for name in payload if name not in SIGNED_FIELDS)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unsigned extra fields {', '.join(extra)}")
        raise SigningError("command payload: " + "; ".join(parts))
    return {name: payload[name] for name in SIGNED_FIELDS}


def _key(secret: bytes) -> bytes:
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise SigningError("the signing key must be non-empty bytes (telemetry.devices.device_hmac_secret)")
    return bytes(secret)


def _mac(payload: Mapping, secret: bytes) -> str:
    digest = hmac.new(_key(secret), canonical_json(_checked(payload)), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def new_nonce() -> str:
    """128 random bits, URL-safe base64 without padding (22 characters)."""
    return secrets.token_urlsafe(NONCE_BYTES)


def sign_command(payload: Mapping, secret: bytes) -> str:
    """The signature of ``payload`` (exactly SIGNED_FIELDS, else SigningError) under ``secret``."""
    return _mac(payload, secret)


def signed_envelope(payload: Mapping, secret: bytes) -> dict:
    """What the poll endpoint sends: the payload in canonical plain form plus its ``signature``."""
    plain = to_plain(_checked(payload))
    return {**plain, SIGNATURE_FIELD: _mac(plain, secret)}


def verify(payload: Mapping, signature: str, secret: bytes) -> bool:
    """Whether ``signature`` is the signature of ``payload``; constant-time. A payload that is not exactly the
    signed fields, or that canonical JSON refuses (NaN, naive datetime...), does not verify."""
    if not isinstance(signature, str):
        return False
    try:
        expected = _mac(payload, secret)
    except (SigningError, TypeError, ValueError):
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))
