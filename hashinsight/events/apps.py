from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "hashinsight.events"
    label = "events"
    verbose_name = _("Events")

    def ready(self):
        # Handlers register themselves on import; each app keeps its own in ``handlers.py``.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("handlers")
        from importlib import import_module

        from django.conf import settings

        for module in settings.EVENT_HANDLER_MODULES:
            import_module(module)
