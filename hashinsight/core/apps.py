from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "hashinsight.core"
    label = "core"
