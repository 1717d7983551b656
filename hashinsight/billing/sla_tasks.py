"""SLA certificates: Celery tasks (owner: sla)."""
