"""Secrets generated on the first embedded run, so a laptop works with no environment at all.

Imported from settings, so it must not import Django models or settings itself.
"""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _new_secret(kind: str) -> str:
    if kind == "FIELD_ENCRYPTION_KEY":
        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(50)


def load_or_create_secret(path: Path, *, kind: str) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = _new_secret(kind)
    # O_EXCL: two processes starting together must agree on one key, never overwrite each other.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
