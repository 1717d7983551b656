"""Celery jobs of revenue forecasts per site and hosting client, and smart alerts (recorded as JobRuns through
``@job``)."""
