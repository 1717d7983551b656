from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import add_never_cache_headers

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.admin_writes import ServiceWritesAdminMixin
from hashinsight.core.errors import DomainError
from sites.admin_filters import SiteListFilter
from sites.selectors import manageable_site_list, zone_list
from telemetry import devices, selectors, services
from telemetry.models import Alert, AlertRule, EdgeDevice, EnrollmentCode, SafetyEvent
from telemetry.rule_admin import AlertRuleAdmin
from telemetry.safety import safety_event_list


@admin.register(Alert)
class AlertAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.HOSTING
    selector = staticmethod(selectors.alert_list)
    site_id_attr = "site_id"
    list_display = ["last_seen", "severity", "status", "alert_type", "site", "miner", "count", "message"]
    list_filter = ["status", "severity", "alert_type", ("site", SiteListFilter)]
    search_fields = ["alert_type", "message", "miner__serial"]
    list_select_related = ["site", "miner"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ["acknowledge", "resolve"]

    def has_add_permission(self, request, *args):
        return False  # alerts are raised by rules and the raise_alert command, through the service

    def has_delete_permission(self, request, obj=None):
        return False  # alerts are resolved, not deleted: a delete would bypass the service and its event

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; alerts change only through the acknowledge/resolve actions

    def _changeable_ids(self, request, queryset) -> list[int]:
        # Alerts on sites the user only views are skipped, as they are in the single-alert views.
        return [alert.pk for alert in queryset if self.has_change_permission(request, alert)]

    # Through the bulk services: one transaction and one batch of events for the whole selection.
    @admin.action(description=_("Acknowledge selected alerts"))
    def acknowledge(self, request, queryset):
        services.alerts_acknowledge(alert_ids=self._changeable_ids(request, queryset), actor=request.user)
        self.message_user(request, _("Alerts acknowledged."), messages.SUCCESS)

    @admin.action(description=_("Resolve selected alerts"))
    def resolve(self, request, queryset):
        services.alerts_resolve(alert_ids=self._changeable_ids(request, queryset), actor=request.user)
        self.message_user(request, _("Alerts resolved."), messages.SUCCESS)


def _credentials_page(admin_obj, request, *, title, items):
    """The one page that shows new edge credentials (never a message: those are stored in a cookie or
    the session until shown). Not cached by the browser; reloading it does not show them again."""
    context = {**admin_obj.admin_site.each_context(request), "opts": admin_obj.opts, "title": title, "items": items}
    response = TemplateResponse(request, "portal/sites/edge_admin_credentials.html", context)
    add_never_cache_headers(response)
    return response


@admin.register(EdgeDevice)
class EdgeDeviceAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Edge collectors. They are created by registering an enrollment code, never here; credentials are
    rotated and devices revoked with the actions, through the same services as the API and portal."""

    module = Module.HOSTING
    selector = staticmethod(devices.device_list)
    site_id_attr = "site_id"
    list_display = ["name", "site", "zone", "version", "last_seen_at", "last_seen_ip", "revoked_at", "token_prefix"]
    list_filter = [("site", SiteListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "version", "token_prefix", "site__name"]
    list_select_related = ["site", "zone"]
    readonly_fields = [f.name for f in EdgeDevice._meta.fields if f.name not in ("token_hash", "secret_sealed")]
    exclude = ["token_hash", "secret_sealed"]
    actions = ["rotate_credentials", "revoke_devices"]

    def has_add_permission(self, request, *args):
        return False  # a device registers itself with an enrollment code

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the row keeps its history (last seen, who enrolled it)

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; devices change through the actions

    def _changeable(self, request, queryset) -> list[EdgeDevice]:
        # Devices of sites the user only views are skipped, as in the API and the portal (403 there).
        return [d for d in queryset if self.has_change_permission(request, d)]

    @admin.action(description=_("Rotate credentials of selected devices (shows the new ones once)"))
    def rotate_credentials(self, request, queryset):
        items = []
        for device in self._changeable(request, queryset.filter(revoked_at__isnull=True)):
            try:
                device, token, hmac_secret = devices.device_rotate(device=device, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{device}: {exc.message}", messages.ERROR)
                continue
            items.append({"label": str(device), "token": token, "hmac_secret": hmac_secret})
        if not items:
            self.message_user(request, _("No active device you manage was selected."), messages.WARNING)
            return None
        return _credentials_page(self, request, title=_("New edge device credentials"), items=items)

    @admin.action(description=_("Revoke selected devices"))
    def revoke_devices(self, request, queryset):
        changeable = self._changeable(request, queryset)
        for device in changeable:
            devices.device_revoke(device=device, actor=request.user)
        self.message_user(request, _("%(count)d device(s) revoked.") % {"count": len(changeable)}, messages.SUCCESS)


@admin.register(EnrollmentCode)
class EnrollmentCodeAdmin(ScopedAdminMixin, ServiceWritesAdminMixin, admin.ModelAdmin):
    """'Add' creates a one-time code for a new collector and shows it once; only its hash is stored."""

    module = Module.HOSTING
    selector = staticmethod(devices.enrollment_code_list)
    site_id_attr = "site_id"
    list_display = ["site", "zone", "created_by", "created_at", "expires_at", "used_at", "device"]
    list_filter = [("site", SiteListFilter)]
    list_select_related = ["site", "zone", "created_by", "device"]
    fields = ["site", "zone"]

    def get_readonly_fields(self, request, obj=None):
        return ["site", "zone", "created_by", "created_at", "expires_at", "used_at", "device"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = manageable_site_list(user=request.user)
        elif db_field.name == "zone":
            kwargs["queryset"] = zone_list(user=request.user).filter(site__in=manageable_site_list(user=request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # a code expires by itself after 24 h

    def create_object(self, request, fields):
        enrollment, code = devices.enrollment_code_create(
            site=fields["site"], zone=fields.get("zone"), actor=request.user
        )
        enrollment.plain_code = code
        return enrollment

    def update_object(self, request, obj, fields):
        return obj  # nothing on a code is editable

    def response_add(self, request, obj, post_url_continue=None):
        code = obj.__dict__.pop("plain_code", None)
        if code is None:
            return super().response_add(request, obj, post_url_continue)
        item = {"label": str(obj.zone or obj.site), "code": code, "expires_at": obj.expires_at}
        return _credentials_page(self, request, title=_("New enrollment code"), items=[item])


@admin.register(SafetyEvent)
class SafetyEventAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """What edge devices reported (read-only: events come from devices, their alerts are handled in Alerts)."""

    module = Module.HOSTING
    selector = staticmethod(safety_event_list)
    site_id_attr = "site_id"
    list_display = ["ts", "kind", "site", "miner", "device", "event_id", "alert", "received_at"]
    list_filter = ["kind", ("site", SiteListFilter)]
    search_fields = ["event_id", "miner__serial", "device__name"]
    list_select_related = ["site", "miner", "device", "alert"]
    readonly_fields = [f.name for f in SafetyEvent._meta.fields]
    date_hierarchy = "ts"

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(AlertRule, AlertRuleAdmin)
