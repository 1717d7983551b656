"""Serializer fields shared by every app's serializers."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
from rest_framework import serializers


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference by id that accepts only objects ``selector(user=…)`` shows the requester.

    A hidden object reads as "does not exist", word for word like a missing one, so a write cannot
    probe for ids either (the filters' counterpart is ``filters.scoped_choice``)."""

    def __init__(self, selector: Callable[..., QuerySet], **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self.selector(user=self.context["request"].user)
