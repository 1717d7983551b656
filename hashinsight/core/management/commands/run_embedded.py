"""One process for a laptop: the ASGI server, a Celery worker and beat, sharing an in-process broker
and the in-memory channel layer, so schedules, the outbox and live alerts work with no services.

Production runs the same three roles as separate processes (Procfile, docker-compose.yml)."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve HashInsight with an embedded Celery worker and beat (the default, no-services mode)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=4, help="worker threads")

    def handle(self, *args, host, port, concurrency, **options):
        if settings.PRODUCTION:
            raise CommandError("run_embedded is for embedded mode; production runs web, worker and beat apart.")
        import uvicorn
        from celery import signals
        from celery.beat import EmbeddedService
        from celery.worker import WorkController

        from hashinsight.celery import app
        from hashinsight.events import outbox

        outbox.LOCAL_WORKER = True

        worker = WorkController(
            app=app, pool_cls="threads", concurrency=concurrency, hostname="embedded@localhost",
            queues=["default", "telemetry", "intelligence", "housekeeping"], without_heartbeat=True,
            without_mingle=True, without_gossip=True, loglevel="INFO",
            # A bare WorkController never sends worker_ready (the CLI worker does): the heartbeat starts there.
            ready_callback=lambda consumer: signals.worker_ready.send(sender=consumer),
        )  # fmt: skip
        worker_thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
        worker_thread.start()
        from django_celery_beat.schedulers import DatabaseScheduler

        # Beat's Service defaults to the file scheduler; ours live in the database (editable in admin).
        beat = EmbeddedService(app, thread=True, scheduler_cls=DatabaseScheduler)
        beat.start()
        self.stdout.write(f"worker and beat running in-process; serving http://{host}:{port}/")
        try:
            uvicorn.run("hashinsight.asgi:application", host=host, port=port, log_level="info", lifespan="off")
        finally:
            beat.stop()
            worker.stop(in_sighandler=False)
