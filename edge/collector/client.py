"""HTTP to the server's edge API (stdlib urllib, run in a worker thread), and the retry policy.

Every failure is classified once, here:

- ``AuthRefused`` (401/403): the device token is revoked or wrong. The collector stops and says so; it
  never retries a refused token in a loop.
- ``RequestRefused`` (400, 413, 422): this request itself is wrong, which is our bug. The batch is
  quarantined in the spool, logged, and not retried on its own.
- ``Retryable`` (408, 425, 429, 5xx, connection errors, timeouts, a 2xx that is not JSON): try again
  later with exponential backoff and jitter, honouring ``Retry-After``.
- ``Misconfigured`` (a Retryable: 3xx, 404, 405, 415 and other 4xx): nothing to do with this batch — the URL
  or the server's version is wrong and every batch would get the same. Quarantining them all would empty the
  queue into the quarantine, so they are retried with backoff and logged as a configuration problem.

The device token goes into the Authorization header only; it is never logged or put in an error message."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlparse

from edge.collector import VERSION

log = logging.getLogger("edge.collector.client")

API_PREFIX = "/api/edge/v1/"
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
REFUSED_STATUSES = {400, 413, 422}  # this request is wrong: the same bytes would be refused again
MAX_RETRY_AFTER_S = 3600.0  # a Retry-After further out than an hour is taken as an hour


class ServerError(Exception):
    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class AuthRefused(ServerError):
    """401/403: the device token was refused (revoked, rotated or never valid)."""


class RequestRefused(ServerError):
    """A 4xx other than 401/403/408/425/429: the server will refuse this exact request again."""


class Retryable(ServerError):
    def __init__(self, message: str, *, status: int | None = None, body: str = "", retry_after: float | None = None):
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class Misconfigured(Retryable):
    """A 3xx or a 4xx that says nothing about this batch (404, 405, 410, 415...): the URL or the server's version
    is wrong, so every batch would get it. Retried with backoff (the data stays in the spool), logged as such."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER_S)


class Backoff:
    """Exponential backoff with jitter: attempt n waits uniformly between half and all of min(cap, base·2ⁿ).

    A Retry-After from the server wins: we wait that long (plus up to 10 % jitter, at most 1 s, so many
    collectors told the same moment do not arrive together), never less."""

    def __init__(self, *, base: float = 1.0, cap: float = 300.0, rng: Callable[[], float] = random.random):
        self.base, self.cap, self.rng = base, cap, rng
        self.attempt = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        if retry_after is not None:
            return retry_after + self.rng() * min(1.0, retry_after * 0.1)
        return ceiling / 2 + self.rng() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect surfaces as an HTTPError: a POST must not silently become a GET


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Reply:
    status: int
    data: dict | list | None


class ServerClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self):  # never the token
        return f"ServerClient({self.base_url!r})"

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url + API_PREFIX, path.lstrip("/"))

    # --- transport ------------------------------------------------------------------------------------------

    def request_sync(
        self,
        method: str,
        path: str,
        *,
        payload: dict | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """One HTTP exchange. ``body`` is an already gzip-compressed JSON body (the spooled batches: ingest and
        safety events take gzip); ``payload`` is sent as plain JSON (register and health are small, and their
        endpoints read JSON only)."""
        headers = {"Accept": "application/json", "User-Agent": f"hashinsight-edge-collector/{VERSION}"}
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif body is not None:
            headers["Content-Type"] = "application/json"
            headers["Content-Encoding"] = "gzip"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        url = self.url(path)
        where = f"{method} {urlparse(url).path}"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 (http(s) only, checked in config)
        try:
            with _opener.open(req, timeout=self.timeout if timeout is None else timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            raw = b""
            with contextlib.suppress(OSError, http.client.HTTPException):
                raw = exc.read()
            text = raw[:2000].decode("utf-8", errors="replace")
            self._raise_for(exc.code, exc.headers, where, text)
            raise AssertionError("unreachable") from None  # pragma: no cover
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Retryable(f"{where}: no answer from the server ({reason})") from None
        if not 200 <= status < 300:  # pragma: no cover (urllib raises HTTPError for these)
            self._raise_for(status, {}, where, raw[:2000].decode("utf-8", errors="replace"))
        if not raw.strip():
            return Reply(status, None)
        try:
            return Reply(status, json.loads(raw))
        except ValueError:
            raise Retryable(f"{where}: {status} with a body that is not JSON", status=status) from None

    @staticmethod
    def _raise_for(status: int, headers, where: str, text: str):
        detail = text.strip().replace("\n", " ")[:300]
        if status in (401, 403):
            raise AuthRefused(f"{where}: {status}, the device token was refused: {detail}", status=status, body=text)
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(headers.get("Retry-After") if headers else None)
            raise Retryable(f"{where}: {status} {detail}", status=status, body=text, retry_after=retry_after)
        if status in REFUSED_STATUSES:
            raise RequestRefused(f"{where}: {status} {detail}", status=status, body=text)
        if 300 <= status < 400:
            location = headers.get("Location") if headers else None
            raise Misconfigured(
                f"{where}: the server redirects ({status}) to {location}; set [server] url to the final address",
                status=status,
            )
        raise Misconfigured(
            f"{where}: {status} {detail} (is [server] url right, and the server's version one with this API?)",
            status=status,
            body=text,
        )

    async def request(self, method: str, path: str, **kwargs) -> Reply:
        return await asyncio.to_thread(self.request_sync, method, path, **kwargs)

    # --- endpoints ------------------------------------------------------------------------------------------

    async def register(self, code: str, name: str) -> dict:
        reply = await self.request(
            "POST", "register", payload={"enrollment_code": code, "name": name, "version": VERSION}
        )
        if not isinstance(reply.data, dict) or not reply.data.get("token"):
            raise RequestRefused("POST register: the answer holds no token", status=reply.status)
        return reply.data

    async def inventory(self, *, max_pages: int = 10_000) -> list[dict]:
        """All the site's miners, following the ``next`` cursor (a URL, or an opaque cursor for ?cursor=)."""
        miners: list[dict] = []
        path = "inventory"
        seen: set[str] = set()
        for _ in range(max_pages):
            reply = await self.request("GET", path)
            data = reply.data
            if isinstance(data, list):
                miners.extend(data)
                break
            if not isinstance(data, dict):
                raise RequestRefused("GET inventory: the answer is not a JSON object", status=reply.status)
            items = data.get("results", data.get("miners", data.get("items")))
            if not isinstance(items, list):
                raise RequestRefused("GET inventory: no results/miners list in the answer", status=reply.status)
            miners.extend(item for item in items if isinstance(item, dict))
            cursor = data.get("next")
            if not cursor:
                break
            cursor = str(cursor)
            if cursor in seen:
                raise RequestRefused("GET inventory: the next cursor repeats", status=reply.status)
            seen.add(cursor)
            path = (
                cursor
                if cursor.startswith(("http://", "https://", "/"))
                else f"inventory?{urlencode({'cursor': cursor})}"
            )
            if path.startswith("/"):
                path = urljoin(self.base_url, path)
        return miners

    async def push_telemetry(self, body: bytes) -> dict:
        reply = await self.request("POST", "telemetry/ingest", body=body)
        return reply.data if isinstance(reply.data, dict) else {}

    async def push_safety(self, body: bytes) -> dict:
        reply = await self.request("POST", "events/safety/batch", body=body)
        return reply.data if isinstance(reply.data, dict) else {}

    async def health(self, report: dict) -> dict:
        reply = await self.request("POST", "health", payload=report)
        return reply.data if isinstance(reply.data, dict) else {}

    # --- commands (issue 8) ---------------------------------------------------------------------------------

    async def poll_commands(self, wait: float = 25.0) -> list[dict]:
        """The signed command envelopes due for this device; the server holds the request up to ``wait`` seconds
        when there is none (long poll), so the read timeout is ``wait`` plus the usual request timeout."""
        wait = max(0.0, min(float(wait), 25.0))
        path = f"commands/poll?{urlencode({'wait': f'{wait:g}'})}"
        # In a daemon thread, not the loop's default executor: asyncio.run() joins that one on exit, so a
        # collector told to stop would wait for the long poll in flight.
        reply = await _in_daemon_thread(self.request_sync, "GET", path, timeout=wait + self.timeout)
        data = reply.data
        if not isinstance(data, dict) or not isinstance(data.get("commands"), list):
            raise RequestRefused("GET commands/poll: the answer holds no commands list", status=reply.status)
        return data["commands"]

    async def ack_command(self, command_id, nonce: str, results: list[dict], *, phase: str | None = None) -> dict:
        """Report the per-miner results of a command (its nonce proves which dispatch they answer); ``phase``
        "restore" reports what a CURTAIL's end put back (edge.collector.curtail)."""
        payload: dict = {"nonce": nonce, "results": results}
        if phase is not None:
            payload["phase"] = phase
        reply = await self.request("POST", f"commands/{command_id}/ack", payload=payload)
        return reply.data if isinstance(reply.data, dict) else {}


async def _in_daemon_thread(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a thread of its own that nothing waits for when the collector stops."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result, error) -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        result, error = None, None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="command-poll", daemon=True).start()
    return await future
