"""Admin for response profiles and demand-response programmes. Every change goes through
``intelligence.response_profiles`` (checks, one default per site, audit); a programme's secret is generated there,
shown once in the admin's message after saving or rotating, and never displayed again (only sealed in the row)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from intelligence import response_profiles as rp
from intelligence.models import DemandResponseProgram, ResponseProfile
from sites.admin_filters import SiteListFilter


@admin.register(ResponseProfile)
class ResponseProfileAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(rp.profile_list)
    site_id_attr = "site_id"
    list_display = ["name", "site", "mode", "target_kw", "priority", "min_duration_minutes", "max_duration_minutes",
                    "restore_batch_size", "restore_interval_seconds", "is_default", "updated_at"]  # fmt: skip
    list_filter = ["mode", "priority", "is_default", ("site", SiteListFilter)]
    search_fields = ["name"]
    list_select_related = ["site"]
    fields = ["site", "name", "mode", "target_kw", "priority", "scope", "min_duration_minutes", "max_duration_minutes",
              "restore_batch_size", "restore_interval_seconds", "drift_action", "is_default"]  # fmt: skip
    actions = ["make_default"]

    def get_readonly_fields(self, request, obj=None):
        return ["site"] if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        admin_self = self

        class Checked(form):
            def clean(self):
                data = super().clean()
                if self.errors:
                    return data
                body = {f: data.get(f) for f in rp.PROFILE_FIELDS if f in data}
                if body.get("target_kw") is not None:
                    body["target_kw"] = str(body["target_kw"])
                try:
                    with admin_self._dry_run():
                        if obj is None:
                            rp.profile_create(actor=request.user, data={**body, "site": data["site"].pk})
                        else:
                            rp.profile_update(actor=request.user, profile=obj, data=body)
                except DomainError as exc:
                    raise ValidationError(exc.message) from None
                except admin_self._Rollback:
                    pass
                self._body = body
                return data

        return Checked

    class _Rollback(Exception):
        pass

    def _dry_run(self):
        """The service's checks without keeping its write (the real save follows in ``save_model``)."""
        from contextlib import contextmanager

        from django.db import transaction

        @contextmanager
        def run():
            with transaction.atomic():
                yield
                raise self._Rollback

        return run()

    def save_model(self, request, obj, form, change):
        body = form._body
        if change:
            saved = rp.profile_update(actor=request.user, profile=ResponseProfile.objects.get(pk=obj.pk), data=body)
        else:
            saved = rp.profile_create(actor=request.user, data={**body, "site": obj.site_id})
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        try:
            rp.profile_delete(actor=request.user, profile=obj)
        except DomainError as exc:
            messages.error(request, exc.message)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description=_("Make the site's default"))
    def make_default(self, request, queryset):
        for profile in queryset:
            try:
                rp.profile_set_default(actor=request.user, profile=profile)
            except DomainError as exc:
                messages.error(request, exc.message)


@admin.register(DemandResponseProgram)
class DemandResponseProgramAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.CURTAILMENT
    selector = staticmethod(rp.program_list)
    site_id_attr = "site_id"
    list_display = ["name", "site", "slug", "webhook", "profile", "is_active", "last_received_at", "created_at"]
    list_filter = ["is_active", ("site", SiteListFilter)]
    search_fields = ["name", "slug"]
    list_select_related = ["site", "profile"]
    actions = ["activate", "deactivate", "rotate_secret"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["site", "name", "slug", "profile", "is_active"]
        return ["site", "name", "slug", "webhook", "profile", "is_active", "last_received_at", "created_by",
                "created_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["site", "slug", "webhook", "last_received_at", "created_by", "created_at"]

    @admin.display(description=_("webhook"))
    def webhook(self, obj):
        return rp.webhook_path(obj)

    def save_model(self, request, obj, form, change):
        data = {"name": obj.name, "profile": obj.profile_id, "is_active": obj.is_active}
        try:
            if change:
                saved = rp.program_update(actor=request.user, program=DemandResponseProgram.objects.get(pk=obj.pk),
                                          data=data)  # fmt: skip
            else:
                saved, secret = rp.program_create(actor=request.user, data={**data, "site": obj.site_id,
                                                                            "slug": obj.slug or None})  # fmt: skip
                messages.warning(request, gettext("Secret of %(name)s, shown this once: %(secret)s") % {
                    "name": saved.name, "secret": secret})  # fmt: skip
        except DomainError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        rp.program_delete(actor=request.user, program=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def _each(self, request, queryset, fn):
        for program in queryset:
            try:
                fn(program)
            except DomainError as exc:
                messages.error(request, exc.message)

    @admin.action(description=_("Activate"))
    def activate(self, request, queryset):
        self._each(request, queryset, lambda p: rp.program_set_active(actor=request.user, program=p, active=True))

    @admin.action(description=_("Deactivate"))
    def deactivate(self, request, queryset):
        self._each(request, queryset, lambda p: rp.program_set_active(actor=request.user, program=p, active=False))

    @admin.action(description=_("Rotate the secret (shown once)"))
    def rotate_secret(self, request, queryset):
        def rotate(program):
            program, secret = rp.program_rotate(actor=request.user, program=program)
            messages.warning(request, gettext("New secret of %(name)s, shown this once: %(secret)s") % {
                "name": program.name, "secret": secret})  # fmt: skip

        self._each(request, queryset, rotate)
