"""The intelligence layer's Celery tasks, one module per part; Celery's autodiscovery imports this module."""

from intelligence import anomaly_tasks, forecast_tasks, market_tasks, plans_tasks  # noqa: F401
