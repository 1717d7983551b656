"""The Ed25519 key that signs SLA certificates (owner: sla).

The keyring is a small JSON file in private storage (``PRIVATE_MEDIA_ROOT/keys/sla-ed25519.json``, or the path in
``settings.SLA_SIGNING_KEYRING``): private storage is the one place every web and worker process of a deployment
shares, and nothing in it is served. Each private key is **sealed with the project's envelope encryption**
(``hashinsight.security.crypto.seal``, a fresh data key wrapped by the master key of ``default_provider``, the
associated data binding the token to its key id), so the file alone reveals nothing; a master-key rotation re-wraps
it like any sealed field. The file is created on first use with ``O_EXCL`` (two processes starting together agree
on one key, as ``hashinsight.security.bootstrap`` does for the embedded secrets).

Public keys are not secret: ``public_keys()`` lists every key of the ring (the current one first), served at
``/api/v1/sla-certificates/public-key``; a rotation (``rotate_signing_key``) adds a key and keeps the old ones, so
certificates signed before it still verify."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from hashinsight.security.crypto import default_provider, open_sealed, seal

ALGORITHM = "Ed25519"
_lock = threading.Lock()
_cache: dict[str, tuple[float, dict]] = {}
_private_cache: dict[tuple[str, str, str], Ed25519PrivateKey] = {}


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key_b64: str
    created_at: str
    current: bool

    @property
    def pem(self) -> str:
        return (
            load_public(self.public_key_b64)
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def load_public(public_key_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(unb64(public_key_b64))


def key_id_of(public_raw: bytes) -> str:
    """A short, non-secret id: the first 16 hex digits of the public key's SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _aad(key_id: str) -> bytes:
    return f"hashinsight:sla-certificate-key:{key_id}".encode()


def keyring_path() -> Path:
    custom = getattr(settings, "SLA_SIGNING_KEYRING", "")
    return Path(custom) if custom else Path(settings.PRIVATE_MEDIA_ROOT) / "keys" / "sla-ed25519.json"


def _new_entry() -> dict:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())  # fmt: skip
    public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = key_id_of(public_raw)
    return {
        "key_id": key_id,
        "public_key": b64(public_raw),
        "sealed_private_key": seal(raw, provider=default_provider(), aad=_aad(key_id)),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _write_new(path: Path, ring: dict, *, exclusive: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(ring, indent=1, sort_keys=True).encode()
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def keyring() -> dict:
    """``{"current": key_id, "keys": [entry, ...]}``, created on first use; re-read when the file changes."""
    path = keyring_path()
    with _lock:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            try:
                entry = _new_entry()
                _write_new(path, {"current": entry["key_id"], "keys": [entry]}, exclusive=True)
            except FileExistsError:
                pass  # another process made it first: use theirs
            mtime = path.stat().st_mtime
        cached = _cache.get(str(path))
        if cached and cached[0] == mtime:
            return cached[1]
        ring = json.loads(path.read_text())
        _cache[str(path)] = (mtime, ring)
        return ring


def rotate_signing_key() -> str:
    """A new current key; the old ones stay in the ring for verification. Returns the new key id."""
    ring = keyring()
    entry = _new_entry()
    new = {"current": entry["key_id"], "keys": [entry, *ring["keys"]]}
    with _lock:
        _write_new(keyring_path(), new, exclusive=False)
        _cache.pop(str(keyring_path()), None)
    return entry["key_id"]


def public_keys() -> list[PublicKey]:
    ring = keyring()
    return [
        PublicKey(k["key_id"], k["public_key"], k["created_at"], k["key_id"] == ring["current"]) for k in ring["keys"]
    ]


def public_key(key_id: str) -> PublicKey | None:
    return next((k for k in public_keys() if k.key_id == key_id), None)


def sign(message: bytes) -> tuple[str, str, str]:
    """``(key_id, public key base64, signature base64)`` of ``message`` under the current key."""
    ring = keyring()
    entry = next(k for k in ring["keys"] if k["key_id"] == ring["current"])
    cache_key = (str(keyring_path()), entry["key_id"], entry["sealed_private_key"])
    private = _private_cache.get(cache_key)
    if private is None:  # unsealed once per process and key (a month's run signs hundreds of certificates)
        raw = open_sealed(entry["sealed_private_key"], provider=default_provider(), aad=_aad(entry["key_id"]))
        private = Ed25519PrivateKey.from_private_bytes(raw)
        _private_cache.clear()
        _private_cache[cache_key] = private
    return entry["key_id"], entry["public_key"], b64(private.sign(message))
