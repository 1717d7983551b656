"""JSON log lines carrying the request id and user id of the request that wrote them."""

import json
import logging
from datetime import UTC, datetime

from django.utils.functional import SimpleLazyObject, empty

from hashinsight.observability.context import request_id_var, user_id_var

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Never let a secret reach a log line, whatever a caller passes in ``extra``.
_REDACT = {"password", "secret", "token", "credentials", "authorization", "api_key", "key"}


class RequestContextFilter(logging.Filter):
    def filter(self, record):
        # django.request logs after the middleware chain has returned; its record carries the request.
        request = getattr(record, "request", None)
        record.request_id = request_id_var.get() or getattr(request, "id", None)
        user = getattr(request, "user", None)
        # A lazy user not loaded yet stays unloaded: loading it needs the database, which may be
        # exactly what failed (a log line must never raise a second error).
        if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
            user = None
        record.user_id = user_id_var.get() or (user.pk if getattr(user, "is_authenticated", False) else None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        body = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_") or key == "request":
                continue
            body[key] = "[redacted]" if key.lower() in _REDACT else value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)
