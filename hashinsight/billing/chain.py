"""Chain adapters: how a crypto payment's confirmations are learnt. Pluggable, and offline by default.

``settings.BILLING_CHAIN_ADAPTER`` names the adapter class by dotted path:

- ``hashinsight.billing.chain.ManualAdapter`` (the default): needs no network. It knows nothing of any chain; the
  confirmations are what an operator entered (``payments.payment_confirm``, the portal's Confirm button, ``POST
  /api/v1/payments/{id}/confirm``), so the periodic check confirms a payment once its entered count reaches the
  threshold, and never fails one.
- ``hashinsight.billing.chain.FakeAdapter``: for tests and demos; answers what ``FakeAdapter.set`` told it.
- ``hashinsight.billing.chain.HttpExplorerAdapter``: a mempool.space-style REST explorer for BTC
  (``GET {base}/tx/{txid}/status`` → ``{"confirmed", "block_height"}``, ``GET {base}/blocks/tip/height``) at
  ``settings.BILLING_CHAIN_EXPLORER_URL``. It is never called unless configured; every request has a timeout
  (``BILLING_CHAIN_TIMEOUT_SECONDS``), and a timeout, an HTTP error or an unreadable answer leaves the payment
  pending (an ``Observation`` of ``None`` confirmations), never raises. It answers nothing for USDT.

The thresholds (``BILLING_CONFIRMATIONS``: BTC 3, USDT 20 by default) are applied by ``payments``, not here: an
adapter only reports what it saw."""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_ADAPTER = "hashinsight.billing.chain.ManualAdapter"
DEFAULT_CONFIRMATIONS = {"btc": 3, "usdt": 20}
TXID_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Observation:
    """What an adapter saw of one transaction. ``confirmations`` None: nothing known (stay pending);
    ``failed``: the chain says it will never confirm (not found after its grace, reverted, double-spent)."""

    confirmations: int | None = None
    failed: bool = False
    detail: str = ""


class ChainAdapter:
    """The interface. ``observe`` must not raise for a network problem: it answers ``Observation()``."""

    name = "base"
    needs_network = False

    def observe(self, *, method: str, txid: str, address: str = "", recorded_confirmations: int = 0) -> Observation:
        raise NotImplementedError


class ManualAdapter(ChainAdapter):
    """Offline: the confirmations are the operator's (see the module docstring)."""

    name = "manual"

    def observe(self, *, method, txid, address="", recorded_confirmations=0) -> Observation:
        return Observation(confirmations=recorded_confirmations, detail="entered by an operator")


class FakeAdapter(ChainAdapter):
    """In-memory answers for tests: ``FakeAdapter.set(txid, confirmations=5)`` / ``failed=True``;
    ``FakeAdapter.reset()`` between tests. A txid never set is unknown (pending)."""

    name = "fake"
    _answers: dict[str, Observation] = {}
    _lock = threading.Lock()

    @classmethod
    def set(cls, txid: str, *, confirmations: int | None = None, failed: bool = False) -> None:
        with cls._lock:
            cls._answers[txid.lower()] = Observation(confirmations=confirmations, failed=failed, detail="fake")

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._answers = {}

    def observe(self, *, method, txid, address="", recorded_confirmations=0) -> Observation:
        return self._answers.get(txid.lower(), Observation())


class HttpExplorerAdapter(ChainAdapter):
    """A mempool.space-style explorer for BTC (see the module docstring). Configured by
    ``BILLING_CHAIN_EXPLORER_URL`` (e.g. ``https://mempool.space/api``); with none it answers ``Observation()``."""

    name = "http"
    needs_network = True

    def __init__(self, base_url: str | None = None, timeout: float | None = None):
        self.base_url = (base_url or getattr(settings, "BILLING_CHAIN_EXPLORER_URL", "") or "").rstrip("/")
        self.timeout = float(timeout or getattr(settings, "BILLING_CHAIN_TIMEOUT_SECONDS", 5))
        if self.base_url and not self.base_url.startswith(("https://", "http://")):
            logger.warning("BILLING_CHAIN_EXPLORER_URL is not an http(s) URL; the explorer is not asked")
            self.base_url = ""

    def _get(self, path: str):
        # The scheme is http(s) only (checked in __init__).
        request = urllib.request.Request(self.base_url + path, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            body = response.read(64 * 1024)
        return json.loads(body.decode("utf-8"))

    def observe(self, *, method, txid, address="", recorded_confirmations=0) -> Observation:
        if method != "btc" or not self.base_url or not TXID_RE.match(txid or ""):
            return Observation()
        try:
            status = self._get(f"/tx/{txid}/status")
            if not isinstance(status, dict):
                return Observation(detail="unreadable answer")
            if not status.get("confirmed"):
                return Observation(confirmations=0, detail="in the mempool")
            height = status.get("block_height")
            tip = self._get("/blocks/tip/height")
            if isinstance(height, bool) or isinstance(tip, bool):
                return Observation(detail="unreadable answer")
            if not isinstance(height, int) or not isinstance(tip, int) or tip < height:
                return Observation(detail="unreadable answer")
            return Observation(confirmations=tip - height + 1, detail=f"block {height}")
        except urllib.error.HTTPError as exc:
            # 404: not (yet) seen by the explorer; it may still arrive, so it stays pending.
            logger.info("chain explorer answered %s for %s", exc.code, txid)
            return Observation(detail=f"HTTP {exc.code}")
        except (OSError, ValueError, TimeoutError) as exc:  # URLError is an OSError; JSON errors are ValueErrors
            logger.warning("chain explorer unreachable for %s: %s", txid, exc)
            return Observation(detail="explorer unreachable")


@lru_cache(maxsize=8)
def _adapter_class(path: str):
    return import_string(path)


def get_adapter() -> ChainAdapter:
    """The configured adapter (``BILLING_CHAIN_ADAPTER``), a new instance per call (settings may change in tests)."""
    path = getattr(settings, "BILLING_CHAIN_ADAPTER", "") or DEFAULT_ADAPTER
    adapter = _adapter_class(path)()
    if not isinstance(adapter, ChainAdapter):
        raise TypeError(f"{path} is not a ChainAdapter")
    return adapter


def required_confirmations(method: str) -> int:
    """Confirmations after which a payment of ``method`` (btc | usdt) counts: ``BILLING_CONFIRMATIONS``."""
    configured = getattr(settings, "BILLING_CONFIRMATIONS", None) or {}
    return int(configured.get(method, DEFAULT_CONFIRMATIONS.get(method, 1)))
