"""With the database unreachable every request answers 503 with Retry-After (pages, admin, API reads
and writes), never a 500; any other database error (a missing table or column) stays a 500. The outage
is simulated by making every query fail the way psycopg does when PostgreSQL is down;
test_production_mode.py does it for real against a closed port."""

import logging
import sqlite3

import psycopg
import pytest
from django.core.handlers.exception import convert_exception_to_response
from django.db import InterfaceError, OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import RequestFactory

from hashinsight.observability.unavailable import RETRY_AFTER_S, DatabaseUnavailableMiddleware, is_database_down

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    def down():
        monkeypatch.setattr(CursorWrapper, "execute", refuse)
        monkeypatch.setattr(CursorWrapper, "executemany", refuse)

    return down


def _is_503(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == str(RETRY_AFTER_S)


@pytest.mark.parametrize("method", ["get", "post"])
def test_api_reads_and_writes_answer_503_database_unavailable(api, farm, database_down, method):
    api.force_authenticate(farm.users["owner"])
    database_down()
    if method == "get":
        response = api.get("/api/v1/sites/")
    else:
        response = api.post("/api/v1/sites/", {"name": "New", "slug": "new"}, format="json")
    _is_503(response)
    body = response.json()
    assert body["error_code"] == "database_unavailable"
    assert set(body) == {"error_code", "message", "request_id", "details"}


def test_api_token_authentication_with_the_database_down_is_503_not_401(api, database_down):
    database_down()
    response = api.get("/api/v1/sites/", HTTP_AUTHORIZATION="Bearer hi_abcd1234_secretsecret")
    _is_503(response)
    assert response.json()["error_code"] == "database_unavailable"


@pytest.mark.parametrize("path", ["/", "/sites/", "/admin/", "/admin/miners/miner/"])
def test_pages_and_admin_answer_a_503_page(client, farm, database_down, path):
    client.force_login(farm.users["owner"])
    database_down()
    response = client.get(path)
    _is_503(response)
    assert b"Temporarily unavailable" in response.content


def test_a_database_error_raised_by_another_middleware_also_becomes_503():
    """A session saved on the way out fails outside the view: Django's per-middleware wrapper has
    already made it a 500 when it reaches us; the request is marked and the 500 replaced."""

    def session_save_fails(request):
        raise OperationalError("server closed the connection unexpectedly")

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(session_save_fails))
    _is_503(middleware(RequestFactory().get("/sites/")))


@pytest.mark.parametrize("error", [psycopg.OperationalError, psycopg.InterfaceError])
def test_psycopg_errors_outside_djangos_cursor_wrapper_also_become_503(error):
    """What runs on psycopg's own cursor (ingest's COPY) raises psycopg's errors, not Django's."""

    def copy_fails(request):
        raise error("consuming input failed: server closed the connection unexpectedly")

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(copy_fails))
    _is_503(middleware(RequestFactory().get("/sites/")))


def test_ingest_copy_losing_the_connection_answers_503_with_retry_after(api, farm, monkeypatch):
    from telemetry.api import ingest_views
    from telemetry.tests.test_ingest import make_device, now_iso, post, sample

    def copy_fails(**kwargs):
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

    _, token = make_device(farm.site_a)
    monkeypatch.setattr(ingest_views, "store_batch", copy_fails)
    response = post(api, token, {"samples": [sample(farm.miners[("site-a", "own")].serial, now_iso())]})
    _is_503(response)
    body = response.json()
    assert body["error_code"] == "database_unavailable"
    assert set(body) == {"error_code", "message", "request_id", "details"}


def test_other_server_errors_stay_500():
    def bug(request):
        raise ValueError("a bug, not an outage")

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(bug))
    assert middleware(RequestFactory().get("/sites/")).status_code == 500


def test_ready_says_when_to_retry(client, monkeypatch):
    from hashinsight.observability import health

    monkeypatch.setattr(health, "check_database", lambda: {"ok": False, "error": "OperationalError"})
    _is_503(client.get("/ready"))


def test_health_says_down_and_when_to_retry(client, monkeypatch):
    from hashinsight.observability import health

    monkeypatch.setattr(health, "check_database", lambda: {"ok": False, "error": "OperationalError"})
    response = client.get("/api/health")
    _is_503(response)
    assert response.json()["status"] == "down"


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03"])
def test_a_lost_deadlock_is_a_conflict_to_retry_at_once_not_an_outage(api, farm, monkeypatch, sqlstate):
    """PostgreSQL broke a deadlock (or a serialization failure) by rolling this transaction back: nothing was
    written and the database is up, so the answer names the conflict and says to retry after a second."""
    from hashinsight.observability.unavailable import CONFLICT_RETRY_AFTER_S

    cause = {"40P01": psycopg.errors.DeadlockDetected, "40001": psycopg.errors.SerializationFailure,
             "55P03": psycopg.errors.LockNotAvailable}[sqlstate]  # fmt: skip

    def lose(*args, **kwargs):
        try:
            raise cause("deadlock detected")
        except cause as exc:
            raise OperationalError("deadlock detected") from exc

    api.force_authenticate(farm.users["owner"])
    monkeypatch.setattr(CursorWrapper, "execute", lose)
    response = api.get("/api/v1/sites/")
    assert response.status_code == 503 and response["Retry-After"] == str(CONFLICT_RETRY_AFTER_S)
    assert response.json()["error_code"] == "database_conflict"


