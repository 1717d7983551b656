"""The Celery application. Configuration lives in settings (CELERY_*); tasks are found per app."""

import contextlib
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")

app = Celery("hashinsight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["hashinsight.events", "hashinsight.observability"])


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs):
    """The request id of the web request that queued a task travels with it into the worker's logs."""
    from hashinsight.observability.context import current_request_id

    rid = current_request_id()
    if rid and headers is not None:
        headers.setdefault("request_id", rid)


@signals.task_prerun.connect
def _restore_request_id(task=None, **kwargs):
    from hashinsight.observability.context import request_id_var

    if task is None:
        return
    rid = getattr(task.request, "request_id", None)
    task.request.request_id_token = request_id_var.set(rid or task.request.id)


@signals.task_postrun.connect
def _forget_request_id(task=None, **kwargs):
    """Put back the id the thread had before the task: an eager task (embedded mode, tests) runs in the
    caller's thread and must not leave its id on the rest of the caller's work."""
    from hashinsight.observability.context import request_id_var

    token = getattr(task.request, "request_id_token", None) if task else None
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context: nothing of ours to undo
            request_id_var.reset(token)


@signals.worker_init.connect
def _name_worker(sender=None, **kwargs):
    from hashinsight.observability import heartbeat

    heartbeat.worker_started(getattr(sender, "hostname", None) or "worker")


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs):
    """Beat at once (health would otherwise call a fresh worker stale until the first scheduled
    heartbeat) and keep beating from a thread, whatever the worker's tasks are doing."""
    from hashinsight.observability import heartbeat

    heartbeat.start_beating()


@signals.worker_shutdown.connect
def _stop_heartbeat(**kwargs):
    from hashinsight.observability import heartbeat

    heartbeat.stop_beating()


@signals.worker_process_init.connect
def _forget_inherited_connection_pool(**kwargs):
    """A prefork child must not use the connection pool its parent made (the heartbeat thread runs
    in the parent): its idle connections are the parent's sockets. Forget it without closing it,
    which would end the parent's connections too; the child builds its own on first use."""
    from django.db import connections

    for conn in connections.all():
        pools = getattr(type(conn), "_connection_pools", None)  # Django's per-process pool registry
        if pools:
            pools.clear()
