"""The database session store, refusing malformed session keys before they reach the database.

Django's keys are 32 lowercase letters and digits. A cookie carrying anything else (a NUL byte, which
PostgreSQL refuses with a DataError) is treated like an unknown session instead of failing every
request with a 500."""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key):
        return super()._validate_session_key(key) and key.isascii() and key.isalnum()
