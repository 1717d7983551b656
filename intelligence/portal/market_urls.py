"""Portal routes of the intelligence layer's market part (namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import power_prices

urlpatterns: list = [
    path("market/", power_prices.market_overview, name="market"),
    path("sites/<slug:slug>/power-prices/", power_prices.site_power_prices, name="site-power-prices"),
]
