from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntelligenceConfig(AppConfig):
    name = "intelligence"
    verbose_name = _("Intelligence")

    def ready(self):
        # The forecast part's event handlers (a portfolio change refreshes forecast:{user}) and the forecast:{id}
        # cache builder must be registered in every process, web and worker alike; its tasks are imported through
        # intelligence.tasks (Celery's autodiscovery). Likewise the plans' handlers (prices or fleet changed → the
        # site's optimize:{site}:{date} entries stale); the optimize builder comes with the plans' tasks and views.
        from intelligence import forecast_handlers, forecasting, plans_handlers  # noqa: F401
