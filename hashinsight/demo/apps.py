from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo farm (``seed_demo``): sites, clients, users, miners and a few open alerts. It seeds
    every domain app, so it belongs to none of them."""

    name = "hashinsight.demo"
    label = "demo"
    verbose_name = _("Demo farm")
