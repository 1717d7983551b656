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
        # Failed sign-ins go on the audit chain (django-axes keeps its own attempt counts).
        from django.contrib.auth.signals import user_login_failed

        from hashinsight.events.audit import record_login_failure

        user_login_failed.connect(record_login_failure, dispatch_uid="audit_login_failed")
