"""Per-request context (request id, user id) carried in contextvars so logs anywhere can read it."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
