"""Request body parsers with the limits a body from outside needs.

DRF's JSON parser turns a 100,000-deep array into a ``RecursionError`` (a 500) and lets NUL
characters through to PostgreSQL, which refuses them in text columns (another 500, after
validation passed on SQLite). One parser for every JSON body refuses both with a 400."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers, status
from rest_framework.utils import json


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _("The request body is too large.")


class NulCharacter(exceptions.ParseError):
    default_code = "nul_character"
    default_detail = _("Text may not contain NUL (\\u0000) characters.")


def refuse_nul(value) -> None:
    """Raise ``NulCharacter`` if any string (key or value) in parsed JSON holds a NUL. Iterative, so
    depth is no risk here; the decoder has already bounded it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise NulCharacter()
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(raw: bytes | str, *, encoding: str = "utf-8"):
    """Decode a JSON document from outside: malformed, too deep or NUL-bearing input is a ParseError."""
    try:
        text = raw.decode(encoding) if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=json.strict_constant)
    except RecursionError:
        raise exceptions.ParseError(_("JSON parse error - the document is nested too deeply.")) from None
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise exceptions.ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
    refuse_nul(data)
    return data


class JSONParser(parsers.JSONParser):
    # Subclassing DRF's keeps its special case: the body is read through HttpRequest.body, so
    # DATA_UPLOAD_MAX_MEMORY_SIZE applies (RequestDataTooBig, answered 413 by the error handler).
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return loads(stream.read(), encoding=encoding)


class RawBodyParser(parsers.BaseParser):
    """Hands the body over as bytes (bulk import decodes it itself to report encoding errors),
    read no further than DATA_UPLOAD_MAX_MEMORY_SIZE."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise RequestTooLarge()
        return data
