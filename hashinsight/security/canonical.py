"""Canonical JSON: the one byte form of a value that is hashed (the audit chain) or signed (edge
commands). Pure Python, no Django, so the edge collector verifies with the very same function.

The rules, exactly:
- UTF-8 bytes of JSON with no whitespace (separators ``,`` and ``:``), non-ASCII characters written as
  themselves (no ``\\u`` escapes except the ones JSON requires: ``"``, ``\\``, control characters).
- Object keys are strings, sorted by Unicode code point; any other key type is refused.
- ``datetime`` must be timezone-aware and is written in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always
  six digits of microseconds); a naive datetime is refused. ``date`` is ``YYYY-MM-DD``.
- ``Decimal`` is a string in plain notation keeping its scale (``Decimal("1.10")`` → ``"1.10"``,
  ``Decimal("1E+2")`` → ``"100"``). ``UUID`` is its canonical string.
- ``float`` with an integral value is written as an integer (``1.0`` → ``1``; JSON stores that keep
  numbers as numbers, such as PostgreSQL's jsonb, give back the same value), others by Python's
  shortest round-trip ``repr``. NaN and infinities are refused, as are non-finite Decimals.
- Lists and tuples are arrays; sets are refused (they have no order). ``None``/``True``/``False`` are
  ``null``/``true``/``false``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID


def _plain(value):
    """``value`` as JSON-native types under the rules above (floats handled here too)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("canonical JSON refuses NaN and infinities")
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("canonical JSON refuses non-finite decimals")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("canonical JSON refuses naive datetimes")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be strings, not {type(key).__name__}")
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"canonical JSON cannot encode {type(value).__name__}")


def to_plain(value):
    """``value`` converted to JSON-native types exactly as ``canonical_json`` would write it: what to
    store (in a JSONField) so that hashing the stored value again gives the same bytes."""
    return _plain(value)


def canonical_json(value) -> bytes:
    """The canonical bytes of ``value`` (see the module docstring for the rules)."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
