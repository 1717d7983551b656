"""Domain errors raised by services; the API turns them into ``{error_code, message, ...}``."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the request. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str, *, status: int = 400, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details if details is not None else {}
