"""Admin for uploaded series and miner health: read-only (scores come from the health job, uploads from the
training API), each list restricted to what the user may see (a client: its own miners; an upload: its owner,
owners and admins). An upload's page shows its models' training status and backtest next to naive."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from intelligence.miner_health import health_list
from intelligence.models import ForecastModel, MinerHealth, UploadedSeries
from intelligence.uploaded_series import TARGET, upload_list


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MinerHealth)
class MinerHealthAdmin(ReadOnlyMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.AI
    selector = staticmethod(health_list)
    list_display = ["miner", "site", "score", "tier", "first_reason", "computed_at"]
    list_filter = ["tier", "miner__site"]
    search_fields = ["miner__serial"]
    ordering = ["-score"]
    readonly_fields = [f.name for f in MinerHealth._meta.fields]

    @admin.display(description=_("site"))
    def site(self, obj):
        return obj.miner.site

    @admin.display(description=_("main reason"))
    def first_reason(self, obj):
        return obj.reasons[0]["text"] if obj.reasons else "—"


@admin.register(UploadedSeries)
class UploadedSeriesAdmin(ReadOnlyMixin, ScopedAdminMixin, admin.ModelAdmin):
    module = Module.AI
    selector = staticmethod(upload_list)
    list_display = ["name", "owner", "unit", "interval_minutes", "rows", "models", "created_at"]
    search_fields = ["name", "sha256"]
    ordering = ["-created_at"]
    exclude = ["points"]  # up to 200,000 rows: the page would not load
    readonly_fields = ["owner", "name", "unit", "interval_minutes", "rows", "sha256", "created_at", "models"]

    @admin.display(description=_("models (status, MAPE at the horizon vs naive)"))
    def models(self, obj):
        parts = []
        for m in ForecastModel.objects.filter(target=TARGET, subject=f"upload:{obj.pk}").order_by("-version"):
            ref = str((m.backtest or {}).get("reference_horizon", ""))
            row = ((m.backtest or {}).get("horizons") or {}).get(ref) or {}
            mape, naive = row.get("mape"), (row.get("naive") or {}).get("mape")
            figures = "" if mape is None else f", MAPE {mape:.2f} % vs naive {naive or 0:.2f} %"
            parts.append(f"v{m.version} {m.algorithm}: {m.get_status_display()}{figures}")
        return "; ".join(parts) or "—"
