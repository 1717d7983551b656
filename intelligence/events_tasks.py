"""Celery jobs of curtailment events (recorded as JobRuns through ``@job``)."""
