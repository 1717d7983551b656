from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SitesConfig(AppConfig):
    name = "sites"
    verbose_name = _("Sites and hosting clients")

    def ready(self):
        from hashinsight.core.registry import register_site_manageable
        from sites.selectors import site_is_manageable

        # The core's scoped admin asks through the registry; it must not import this app.
        register_site_manageable(site_is_manageable)
