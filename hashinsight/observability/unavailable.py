"""PostgreSQL down answers 503 with Retry-After, never 500: on pages, in admin and (through the API's
exception handler) in the API. A 503 tells load balancers and clients the failure is temporary and
the request may be repeated; nothing was written, since the transaction could not even start.
Only genuine unavailability counts (``is_database_down``): any other database error stays a 500."""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from hashinsight.observability.context import current_request_id

logger = logging.getLogger(__name__)
RETRY_AFTER_S = 5
# Django's wrappers, and psycopg's own errors for what runs on the raw connection, outside Django's
# cursor wrapper (ingest's COPY): a connection dropped there raises psycopg.OperationalError.
DATABASE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


# A deadlock, a serialization failure or a lock not obtained within lock_timeout: the database is up, this
# transaction lost a race and was rolled back whole. Still a 503 (nothing was written; the same request may be
# repeated at once), but named for what it is.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
CONFLICT_RETRY_AFTER_S = 1


# What "the database is unavailable" means, and nothing more, read from the driver's error that Django keeps as the
# cause. PostgreSQL: no server answer (psycopg gives no sqlstate when it cannot connect or the socket dies), class 08
# (connection exception), the server shutting down or starting up (57P01-57P03), no free connection slot (53300).
# SQLite: the file locked past the busy timeout, or not openable. Any other driver error ("no such column", "no such
# table", a statement timeout, a program limit) is a bug or a slow query: it stays a 500, logged as an error, so a
# code defect or a missing migration is not disguised as an outage.
DOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
DOWN_SQLSTATE_CLASSES = ("08",)
DISCONNECTED_MESSAGES = (
    "server closed the connection unexpectedly",
    "connection already closed",  # psycopg2's wording, kept by Django's InterfaceError
    "the connection is closed",  # psycopg 3's
)
SQLITE_DOWN_MESSAGES = ("database is locked", "unable to open database file")


def _chain(exc: BaseException | None, limit: int = 5):
    seen = 0
    while exc is not None and seen < limit:
        yield exc
        exc, seen = exc.__cause__, seen + 1


def _says(error: BaseException, messages: tuple[str, ...]) -> bool:
    text = str(error).lower()
    return any(message in text for message in messages)


def is_database_down(exc: BaseException | None) -> bool:
    """The error means the database cannot be reached (or this transaction lost a race): a 503, not a 500."""
    if not isinstance(exc, DATABASE_ERRORS):
        return False
    if is_transient_conflict(exc):
        return True
    for error in _chain(exc):
        if isinstance(error, psycopg.Error):
            if error.sqlstate is not None:
                return error.sqlstate in DOWN_SQLSTATES or error.sqlstate.startswith(DOWN_SQLSTATE_CLASSES)
            return isinstance(error, psycopg.OperationalError) or _says(error, DISCONNECTED_MESSAGES)
        if isinstance(error, sqlite3.Error):
            return _says(error, SQLITE_DOWN_MESSAGES)
    # No driver error behind it (Django's wrapper always chains one): raised by hand, with nothing that could tell a
    # bug from an outage, so the database error is taken for what its class says.
    return True


def is_transient_conflict(exc: BaseException | None) -> bool:
    """A deadlock or serialization failure (Django wraps psycopg's error: its sqlstate is on the cause)."""
    return any(getattr(error, "sqlstate", None) in CONFLICT_SQLSTATES for error in _chain(exc))


def unavailable_body(exc: BaseException | None) -> tuple[dict, int]:
    """The API's error body and Retry-After (seconds) for a database error."""
    from hashinsight.core.api.errors import error_body

    if is_transient_conflict(exc):
        message = _("A concurrent change conflicted with this one; nothing was saved. Retry.")
        return error_body("database_conflict", message), CONFLICT_RETRY_AFTER_S
    return error_body("database_unavailable", _("The database is unavailable; retry shortly.")), RETRY_AFTER_S


def unavailable_response(request, exc: BaseException | None = None) -> HttpResponse:
    retry_after = RETRY_AFTER_S
    if request.path.startswith("/api/"):
        body, retry_after = unavailable_body(exc)
        response = JsonResponse(body, status=503)
    else:
        html = render_to_string("503.html", {"request_id": current_request_id()})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(retry_after)
    return response


class DatabaseUnavailableMiddleware:
    """Outermost but one (after the request id): a database error anywhere below becomes a 503.

    A view's exception arrives in ``process_exception``. One raised by another middleware (a
    session saved on the way out) has already been turned into a 500 by Django's per-middleware
    wrapper by the time it gets here, so ``got_request_exception`` (connected in apps.py) marks the
    request and the 500 is replaced on the way out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_database_down", False) and response.status_code == 500:
            return unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if is_database_down(exception):
            what = "database conflict" if is_transient_conflict(exception) else "database unavailable"
            logger.warning(what, extra={"path": request.path, "error": str(exception)[:200]})
            return unavailable_response(request, exception)
        return None


def mark_database_down(sender=None, request=None, **kwargs) -> None:
    """got_request_exception receiver: remember that the 500 being built is a database outage."""
    import sys

    if request is not None and is_database_down(sys.exc_info()[1]):
        request._database_down = True
