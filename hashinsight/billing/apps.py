from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "hashinsight.billing"
    label = "billing"
    verbose_name = _("Finance")

    def ready(self):
        from hashinsight.billing import issuing  # noqa: F401  (registers the issued-invoice immutability guard)
