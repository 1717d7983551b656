from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = _("Telemetry and alerts")

    def ready(self):
        # Alert rules register their handlers and their periodic task on import.
        # The site dashboard's summary registers its cache builder (rebuilt by the cache task in workers).
        from telemetry import (
            rule_handlers,  # noqa: F401
            telemetry_selectors,  # noqa: F401
        )
