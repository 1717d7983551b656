from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "hashinsight.security"
    label = "security"
