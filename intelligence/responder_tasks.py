"""Celery jobs of the real-time responder (recorded as JobRuns through ``@job``)."""
