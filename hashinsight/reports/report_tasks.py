"""Report rendering and schedules: Celery tasks (owner: reports)."""
