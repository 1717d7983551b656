"""API routes of the intelligence layer's market part: ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import re_path

from intelligence.api.market_views import MarketDaysView, MarketLatestView, SitePowerPricesView

v1: list = [
    re_path(
        r"^sites/(?P<site_id>[0-9]{1,18})/power-prices/?$", SitePowerPricesView.as_view(), name="site-power-prices"
    ),
    re_path(r"^market/days/?$", MarketDaysView.as_view(), name="market-days"),
    re_path(r"^market/latest/?$", MarketLatestView.as_view(), name="market-latest"),
]
seed: list = []
