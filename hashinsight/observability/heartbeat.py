"""Worker liveness, independent of how busy the worker's queues are.

Every worker process start gets an id (``events@host/3fa2c1d0``: the node name plus a random part,
because a restarted worker keeps its node name, and in a container even its pid). From the moment
it is ready, a thread of its own writes that id's WorkerHeartbeat row every WORKER_HEARTBEAT_S, so
/api/health sees a worker as alive within a second of its start and however long its tasks take.
The outbox stamps each event a worker starts applying with the worker's id; when that id stops
beating for three periods the relay sends the event again at once (outbox.relay), instead of
waiting for the dispatch timeout meant for messages lost in the broker."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)
_worker_id = ""
_stop = threading.Event()


def worker_id() -> str:
    """This process's worker id, or "" outside a worker (web, tests with inline tasks)."""
    return _worker_id


def worker_started(hostname: str) -> str:
    """Name this worker start; called at worker_init, before the pool forks, so children inherit it."""
    global _worker_id
    _worker_id = f"{hostname}/{secrets.token_hex(4)}"
    return _worker_id


def beat(worker: str = "") -> None:
    from hashinsight.observability.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(hostname=worker or _worker_id, defaults={"seen_at": timezone.now()})


def start_beating(interval: float | None = None) -> threading.Thread:
    """Beat now, then every ``interval`` seconds until the process ends (or ``stop_beating``)."""
    period = settings.WORKER_HEARTBEAT_S if interval is None else interval
    _stop.clear()

    def loop():
        while True:
            try:
                beat()
            except Exception:  # the database is down: health says so; keep trying
                logger.warning("worker heartbeat failed", exc_info=True)
            finally:
                connection.close()  # one short connection per beat, none held between beats
            if _stop.wait(period):
                return

    thread = threading.Thread(target=loop, name="worker-heartbeat", daemon=True)
    thread.start()
    return thread


def stop_beating() -> None:
    _stop.set()


def stale_before() -> datetime:
    """Heartbeats older than this are from workers presumed dead (three missed beats)."""
    return timezone.now() - timedelta(seconds=3 * settings.WORKER_HEARTBEAT_S)


def live_workers():
    """A subquery of the ids of workers beating recently."""
    from hashinsight.observability.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(seen_at__gte=stale_before()).values("hostname")
