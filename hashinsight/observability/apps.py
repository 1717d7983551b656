from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ObservabilityConfig(AppConfig):
    name = "hashinsight.observability"
    label = "observability"
    verbose_name = _("Observability")

    def ready(self):
        from django.core.signals import got_request_exception

        from hashinsight.observability.unavailable import mark_database_down

        got_request_exception.connect(mark_database_down, dispatch_uid="observability.database_down")
