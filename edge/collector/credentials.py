"""The device's credentials file: token and HMAC secret from ``--register``, written 0600, never logged."""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("edge.collector.credentials")


class CredentialsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    token: str = field(repr=False)
    hmac_secret: str = field(repr=False)
    device_id: str | int | None = None
    site_id: str | int | None = None
    server_url: str | None = None


def save_credentials(path: Path, answer: dict, *, server_url: str) -> Credentials:
    """Write what POST /register answered (token, hmac_secret, ids) atomically, readable by the owner only."""
    creds = Credentials(
        token=str(answer["token"]),
        hmac_secret=str(answer.get("hmac_secret") or ""),
        device_id=answer.get("device_id"),
        site_id=answer.get("site_id"),
        server_url=server_url,
    )
    data = {
        "server_url": server_url,
        "device_id": creds.device_id,
        "site_id": creds.site_id,
        "token": creds.token,
        "hmac_secret": creds.hmac_secret,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older tmp file may have had other bits
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return creds


def load_credentials(path: Path, *, config_path: Path | None = None) -> Credentials:
    hint = f"python -m edge.collector --config {config_path or 'site.toml'} --register CODE"
    try:
        st = path.stat()
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(f"no credentials at {path}: enroll this collector first with `{hint}`") from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read credentials {path}: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "credentials file %s is readable by others (mode %o); run chmod 600 on it", path, st.st_mode & 0o777
        )
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
        raise CredentialsError(f"credentials {path} hold no token: register again with `{hint}`")
    return Credentials(
        token=data["token"],
        hmac_secret=str(data.get("hmac_secret") or ""),
        device_id=data.get("device_id"),
        site_id=data.get("site_id"),
        server_url=data.get("server_url"),
    )
