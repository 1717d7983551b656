"""Expiring signed links: a token that names one object (by purpose and id) and the user it was made for, signed with
the project's secret (``django.core.signing.TimestampSigner``, a salt per purpose) and valid for a limited time
(seven days by default). Used for files e-mailed to people (reports); any helper may use it for its own purpose.

``make_token`` signs; ``verify_token`` answers the ``SignedLink`` or raises ``DomainError``: ``link_expired`` (403,
saying when it expired and what to do) for a genuine but old token, ``link_invalid`` (404) for anything that was not
signed here for this purpose (tampered, truncated, another purpose's token). The token says nothing secret (its
payload is readable base64); what it grants is checked again by the view that serves the object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.utils.translation import gettext as _

from hashinsight.core.errors import DomainError

DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=90)
_SALT = "hashinsight.signed_links.{purpose}"


@dataclass(frozen=True)
class SignedLink:
    purpose: str
    object_id: int
    user_id: int | None  # None: made for an address that is no user's (a bearer link)
    issued_at: datetime
    expires_at: datetime
    check: str  # a fingerprint of the object when signed (e.g. a file's SHA-256 prefix); "" if none


def _signer(purpose: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT.format(purpose=purpose))


def make_token(
    *, purpose: str, object_id: int, user_id: int | None, ttl: timedelta = DEFAULT_TTL, check: str = ""
) -> str:
    """A URL-safe token for ``object_id`` under ``purpose``, made for ``user_id``, valid for ``ttl``."""
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be more than 0 and at most {MAX_TTL}")
    payload = {"o": int(object_id), "u": int(user_id) if user_id else 0, "t": int(ttl.total_seconds()), "c": check}
    return _signer(purpose).sign_object(payload, compress=True)


def expires_at(ttl: timedelta = DEFAULT_TTL, *, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + ttl


def verify_token(token: str, *, purpose: str) -> SignedLink:
    """The link ``token`` stands for, or a ``DomainError`` (expired: 403; anything else: 404)."""
    signer = _signer(purpose)
    try:
        payload = signer.unsign_object(token or "")
        ttl = int(payload["t"])
        # A verified token is "payload:timestamp:signature"; the timestamp is when it was signed.
        issued = datetime.fromtimestamp(signing.b62_decode(token.rsplit(signer.sep, 2)[1]), tz=UTC)
        object_id, user_id, check = int(payload["o"]), int(payload["u"]) or None, str(payload.get("c", ""))
    except (signing.BadSignature, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DomainError(
            "link_invalid", _("This link is not valid. Check that it was copied whole."), status=404
        ) from exc
    expiry = issued + timedelta(seconds=ttl)
    if datetime.now(UTC) > expiry:
        raise DomainError(
            "link_expired",
            _("This link expired on %(when)s UTC. Sign in to download the file, or ask for a new link.")
            % {"when": f"{expiry:%Y-%m-%d %H:%M}"},
            status=403,
            details={"expired_at": expiry.isoformat()},
        )
    return SignedLink(purpose, object_id, user_id, issued, expiry, check)
