"""Envelope encryption for sensitive fields (miner IP, MAC, login credentials).

Each record gets its own random 256-bit data key. The record's plaintext is sealed with AES-256-GCM
under that data key; the data key itself is wrapped by a master key that lives behind a
``KeyProvider`` (a Fernet key from the environment by default; a cloud KMS plugs in the same way).
The stored token names the format version and the master key id, so master keys can be rotated
by re-wrapping data keys without touching the ciphertext.

Token layout (ASCII): ``hie1.<key_id>.<wrapped_data_key>.<nonce+ciphertext>`` (base64url parts).
There is no plaintext fallback: a missing or wrong key raises, it never returns the raw value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "hie1"


class DecryptionError(Exception):
    """The token is malformed, was tampered with, or its master key is not available."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a master key it never reveals."""

    current_key_id: str

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, key_id: str) -> bytes: ...


@dataclass
class FernetKeyProvider:
    """Master keys are Fernet keys: one current key and any number of older ones kept for reading."""

    current_key_id: str
    keys: dict[str, Fernet]

    @classmethod
    def from_settings(cls, current: str, old: str = "") -> FernetKeyProvider:
        """``old`` is a comma-separated list of retired master keys, still needed to read old rows."""
        keys = {}
        for key in [current, *filter(None, (k.strip() for k in old.split(",")))]:
            keys[fingerprint(key)] = Fernet(key.encode())
        return cls(current_key_id=fingerprint(current), keys=keys)

    def wrap(self, data_key: bytes) -> bytes:
        return self.keys[self.current_key_id].encrypt(data_key)

    def unwrap(self, wrapped: bytes, *, key_id: str) -> bytes:
        try:
            return self.keys[key_id].decrypt(wrapped)
        except (KeyError, InvalidToken) as exc:
            raise DecryptionError(f"cannot unwrap data key with master key {key_id!r}") from exc


def fingerprint(master_key: str) -> str:
    """A short, non-secret id of a master key, stored in each token to find the key that opens it."""
    return hashlib.sha256(master_key.encode()).hexdigest()[:8]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(plaintext: bytes, *, provider: KeyProvider, aad: bytes = b"") -> str:
    """Encrypt ``plaintext`` under a fresh data key; ``aad`` binds the token to its record."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    wrapped = provider.wrap(data_key)
    return ".".join((FORMAT, provider.current_key_id, _b64(wrapped), _b64(nonce + ciphertext)))


def open_sealed(token: str, *, provider: KeyProvider, aad: bytes = b"") -> bytes:
    try:
        fmt, key_id, wrapped, body = token.split(".")
    except ValueError as exc:
        raise DecryptionError("malformed encrypted value") from exc
    if fmt != FORMAT:
        raise DecryptionError(f"unknown encryption format {fmt!r}")
    data_key = provider.unwrap(_unb64(wrapped), key_id=key_id)
    raw = _unb64(body)
    try:
        return AESGCM(data_key).decrypt(raw[:12], raw[12:], aad)
    except InvalidTag as exc:
        raise DecryptionError("encrypted value failed authentication") from exc


def seal_json(value: dict, *, provider: KeyProvider | None = None, aad: bytes = b"") -> str:
    return seal(json.dumps(value, sort_keys=True).encode(), provider=provider or default_provider(), aad=aad)


def open_json(token: str, *, provider: KeyProvider | None = None, aad: bytes = b"") -> dict:
    return json.loads(open_sealed(token, provider=provider or default_provider(), aad=aad))


@lru_cache(maxsize=1)
def default_provider() -> KeyProvider:
    from django.conf import settings

    return FernetKeyProvider.from_settings(settings.FIELD_ENCRYPTION_KEY, settings.FIELD_ENCRYPTION_OLD_KEYS)
