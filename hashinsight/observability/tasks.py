import socket

from celery import shared_task

from hashinsight.observability import heartbeat


@shared_task(name="observability.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self, trigger: str = "schedule") -> None:
    """Scheduled on the housekeeping queue: proves beat → broker → worker still works end to end
    (the liveness itself comes from each worker's heartbeat thread)."""
    heartbeat.beat(heartbeat.worker_id() or self.request.hostname or socket.gethostname())
