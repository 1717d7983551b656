"""Admin for the intelligence layer's market models.

- Market days are read-mostly: the shipped history and the live feed write them (``intelligence.market_data``); a
  user with full ANALYTICS access may add a day by hand (kept as MANUAL, which neither the history nor a feed
  replaces) and change such hand-entered days; shipped and feed days are shown, never edited or deleted here.
- Power prices are shown with filters (site, market, interval, source) for the sites the user operates; they are
  loaded by upload or command (``intelligence.power_price_services``), never edited one by one."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from hashinsight.accounts.roles import Module
from hashinsight.core.admin import ScopedAdminMixin
from intelligence.models import MarketDay, PowerPrice


class MarketDayForm(forms.ModelForm):
    class Meta:
        model = MarketDay
        fields = ("date", "btc_price_usd", "difficulty", "hashrate_ths", "fees_btc", "miners_revenue_usd")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("hashrate_ths", "fees_btc", "miners_revenue_usd"):  # nullable: unknown is allowed
            if name in self.fields:
                self.fields[name].required = False


@admin.register(MarketDay)
class MarketDayAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.ANALYTICS
    form = MarketDayForm
    list_display = ("date", "btc_price_usd", "difficulty", "hashrate_ths", "fees_btc", "source", "source_name")
    list_filter = ("source",)
    date_hierarchy = "date"
    search_fields = ("source_name",)
    ordering = ("-date",)
    fields = ("date", "btc_price_usd", "difficulty", "hashrate_ths", "fees_btc", "miners_revenue_usd", "source",
              "source_name", "updated_at")  # fmt: skip
    readonly_fields = ("source", "source_name", "updated_at")
    list_per_page = 100

    def has_change_permission(self, request, obj=None):
        editable = obj is None or obj.source == MarketDay.Source.MANUAL
        return editable and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.source == MarketDay.Source.MANUAL and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        obj.source, obj.source_name = MarketDay.Source.MANUAL, f"admin:{request.user.get_username()}"[:80]
        super().save_model(request, obj, form, change)


def _operated_prices(*, user):
    from intelligence.power_price_services import may_read_prices
    from sites.selectors import site_list

    if not may_read_prices(user):
        return PowerPrice.objects.none()
    return PowerPrice.objects.filter(site__in=site_list(user=user)).select_related("site")


@admin.register(PowerPrice)
class PowerPriceAdmin(ScopedAdminMixin, admin.ModelAdmin):
    module = Module.HOSTING
    selector = staticmethod(_operated_prices)
    list_display = ("site", "market", "interval_start", "interval_minutes", "usd_per_mwh", "source")
    list_filter = ("market", "interval_minutes", "site", "source")
    date_hierarchy = "interval_start"
    ordering = ("site", "market", "-interval_start")
    list_select_related = ("site",)
    show_full_result_count = False  # hundreds of thousands of intervals: no second COUNT per page
    list_per_page = 100

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
