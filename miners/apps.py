from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MinersConfig(AppConfig):
    name = "miners"
    verbose_name = _("Miners")

    def ready(self):
        # Registers the user_portfolio and site_summary cache builders, whoever reads them first,
        # and what the core's cache-warming job keeps warm.
        from miners import summaries, warming  # noqa: F401
