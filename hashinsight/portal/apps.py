from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "hashinsight.portal"
    label = "portal"
