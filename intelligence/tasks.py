"""The intelligence layer's Celery tasks, one module per part; Celery's autodiscovery imports this module."""

from intelligence import (  # noqa: F401
    anomaly_tasks,
    events_tasks,
    forecast_tasks,
    health_tasks,
    market_tasks,
    plans_tasks,
    power_feed_tasks,
    responder_tasks,
    revenue_tasks,
)
