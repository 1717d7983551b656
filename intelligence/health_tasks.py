"""Celery jobs of miner health predictions (recorded as JobRuns through ``@job``)."""
