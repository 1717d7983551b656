import socket

from celery import shared_task
from django.utils import timezone

from hashinsight.observability.models import WorkerHeartbeat


@shared_task(name="observability.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self, trigger: str = "schedule") -> None:
    host = self.request.hostname or socket.gethostname()
    WorkerHeartbeat.objects.update_or_create(hostname=host, defaults={"seen_at": timezone.now()})
