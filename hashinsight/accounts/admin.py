from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts import services
from hashinsight.accounts.models import ApiToken, User
from hashinsight.accounts.roles import Module, can_manage_role
from hashinsight.accounts.selectors import user_list
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin, adopt
from hashinsight.core.errors import DomainError


@admin.register(User)
class UserAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, DjangoUserAdmin):
    module = Module.USER
    selector = staticmethod(user_list)
    list_display = ["username", "email", "role", "is_active", "last_login", "date_joined"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email", "language")}),
        (_("Access"), {"fields": ("role", "is_active")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "role", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_manage_role(request.user, obj.role))

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are disabled, never deleted: the audit trail keeps its actors

    # Through the account services: role changes are locked, checked and published, and disabling a
    # user revokes their tokens and closes their WebSockets, as it does from the API.
    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        password = form.cleaned_data.get("password1")
        if not password:  # admin's "password-based authentication: disabled"; our accounts always sign in
            raise DomainError("password_required", str(_("Set a password for the new user.")))
        data = form.cleaned_data
        user = services.user_create(actor=request.user, username=data["username"], role=data["role"], password=password)
        adopt(obj, user)

    def update_object(self, request, obj, fields):
        fields.pop("password", None)  # the change form shows the hash read-only; passwords change on their own page
        deactivate = fields.pop("is_active", None) is False
        user = services.user_update(actor=request.user, user=obj, **fields)
        if deactivate:
            user = services.user_deactivate(actor=request.user, user=user)
        return user

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role":
            kwargs["choices"] = [(v, label) for v, label in db_field.choices if can_manage_role(request.user, v)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    autocomplete_fields = ["user"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    has_view_permission = has_change_permission = has_delete_permission = lambda self, request, obj=None: (
        self.has_module_permission(request)
    )

    def has_add_permission(self, request):
        return False  # created through the API so the secret can be shown once to its owner

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset):
        # Through the service, so each owner's open WebSockets close at once.
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            services.api_token_revoke(token=token, actor=request.user)
