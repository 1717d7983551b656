"""The one viewset shape: queryset from a selector for request.user, writes through services."""

from __future__ import annotations

from rest_framework import viewsets

from hashinsight.accounts.permissions import ModuleAccess


class ScopedViewSet(viewsets.ModelViewSet):
    # Subclasses set ``module`` and implement ``get_queryset`` with the app's selector; objects
    # outside it are not found (404). ``perform_*`` call services instead of ``serializer.save``.
    # (A comment, not a docstring: drf-spectacular would copy a docstring into every endpoint.)

    module: str
    permission_classes = [ModuleAccess]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
