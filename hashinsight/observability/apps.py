from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "hashinsight.observability"
    label = "observability"