# Only genuine unavailability is a 503. Any other OperationalError (SQLite's "no such column" from a code bug or
# a missing migration) is a 500, logged as an error, so a bug is not disguised as an outage.


def _wrapped(cause: BaseException, django_error=OperationalError) -> BaseException:
    """What Django's DatabaseErrorWrapper raises: its own class, the driver's error as the cause."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise django_error(str(exc)) from exc
    except django_error as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
        psycopg.errors.ConnectionFailure("connection failure"),  # 08006
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),  # 57P01
        psycopg.errors.CrashShutdown("terminating connection because of crash of another server process"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),  # 57P03
        psycopg.errors.TooManyConnections("sorry, too many clients already"),  # 53300
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("unable to open database file"),
    ],
    ids=lambda cause: f"{type(cause).__name__}:{str(cause)[:30]}",
)
def test_connection_failures_are_the_database_down(cause):
    assert is_database_down(_wrapped(cause))


def test_djangos_connection_already_closed_is_the_database_down():
    assert is_database_down(_wrapped(psycopg.InterfaceError("connection already closed"), InterfaceError))
    assert is_database_down(_wrapped(psycopg.OperationalError("the connection is closed")))


@pytest.mark.parametrize(
    "cause",
    [
        sqlite3.OperationalError("no such column: sites_site.renamed"),
        sqlite3.OperationalError("no such table: billing_newthing"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),  # 57014
        psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"),  # 54000
    ],
    ids=lambda cause: f"{type(cause).__name__}:{str(cause)[:30]}",
)
def test_other_operational_errors_are_not_the_database_down(cause):
    assert not is_database_down(_wrapped(cause))


@pytest.fixture
def missing_table(monkeypatch):
    """Every query reads a table no migration created: the real driver error through Django's wrapper
    (SQLite raises OperationalError "no such table", PostgreSQL ProgrammingError)."""
    original = CursorWrapper.execute

    def execute(self, sql, params=None):
        return original(self, "SELECT missing_column FROM hashinsight_missing_table", None)

    def broken():
        monkeypatch.setattr(CursorWrapper, "execute", execute)

    return broken


def test_an_api_query_against_a_missing_table_is_a_500_not_a_503(api, farm, missing_table, caplog):
    api.force_authenticate(farm.users["owner"])
    missing_table()
    with caplog.at_level(logging.ERROR):
        response = api.get("/api/v1/sites/")
    assert response.status_code == 500, response.content[:300]
    assert "Retry-After" not in response
    assert response.json()["error_code"] == "server_error"
    assert any(record.levelno >= logging.ERROR for record in caplog.records)


def test_a_page_query_against_a_missing_table_is_a_500_not_a_503(client, farm, missing_table, caplog):
    client.force_login(farm.users["owner"])
    client.raise_request_exception = False
    missing_table()
    with caplog.at_level(logging.ERROR):
        response = client.get("/sites/")
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert any(record.levelno >= logging.ERROR for record in caplog.records)


def test_a_missing_column_raised_below_the_middleware_stays_500():
    def bug(request):
        raise _wrapped(sqlite3.OperationalError("no such column: miners_miner.renamed"))

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(bug))
    assert middleware(RequestFactory().get("/sites/")).status_code == 500


def test_sqlite_locked_past_the_busy_timeout_is_a_503():
    def locked(request):
        raise _wrapped(sqlite3.OperationalError("database is locked"))

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(locked))
    _is_503(middleware(RequestFactory().get("/sites/")))


@pytest.mark.postgres
@pytest.mark.parametrize(("sqlstate", "status"), [("57P03", 503), ("53300", 503), ("08006", 503), ("54000", 500)])
def test_postgres_errors_by_sqlstate(on_postgres, sqlstate, status):
    """The server itself raises the error (RAISE … USING ERRCODE), through Django's cursor wrapper."""
    from django.db import connection, transaction

    def query(request):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{sqlstate}'; END $$")

    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(query))
    assert middleware(RequestFactory().get("/sites/")).status_code == status
