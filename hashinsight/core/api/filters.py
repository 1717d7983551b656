"""Query-string filters shared by every app's filtersets."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django_filters import rest_framework as filters


def scoped_choice(selector: Callable[..., QuerySet], **kwargs) -> filters.ModelChoiceFilter:
    """A filter on a related object whose choices are what ``selector(user=…)`` shows the requester.

    A plain ``filterset_fields`` entry accepts any existing id, so a hidden site answered 200 with no
    rows while a missing one answered 400: a cheap probe for what exists. Scoped choices refuse both
    with the same 400 naming the field (the form's message does not echo the value)."""

    def choices(request) -> QuerySet:
        return selector(user=getattr(request, "user", None) or AnonymousUser())

    return filters.ModelChoiceFilter(queryset=choices, **kwargs)
