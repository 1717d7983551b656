from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from sites.admin_filters import SiteListFilter
from telemetry import selectors, services
from telemetry.models import Alert


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
