"""Celery's autodiscovery imports this module."""

from hashinsight.reports import report_tasks  # noqa: F401
