"""Admin for the intelligence layer's forecast models: the registry with its backtest metrics next to naive, and
activate / roll back as actions through the same services as the API (audit and outbox included)."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from hashinsight.core.errors import DomainError
from intelligence import forecasting
from intelligence.models import Forecast, ForecastModel


def _metric(model: ForecastModel, horizon: str, key: str, naive: bool = False) -> str:
    row = ((model.backtest or {}).get("horizons") or {}).get(horizon) or {}
    if naive:
        row = row.get("naive") or {}
    value = row.get(key)
    return "—" if value is None else f"{value:.2f}"


@admin.register(ForecastModel)
class ForecastModelAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.AI
    selector = staticmethod(forecasting.model_list)
    list_display = ["__str__", "target", "subject", "algorithm", "version", "status", "mape_7", "naive_mape_7",
                    "mape_30", "coverage80_7", "data_until", "trained_at", "activated_at"]  # fmt: skip
    list_filter = ["target", "algorithm", "status"]
    search_fields = ["subject", "error"]
    readonly_fields = [f.name for f in ForecastModel._meta.fields]
    ordering = ["target", "subject", "-version"]
    actions = ["activate", "rollback"]

    @admin.display(description=_("MAPE 7 d (%)"))
    def mape_7(self, obj):
        return _metric(obj, "7", "mape")

    @admin.display(description=_("Naive MAPE 7 d (%)"))
    def naive_mape_7(self, obj):
        return _metric(obj, "7", "mape", naive=True)

    @admin.display(description=_("MAPE 30 d (%)"))
    def mape_30(self, obj):
        return _metric(obj, "30", "mape")

    @admin.display(description=_("80 % coverage 7 d (%)"))
    def coverage80_7(self, obj):
        return _metric(obj, "7", "coverage80")

    def has_add_permission(self, request, *args):
        return False  # models are made by training jobs (POST /api/v1/training-jobs, the weekly Beat job)

    def has_delete_permission(self, request, obj=None):
        return False  # the registry keeps every version; retire, do not delete

    def has_change_permission(self, request, obj=None):
        # Activating a network model changes every user's forecast: owners and admins only.
        return super().has_change_permission(request, obj) and forecasting.sees_all_subjects(request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            actions.pop("activate", None)
            actions.pop("rollback", None)
        return actions

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; models change only through the actions

    def _each(self, request, queryset, service, done):
        for model in queryset.order_by("pk"):
            try:
                service(model_id=model.pk, actor=request.user, reason="admin")
            except DomainError as exc:
                self.message_user(request, f"{model}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, done % {"model": model}, messages.SUCCESS)

    @admin.action(description=_("Activate the selected model (retires the active one of its target)"))
    def activate(self, request, queryset):
        self._each(request, queryset, forecasting.model_activate, _("%(model)s is now active."))

    @admin.action(description=_("Roll back the selected active model (the previous one, or naive)"))
    def rollback(self, request, queryset):
        self._each(request, queryset, forecasting.model_rollback, _("%(model)s rolled back."))


@admin.register(Forecast)
class ForecastAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.AI
    list_display = ["__str__", "target", "subject", "algorithm", "model", "fallback_reason", "origin",
                    "horizon_days", "generated_at"]  # fmt: skip
    list_filter = ["target", "algorithm"]
    search_fields = ["subject", "fallback_reason"]
    list_select_related = ["model"]
    readonly_fields = [f.name for f in Forecast._meta.fields]

    def get_queryset(self, request):
        qs = forecasting.forecast_list(user=request.user, latest=False)
        return qs.order_by(*(self.get_ordering(request) or ["-generated_at"]))

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
