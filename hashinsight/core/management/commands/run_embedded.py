"""One process for a laptop: the ASGI server, a Celery worker and beat, sharing an in-process broker
and the in-memory channel layer, so schedules, the outbox and live alerts work with no services.
Unless ``--no-edge`` or ``DEMO_EDGE=0``, it also runs the edge demo (hashinsight/demo/edge_demo.py): a
miner simulator for the demo farm and one collector per demo site, as child processes.

Production runs the same three roles as separate processes (Procfile, docker-compose.yml)."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger(__name__)


def _exit_on_sigterm(signum, frame):
    # uvicorn re-raises the signal that stopped it; with the default SIGTERM action the process would
    # die there, skipping the clean-up below (worker, beat, the edge demo's children).
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = "Serve HashInsight with an embedded Celery worker and beat (the default, no-services mode)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=4, help="worker threads")
        parser.add_argument(
            "--no-edge", action="store_true", help="don't start the demo simulator and collectors (or DEMO_EDGE=0)"
        )
        parser.add_argument("--edge-base-port", type=int, default=14028, help="first simulated miner's port")
        parser.add_argument("--edge-poll-s", type=float, default=20, help="demo collectors' poll interval (s)")

    def handle(self, *args, host, port, concurrency, no_edge, edge_base_port, edge_poll_s, **options):
        if settings.PRODUCTION:
            raise CommandError("run_embedded is for embedded mode; production runs web, worker and beat apart.")
        import uvicorn
        from celery import signals
        from celery.beat import EmbeddedService
        from celery.worker import WorkController

        from hashinsight.celery import app
        from hashinsight.demo import edge_demo
        from hashinsight.events import outbox

        demo = None
        if edge_demo.enabled(no_edge=no_edge):
            plan = edge_demo.prepare(
                server_url=edge_demo.server_url_for(host, port), base_port=edge_base_port, poll_interval_s=edge_poll_s
            )
            if plan.sites:
                demo = edge_demo.EdgeDemo(plan)
                self.stdout.write(
                    f"edge demo: simulator for {plan.miners:,} miners (ports {plan.base_port}+), "
                    f"{len(plan.sites)} collectors polling every {edge_poll_s:g} s; logs in {plan.log_dir}/edge-*.log"
                )
            else:
                self.stdout.write("edge demo: no demo sites (run manage.py seed_demo); not started")

        outbox.LOCAL_WORKER = True

        worker = WorkController(
            app=app, pool_cls="threads", concurrency=concurrency, hostname="embedded@localhost",
            # "telemetry": ingest hand-offs, rollups and the alert rules' offline job (schedules.py).
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
        server = uvicorn.Server(
            uvicorn.Config("hashinsight.asgi:application", host=host, port=port, log_level="info", lifespan="off")
        )
        if demo is not None:
            demo.start_when_listening(server)
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            server.run()
        finally:
            if demo is not None:
                demo.stop()
            beat.stop()
            worker.stop(in_sighandler=False)
            signal.signal(signal.SIGTERM, previous)
