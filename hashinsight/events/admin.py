from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.events import processing
from hashinsight.events.models import AuditEvent, EventFailure, JobRun, OutboxEvent


class SystemAdmin(admin.ModelAdmin):
    """SYSTEM module: owners and admins act, site owners read (the matrix's SYSTEM row)."""

    def has_module_permission(self, request):
        return has_access(request.user, Module.SYSTEM, Access.READ)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EventPayloadAdmin(SystemAdmin):
    """Events carry payloads from every site (an alert's message, a miner's serial), and they are not
    scoped by site: only owners and admins (SYSTEM FULL) read them; a site owner's SYSTEM READ covers
    job runs and health, not other sites' data."""

    def has_module_permission(self, request):
        return has_access(request.user, Module.SYSTEM, Access.FULL)


@admin.register(OutboxEvent)
class OutboxEventAdmin(EventPayloadAdmin):
    list_display = [
        "created_at",
        "event_type",
        "aggregate",
        "status",
        "attempts",
        "worker",
        "next_attempt_at",
        "finished_at",
    ]
    list_filter = ["status", "event_type", "created_at"]
    search_fields = ["id", "event_type", "aggregate", "request_id", "last_error"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    show_full_result_count = False


@admin.register(EventFailure)
class EventFailureAdmin(EventPayloadAdmin):
    list_display = ["created_at", "event_type", "handler", "error", "attempts", "replayed_at"]
    list_filter = ["event__event_type", "handler", "replayed_at", "created_at"]
    # Event id, event type, handler or a piece of the error: what an operator pastes from a log or alert.
    search_fields = ["event__id", "event__event_type", "handler", "error"]
    readonly_fields = ["event", "handler", "error", "traceback", "payload", "attempts", "created_at", "replayed_at"]
    actions = ["replay"]

    @admin.display(description=_("event type"), ordering="event__event_type")
    def event_type(self, obj):
        return obj.event.event_type

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event")

    @admin.action(description=_("Replay the selected events"))
    def replay(self, request, queryset):
        if not has_access(request.user, Module.SYSTEM, Access.FULL):
            self.message_user(request, _("Only system administrators can replay events."), messages.ERROR)
            return
        for failure in queryset.filter(replayed_at__isnull=True):
            processing.replay(failure)
        self.message_user(request, _("Replay queued."), messages.SUCCESS)


@admin.register(JobRun)
class JobRunAdmin(SystemAdmin):
    list_display = ["created_at", "job_type", "trigger", "status", "duration_ms", "processed", "succeeded", "failed"]
    list_filter = ["job_type", "status", "trigger", "created_at"]
    search_fields = ["job_type", "status", "task_id", "error"]
    readonly_fields = [f.name for f in JobRun._meta.fields]
    show_full_result_count = False


@admin.register(AuditEvent)
class AuditEventAdmin(EventPayloadAdmin):
    """The audit chain, read-only for everyone (superusers too: the permissions below are not the
    model permissions a superuser bypasses); owners and admins only, like the other event payloads."""

    list_display = ["seq", "created_at", "event_type", "actor_type", "actor_id", "site_id", "reference", "public_id"]
    list_filter = ["event_type", "actor_type", "site", "created_at"]
    search_fields = ["=public_id", "reference"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    ordering = ["-seq"]
    show_full_result_count = False
    actions = None

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
