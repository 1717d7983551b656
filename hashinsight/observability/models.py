from django.db import models


class WorkerHeartbeat(models.Model):
    """Last time each worker ran the heartbeat task; /api/health reports the freshest."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return self.hostname
