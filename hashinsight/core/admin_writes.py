"""Admin saves and deletes through the apps' services, so an edit made in admin publishes the same
outbox event (and refreshes the same caches) as the same edit made through the API.

A model admin using ``ServiceWritesAdminMixin`` names its services in ``create_object``,
``update_object`` and ``delete_object``; a refusal from a service (``DomainError``, e.g. a race the
form could not see) rolls the save back and comes back as a message on the page, not a 500."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect

from hashinsight.core.errors import DomainError


def form_fields(form, *, changed_only: bool, exclude: tuple[str, ...] = ()) -> dict:
    """The model fields a form edits, as keyword arguments for a service (all of them for a new
    object, the changed ones for an existing one)."""
    concrete = {f.name for f in form._meta.model._meta.get_fields() if getattr(f, "concrete", False)}
    names = form.changed_data if changed_only else list(form.fields)
    return {n: form.cleaned_data[n] for n in names if n in concrete and n in form.cleaned_data and n not in exclude}


def adopt(target, saved) -> None:
    """Make the admin's in-memory object the row the service saved (its pk, state and fields):
    admin goes on to log it, redirect to it and save inlines against it."""
    target.__dict__.update(saved.__dict__)


class ServiceWritesAdminMixin:
    def create_object(self, request, fields: dict):
        raise NotImplementedError

    def update_object(self, request, obj, fields: dict):
        raise NotImplementedError

    def delete_object(self, request, obj) -> None:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if change:
            saved = self.update_object(request, obj, form_fields(form, changed_only=True))
        else:
            saved = self.create_object(request, form_fields(form, changed_only=False))
        adopt(obj, saved)

    def delete_model(self, request, obj):
        self.delete_object(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():  # all of the selection or none of it
            for obj in queryset:
                self.delete_object(request, obj)

    def _refused(self, request, exc: DomainError):
        self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as exc:
            return self._refused(request, exc)

    def delete_view(self, request, *args, **kwargs):
        try:
            return super().delete_view(request, *args, **kwargs)
        except DomainError as exc:
            return self._refused(request, exc)

    def changelist_view(self, request, *args, **kwargs):
        try:
            return super().changelist_view(request, *args, **kwargs)
        except DomainError as exc:
            return self._refused(request, exc)
